package io.replicator;

/** The role and health of one node of a pair, as {@code status()} reports it. */
public enum NodeState {
  /** Serving writes, peer connected and up to date. */
  PRIMARY,
  /** Serving writes without a peer (or with a peer that is out of date); changes are tracked. */
  ALONE,
  /** Receiving and applying the primary's changes. */
  SECONDARY,
  /** Primary side of a running resync. */
  SYNC_SOURCE,
  /** Secondary side of a running resync; its data is not yet consistent. */
  SYNC_TARGET,
  /** Not allowed to serve: no quorum, split brain, or waiting for the peer under a block policy. */
  WAIT,
  /** Closed. */
  STOPPED
}
