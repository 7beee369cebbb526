package io.replicator.stream;

import io.replicator.change.FileChange;
import io.replicator.fs.ChangeSink.Completion;
import io.replicator.fs.LocalTree;
import io.replicator.proto.Envelope;
import io.replicator.transport.PeerConnection;
import java.io.IOException;

/**
 * The replication stream as resync and verify see it, and the only way they reach it: the link
 * they work on, their changes numbered in order with the application's, room in the in-flight
 * window, and the primary's tree and tracking. Nothing here exposes the window's or the link's
 * internals, so the stream can change how it sends without touching resync.
 */
interface ResyncLink {

  /** The primary's own tree, once the file system exists (resync reads through it). */
  LocalTree awaitTree() throws InterruptedException;

  /** Generation ids, dirty bitmap and activity log of this primary. */
  PrimaryTracking tracking();

  /** The connection new application changes go on, or null while the peer is not connected. */
  PeerConnection liveConnection();

  /** Why the last connection was refused (split brain, newer peer...), or null. */
  String problem();

  /** Makes {@code c} the connection every new application change is sent on. */
  void goLive(PeerConnection c);

  /** Sends a control message on {@code c} in order with the changes sent before and after it. */
  void sendControl(PeerConnection c, Envelope message);

  /**
   * Numbers and sends a resync change on {@code c}; {@code onApplied} runs once the peer applied
   * it. Returns null when {@code c} is no longer the stream's connection (the resync stops there).
   */
  Completion submitResync(PeerConnection c, FileChange change, Runnable onApplied) throws IOException;

  /** Waits until resync may put {@code bytes} more in flight (the adaptive budget). */
  void awaitResyncRoom(long bytes) throws InterruptedException;

  /** A resync starts or ends: the budget measures the application's latency against it. */
  void resyncRunning(boolean running);

  /** The last sequence number handed out: every change up to it is sent. */
  long lastSeq();

  /** The first connection attempt ended without going live; callers waiting for it stop. */
  void settleFirstAttempt();

  /** The link reached sync: the next loss reconnects from the shortest delay. */
  void reachedSync();

  /** What {@link #whileLive} runs; it may write metadata. */
  @FunctionalInterface
  interface LinkAction {
    void run() throws IOException;
  }

  /**
   * Runs {@code action} on the stream's control thread if {@code c} is still its live connection,
   * so that it cannot interleave with the handling of that connection's loss; false when the
   * connection was lost (or the stream is closing) and the action did not run.
   */
  boolean whileLive(PeerConnection c, LinkAction action) throws IOException;
}
