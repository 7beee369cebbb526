package io.replicator.fs;

import io.replicator.ReplicationStatus;
import io.replicator.change.FileChange;
import java.io.Closeable;
import java.io.IOException;

/**
 * Where the file system wrapper sends every change it makes; the wrapper knows nothing of how it
 * travels. For each change the wrapper, while holding the lock that orders changes to that file
 * (and, for a namespace change, the lock that orders it against every change):
 *
 * <ol>
 *   <li>calls {@link #beforeLocalChange}: it may wait (a block policy) or make a record durable
 *       before the local change exists; when it throws, nothing is changed locally;
 *   <li>makes the change on the delegate file system;
 *   <li>when that succeeded, calls {@link #submit}, which numbers the change and queues it,
 *       copying any data, so that changes to one file are numbered in the order they took effect;
 * </ol>
 *
 * <p>then, after releasing the locks, calls {@link Completion#await()}, which returns when the
 * replication mode is satisfied. When the local change fails, nothing is submitted.
 */
public interface ChangeSink extends Closeable {

  /** Called before the local change is made; throwing refuses the change. */
  void beforeLocalChange(FileChange change) throws IOException;

  /** Numbers and queues a change that took effect locally. Never blocks on the peer's acknowledgement. */
  Completion submit(FileChange change) throws IOException;

  /** A snapshot of the replication state. */
  ReplicationStatus status();

  /** The state of each follower's stream by name; empty when there are none. */
  default java.util.Map<String, ReplicationStatus> followers() {
    return java.util.Map.of();
  }

  /** Compares the tree with the peer's by checksum; see {@link io.replicator.ReplicatedFileSystem#verify()}. */
  default io.replicator.VerifyReport verify() throws IOException {
    throw new UnsupportedOperationException("this sink has no peer to verify against");
  }

  /** Sends the peer what is marked dirty; see {@link io.replicator.ReplicatedFileSystem#resync()}. */
  default void resync() throws IOException {
    throw new UnsupportedOperationException("this sink has no peer to resync");
  }

  /** Flushes what is queued and releases the connection; idempotent. */
  @Override
  void close() throws IOException;

  /** The pending acknowledgement of one submitted change. */
  interface Completion {
    /** A completion that is already satisfied. */
    Completion DONE = () -> {};

    /**
     * Waits until the replication mode is satisfied for this change (a {@code Force}: until it is
     * durable on both sides).
     *
     * @throws java.nio.channels.ClosedByInterruptException when interrupted; the change stays queued
     *     and is still accounted for (acknowledged later or recorded as not replicated)
     * @throws IOException when a block policy timed out; the change is recorded as not replicated
     */
    void await() throws IOException;
  }
}
