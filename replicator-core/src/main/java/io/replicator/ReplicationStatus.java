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
    Optional<ResyncProgress> resync) {

  /** True when the peer holds everything this node has: connected, not out of date, nothing pending. */
  public boolean inSync() {
    return peerConnected && !peerOutOfDate && inFlightChanges == 0 && resync.isEmpty();
  }

  /**
   * Progress of a resync.
   *
   * @param bytesDone bytes resynced so far
   * @param bytesTotal bytes to resync in all
   * @param bytesPerSecond current rate
   * @param etaSeconds estimated seconds left, or -1 when unknown
   */
  public record ResyncProgress(long bytesDone, long bytesTotal, long bytesPerSecond, long etaSeconds) {}
}
