package io.replicator.agent.cluster;

import io.replicator.proto.AgentMessage;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.Role;
import io.replicator.proto.WitnessMessage;
import java.time.Duration;
import java.util.Optional;

/**
 * Everything {@link RoleDecider} looks at: what this node knows durably, what it last heard from
 * its peer and the witness (with when), its application's report, and the time. Times are
 * monotonic nanoseconds; 0 means never.
 *
 * @param now the monotonic time of the decision
 * @param rules the pair's configuration that bears on roles
 * @param role this node's role now
 * @param epoch the highest role epoch this node knows (as primary: the epoch it serves at)
 * @param listeningSince when this node's links started listening: every start-up timer counts from here
 * @param local what this node's disk says
 * @param peer what was heard from the peer's agent
 * @param witness what was heard from the witness
 * @param app the application's report, as primary
 * @param operator what an operator asked for and is still waiting on
 */
record Situation(
    long now,
    Rules rules,
    Role role,
    long epoch,
    long listeningSince,
    Local local,
    Peer peer,
    WitnessView witness,
    App app,
    Operator operator) {

  /**
   * The configuration that bears on roles.
   *
   * @param self this node's name
   * @param peerName the peer's name
   * @param witness whether the pair has a witness
   * @param automaticFailover whether a secondary takes over by itself (without a witness)
   * @param preferredPrimary the node that wins an election between equals, if any
   * @param heartbeat the heartbeat interval
   * @param peerTimeout the silence after which the peer counts as lost
   * @param startAloneAfter without a witness, how long a node that never heard its peer waits
   *     before it starts alone anyway; empty (the default) waits for the peer or an operator
   */
  record Rules(String self, String peerName, boolean witness, boolean automaticFailover,
      Optional<String> preferredPrimary, Duration heartbeat, Duration peerTimeout, Optional<Duration> startAloneAfter) {}

  /**
   * What this node's disk says.
   *
   * @param consistent no resync into this node is unfinished: it may be promoted
   * @param peerOutdated this node holds changes its peer lacks
   * @param lastRole the role the agent's durable record holds (the role it had when it stopped)
   * @param metPeer the agent has heard its peer at least once, ever
   * @param generation the data's current generation id
   */
  record Local(boolean consistent, boolean peerOutdated, Role lastRole, boolean metPeer, long generation) {}

  /**
   * What was heard from the peer's agent and about the replication link.
   *
   * @param message the peer's last message, or null
   * @param heardAt when it arrived
   * @param refusedAt when the peer last refused a link this node opened (wrong secret, another
   *     cluster): the peer is there, but the two cannot talk
   * @param refusal the peer's reason for that refusal
   * @param replicationUpAt when the replication link (replica server or application) was last seen up
   * @param hearsUs the peer's last message acknowledges one this node sent within half a peer timeout
   */
  record Peer(AgentMessage message, long heardAt, long refusedAt, String refusal, long replicationUpAt,
      boolean hearsUs) {
    static final Peer NEVER = new Peer(null, 0, 0, "", 0, false);
  }

  /**
   * What was heard from the witness, and what it granted this node.
   *
   * @param message the witness's last answer, or null
   * @param heardAt when it arrived
   * @param grantEpoch the epoch of a promotion the witness granted this node and it has not used (0: none)
   * @param grantAt when that grant arrived
   * @param aloneUntil until when the witness lets this primary write without its peer (0: no leave)
   */
  record WitnessView(WitnessMessage message, long heardAt, long grantEpoch, long grantAt, long aloneUntil) {
    static final WitnessView NEVER = new WitnessView(null, 0, 0, 0, 0);
  }

  /**
   * The application's report (as primary), or null fields when none.
   *
   * @param report the last report, or null
   * @param reportAt when it arrived
   * @param peerDownSince since when the report says the replication link is down (0: it is up)
   */
  record App(ApplicationReport report, long reportAt, long peerDownSince) {
    static final App NONE = new App(null, 0, 0);
  }

  /**
   * What an operator asked for and is still waiting on.
   *
   * @param promote an operator's {@code promote} (without force) waits for the witness's grant
   * @param steppedDown an operator demoted this node: it yields in elections until the peer serves
   * @param takeOver the peer handed the primary role over in a swap; with a witness, this node asks it
   */
  record Operator(boolean promote, boolean steppedDown, boolean takeOver) {
    static final Operator NONE = new Operator(false, false, false);
  }

  boolean within(long at, Duration d) {
    return at != 0 && now - at < d.toNanos();
  }

  /** The peer's agent was heard within the peer timeout. */
  boolean peerHeard() {
    return peer.message() != null && within(peer.heardAt(), rules.peerTimeout());
  }

  /** The peer refused a link within the peer timeout: it is there, though the two cannot talk. */
  boolean peerRefusing() {
    return within(peer.refusedAt(), rules.peerTimeout());
  }

  /** Anything proves the peer alive: its agent, the replication link, or a refusal from it. */
  boolean peerAlive() {
    return peerHeard() || within(peer.replicationUpAt(), rules.peerTimeout()) || peerRefusing();
  }

  /** How long nothing proved the peer alive, counted from when this node started listening at most. */
  long peerSilentNanos() {
    long last = Math.max(Math.max(peer.heardAt(), peer.replicationUpAt()), Math.max(peer.refusedAt(), listeningSince));
    return now - last;
  }

  boolean witnessHeard() {
    return rules.witness() && witness.message() != null && within(witness.heardAt(), rules.peerTimeout());
  }

  /** A promotion the witness granted this node, recently enough to be used. */
  boolean holdsGrant() {
    return witness.grantEpoch() > epoch && within(witness.grantAt(), rules.peerTimeout());
  }
}
