package io.replicator.agent.cluster;

import io.replicator.proto.Request;

/**
 * What {@link RoleDecider} decided: a role change (or none), what to ask the witness on the
 * coming heartbeats, the gate on the application's writes, and the line that status shows.
 *
 * @param change the role change to make, or {@link Change#NONE}
 * @param epoch the epoch of the new role (primary: the epoch it serves at)
 * @param discardLocal becoming secondary: discard local changes the new primary lacks
 * @param failover becoming primary because the peer was lost (its figures are reported)
 * @param reason why, for the log and the last-failover record
 * @param witnessRequest what to ask the witness while this decision holds
 * @param gate what the application may write
 * @param problem why this node is not serving normally, for status; null when it is
 */
record Decision(Change change, long epoch, boolean discardLocal, boolean failover, String reason,
    Request witnessRequest, Gate gate, String problem) {

  /** The role changes a decision can make. */
  enum Change {
    NONE,
    BECOME_PRIMARY,
    BECOME_SECONDARY
  }

  /**
   * The gate on the application's writes.
   *
   * @param writesAllowed any write may proceed (false: fenced)
   * @param aloneAllowed a write may proceed without the peer
   * @param aloneUntil with a witness: the monotonic time the leave to write alone ends (0: none);
   *     {@link Long#MAX_VALUE} when it has no end (no witness)
   * @param suspendedReason why writes are suspended, when they are
   */
  record Gate(boolean writesAllowed, boolean aloneAllowed, long aloneUntil, String suspendedReason) {
    static final Gate CLOSED = new Gate(false, false, 0, "this node is not primary");
    static final Gate OPEN = new Gate(true, true, Long.MAX_VALUE, null);
  }

  static Decision stay(Request witnessRequest, Gate gate, String problem) {
    return new Decision(Change.NONE, 0, false, false, null, witnessRequest, gate, problem);
  }

  static Decision primary(long epoch, boolean failover, String reason) {
    return new Decision(Change.BECOME_PRIMARY, epoch, false, failover, reason, Request.REQUEST_NONE, Gate.CLOSED,
        null);
  }

  static Decision secondary(long epoch, boolean discardLocal, String reason) {
    return new Decision(Change.BECOME_SECONDARY, epoch, discardLocal, false, reason, Request.REQUEST_NONE,
        Gate.CLOSED, null);
  }
}
