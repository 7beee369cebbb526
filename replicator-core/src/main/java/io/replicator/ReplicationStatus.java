package io.replicator;

import java.util.Optional;

/**
 * A snapshot of one node's replication state. {@code inSync()} is true only when the peer is
 * connected, not out of date, and nothing is left to send.
 *
 * @param state the node state
 * @param mode the replication mode (of the primary; a replica reports the mode it last saw, or SYNC)
 * @param peer the peer's address as configured or seen, or empty when none
 * @param peerConnected whether a peer connection is up now
 * @param peerOutOfDate whether the peer misses changes that only a resync can bring
 * @param problem why this node or its peer is not healthy and in sync (peer out of date, split brain,
 *     an inconsistent copy), or empty
 * @param generation this node's current generation id (0 when none yet)
 * @param dirtyBytes bytes known to differ from the peer (0 when unknown or none)
 * @param lastSequence the last change sequence number assigned (primary) or received (replica)
 * @param appliedSequence the last change sequence number the replica acknowledged as applied
 * @param inFlightChanges changes sent and not yet acknowledged
 * @param inFlightBytes payload bytes sent and not yet acknowledged
 * @param resync progress of a running resync, or empty
 * @param verify progress of a running online verify, or empty
 */
public record ReplicationStatus(
    NodeState state,
    ReplicationMode mode,
    Optional<String> peer,
    boolean peerConnected,
    boolean peerOutOfDate,
    Optional<String> problem,
    long generation,
    long dirtyBytes,
    long lastSequence,
    long appliedSequence,
    long inFlightChanges,
    long inFlightBytes,
    Optional<ResyncProgress> resync,
    Optional<VerifyProgress> verify) {

  /** A status without verify progress (no verify running). */
  public ReplicationStatus(NodeState state, ReplicationMode mode, Optional<String> peer, boolean peerConnected,
      boolean peerOutOfDate, Optional<String> problem, long generation, long dirtyBytes, long lastSequence,
      long appliedSequence, long inFlightChanges, long inFlightBytes, Optional<ResyncProgress> resync) {
    this(state, mode, peer, peerConnected, peerOutOfDate, problem, generation, dirtyBytes, lastSequence,
        appliedSequence, inFlightChanges, inFlightBytes, resync, Optional.empty());
  }

  /** True when the peer holds everything this node has: connected, not out of date, nothing pending. */
  public boolean inSync() {
    return peerConnected && !peerOutOfDate && inFlightChanges == 0 && resync.isEmpty();
  }

  /**
   * Progress of a resync.
   *
   * @param bytesDone bytes resynced so far (examined: compared or sent)
   * @param bytesTotal bytes to resync in all (grows while the tree is still being counted)
   * @param bytesPerSecond current rate
   * @param etaSeconds estimated seconds left, or -1 when unknown
   * @param filesDone entries (files, directories, links) reconciled so far
   * @param filesTotal entries to reconcile in all (grows while the tree is still being counted)
   */
  public record ResyncProgress(long bytesDone, long bytesTotal, long bytesPerSecond, long etaSeconds,
      long filesDone, long filesTotal) {

    /** Progress counted in bytes only. */
    public ResyncProgress(long bytesDone, long bytesTotal, long bytesPerSecond, long etaSeconds) {
      this(bytesDone, bytesTotal, bytesPerSecond, etaSeconds, 0, 0);
    }
  }

  /**
   * Progress of an online verify.
   *
   * @param filesDone entries compared so far
   * @param filesTotal entries to compare in all (grows while the tree is still being counted)
   * @param bytesDone bytes of file data compared so far
   * @param bytesTotal bytes of file data to compare (grows while the tree is still being counted)
   * @param bytesPerSecond current rate
   * @param etaSeconds estimated seconds left, or -1 when unknown
   */
  public record VerifyProgress(long filesDone, long filesTotal, long bytesDone, long bytesTotal,
      long bytesPerSecond, long etaSeconds) {}
}
