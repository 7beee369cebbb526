package io.replicator.meta;

import io.replicator.SplitBrainPolicy;
import static com.google.common.base.Preconditions.checkNotNull;

/**
 * Internal: what two nodes do when they connect, decided from their {@link GenerationIds} after
 * DRBD's generation-identifier rules (DESIGN.md, "Node metadata and dirty tracking"). Split brain
 * is only resolved by an explicit operator choice or a configured {@link SplitBrainPolicy}.
 */
public enum SyncDecision {
  /** Same data: nothing to send. */
  IN_SYNC,
  /** This node is the source of an incremental (bitmap) resync. */
  INCREMENTAL_LOCAL_SOURCE,
  /** The peer is the source of an incremental (bitmap) resync into this node. */
  INCREMENTAL_PEER_SOURCE,
  /** This node is the source of a full (checksum) resync. */
  FULL_LOCAL_SOURCE,
  /** The peer is the source of a full (checksum) resync into this node. */
  FULL_PEER_SOURCE,
  /** Both wrote independently since their last common generation: stay disconnected and report. */
  SPLIT_BRAIN,
  /** No generation in common: the data sets are unrelated, refuse to connect. */
  UNRELATED;

  /**
   * One side's inputs to the decision: its generation ids, whether its operator chose to discard
   * its data ({@code discard_local}), its dirty byte count and when it became primary (epoch millis, 0
   * when unknown), the last two for a split-brain policy.
   */
  public record Side(GenerationIds generations, boolean discardLocal, long dirtyBytes, long primarySinceMillis) {
    public Side {
      checkNotNull(generations, "generations");
    }

    /** A side known only by its generation ids. */
    public static Side of(GenerationIds generations) {
      return new Side(generations, false, 0, 0);
    }
  }

  /** The decision from the generation ids alone: the DESIGN.md table, split brain left unresolved. */
  public static SyncDecision decide(GenerationIds local, GenerationIds peer) {
    checkNotNull(local, "local");
    checkNotNull(peer, "peer");
    long myCurrent = local.current();
    long peerCurrent = peer.current();
    // Two fresh nodes, or the same generation: the data is the same.
    if (myCurrent == peerCurrent) {
      return IN_SYNC;
    }
    // I started tracking at the generation the peer still has: my bitmap holds exactly what it misses.
    if (local.bitmap() != 0 && local.bitmap() == peerCurrent) {
      return INCREMENTAL_LOCAL_SOURCE;
    }
    if (peer.bitmap() != 0 && peer.bitmap() == myCurrent) {
      return INCREMENTAL_PEER_SOURCE;
    }
    // Both started tracking at the same generation and both moved on: both wrote while apart.
    if (local.bitmap() != 0 && local.bitmap() == peer.bitmap()) {
      return SPLIT_BRAIN;
    }
    // I am behind the peer without a usable bitmap on its side, or I have no data at all.
    if (peer.historyContains(myCurrent) || (myCurrent == 0 && peerCurrent != 0)) {
      return FULL_PEER_SOURCE;
    }
    if (local.historyContains(peerCurrent) || (peerCurrent == 0 && myCurrent != 0)) {
      return FULL_LOCAL_SOURCE;
    }
    return UNRELATED;
  }

  /**
   * The decision for a follower, which is never a source and never refused for what it holds: in
   * sync when the generations agree, the bitmap when this primary started it at the follower's
   * generation, and otherwise a full (checksum) resync that sends only the blocks that differ (a
   * follower after a failover, or one promoted by hand and attached again as a follower).
   */
  public static SyncDecision decideForFollower(GenerationIds primary, GenerationIds follower) {
    checkNotNull(primary, "primary");
    checkNotNull(follower, "follower");
    if (primary.current() == follower.current()) {
      return IN_SYNC;
    }
    if (primary.bitmap() != 0 && primary.bitmap() == follower.current()) {
      return INCREMENTAL_LOCAL_SOURCE;
    }
    return FULL_LOCAL_SOURCE;
  }

  /**
   * A follower continued from the previous primary's stream: its bitmap here is the secondary's
   * record of mark epoch {@code continuedEpoch}, which says what the follower may lack but not what
   * it received that the secondary never did. An incremental resync stays incremental only when
   * the follower's own report of that epoch ({@code reportEpoch}) joins the bitmap; without it
   * the resync compares everything. Any other decision, or a stream not continued (0), stands.
   */
  public static SyncDecision continueFollower(SyncDecision decision, long continuedEpoch, long reportEpoch) {
    checkNotNull(decision, "decision");
    if (continuedEpoch == 0 || decision != INCREMENTAL_LOCAL_SOURCE) {
      return decision;
    }
    return reportEpoch == continuedEpoch ? INCREMENTAL_LOCAL_SOURCE : FULL_LOCAL_SOURCE;
  }

  /**
   * The full decision: the table, then for a split brain the operator's choice ({@code
   * discard_local} on exactly one side makes that side a full resync target), then {@code policy}.
   * When both operators asked to discard, nothing is chosen.
   */
  public static SyncDecision decide(Side local, Side peer, SplitBrainPolicy policy) {
    checkNotNull(local, "local");
    checkNotNull(peer, "peer");
    checkNotNull(policy, "policy");
    SyncDecision table = decide(local.generations(), peer.generations());
    if (table != SPLIT_BRAIN) {
      return table;
    }
    if (local.discardLocal() != peer.discardLocal()) {
      return local.discardLocal() ? FULL_PEER_SOURCE : FULL_LOCAL_SOURCE;
    }
    if (local.discardLocal()) {
      return SPLIT_BRAIN;
    }
    return switch (policy.victim(local.dirtyBytes(), local.primarySinceMillis(), peer.dirtyBytes(),
        peer.primarySinceMillis())) {
      case LOCAL -> FULL_PEER_SOURCE;
      case PEER -> FULL_LOCAL_SOURCE;
      case NONE -> SPLIT_BRAIN;
    };
  }

  /** Whether this node sends data. */
  public boolean localIsSource() {
    return this == INCREMENTAL_LOCAL_SOURCE || this == FULL_LOCAL_SOURCE;
  }

  /** Whether this node receives data. */
  public boolean peerIsSource() {
    return this == INCREMENTAL_PEER_SOURCE || this == FULL_PEER_SOURCE;
  }

  /** Whether the resync compares everything (checksums) rather than following a bitmap. */
  public boolean isFull() {
    return this == FULL_LOCAL_SOURCE || this == FULL_PEER_SOURCE;
  }

  /** Whether the nodes must stay disconnected. */
  public boolean refusesConnection() {
    return this == SPLIT_BRAIN || this == UNRELATED;
  }
}
