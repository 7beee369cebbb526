package io.replicator.agent.cluster;

import io.replicator.agent.cluster.Decision.Gate;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.Request;
import io.replicator.proto.Role;
import io.replicator.proto.WitnessMessage;
import java.time.Duration;

/**
 * Decides a data node's role from a {@link Situation}: a pure function, with no clock, thread or
 * I/O of its own, so it is tested by table, exhaustively over small state spaces, and under the
 * seeded simulation of a whole pair.
 *
 * <h2>The rules</h2>
 * <ul>
 *   <li><b>Start-up</b> (after DRBD's wfc/degr-wfc and SafeKit's WAIT): a node that has not heard
 *       its peer becomes primary alone only when its durable record proves it holds the newest
 *       data: it was the primary when it stopped and its peer was already marked outdated. Every
 *       other node waits, and says why, until the peer appears, the witness grants it the role (a
 *       majority), an optional start-alone timeout passes, or an operator promotes it.
 *   <li><b>A refused link is not an absent peer</b>: a peer that refuses this node's link (wrong
 *       secret, another cluster) is there; nobody promotes because of it.
 *   <li><b>Election</b>: two nodes that hear each other and see no primary elect one: data that
 *       can be promoted, then data the witness does not call outdated, then holding changes the
 *       other lacks, then not having stepped down, then an unused witness grant, then the
 *       preferred primary, then the lower name. The loser
 *       becomes secondary first; the winner takes the role only once the loser says it is
 *       secondary, so stale messages can delay an election but never make two primaries.
 *   <li><b>Failover</b>: a secondary whose peer is silent for the peer timeout (its agent, the
 *       replication link and any refusal) takes over at a new epoch: with a witness only with its
 *       grant; without one when automatic failover is on and the replication link was up until the
 *       peer fell silent (had it been down while the peer lived, the peer may have written
 *       without this node). A node in an unfinished resync never takes over.
 *   <li><b>Deposition</b>: a primary that hears its peer, or the witness, name another primary at a
 *       higher epoch (or at the same epoch with a lower name) steps down. With a witness it
 *       discards what it changed alone: it never had leave to, so none of it was acknowledged.
 *   <li><b>Writing alone</b>: without a witness a primary writes alone whenever its peer is away.
 *       With one it writes alone only under a lease from the witness, asked once its replication
 *       link has been down for two heartbeats and the peer's agent is silent too (or the link has
 *       stayed down for the peer timeout); with neither peer nor witness it is fenced.
 * </ul>
 */
final class RoleDecider {
  private RoleDecider() {}

  static Decision decide(Situation s) {
    return switch (s.role()) {
      case ROLE_PRIMARY -> asPrimary(s);
      case ROLE_SECONDARY -> asSecondary(s);
      case ROLE_WAIT -> asWaiting(s);
      default -> Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, null);
    };
  }

  // ---------------------------------------------------------------- primary

  private static Decision asPrimary(Situation s) {
    Situation.Rules rules = s.rules();
    AgentMessage pv = s.peerHeard() ? s.peer().message() : null;
    if (claimsPrimary(pv) && outranks(pv.getEpoch(), rules.peerName(), s.epoch(), rules.self())) {
      return Decision.secondary(pv.getEpoch(), rules.witness(),
          "deposed: " + rules.peerName() + " is primary at epoch " + pv.getEpoch());
    }
    WitnessMessage w = s.witnessHeard() ? s.witness().message() : null;
    if (w != null && !w.getPrimary().isEmpty() && !w.getPrimary().equals(rules.self())
        && outranks(w.getPrimaryEpoch(), w.getPrimary(), s.epoch(), rules.self())) {
      return Decision.secondary(w.getPrimaryEpoch(), true,
          "deposed: the witness recognises " + w.getPrimary() + " as primary at epoch " + w.getPrimaryEpoch());
    }
    String problem = claimsPrimary(pv)
        ? "split brain: both nodes are primary (this node at epoch " + s.epoch() + ", " + rules.peerName()
            + " at epoch " + pv.getEpoch() + "); " + rules.peerName() + " steps down"
        : null;
    if (!rules.witness()) {
      return Decision.stay(Request.REQUEST_NONE, Gate.OPEN, problem);
    }
    if (!s.peerAlive() && !s.witnessHeard() && s.now() - s.listeningSince() > rules.peerTimeout().toNanos()) {
      String fenced = "fenced: neither the peer nor the witness is reachable; writes suspended";
      return Decision.stay(Request.REQUEST_NONE, new Gate(false, false, 0, fenced), fenced);
    }
    ApplicationReport r = s.app().report();
    boolean linkUp = r != null && r.getPeerConnected();
    long downNanos = r == null || linkUp || s.app().peerDownSince() == 0 ? 0 : s.now() - s.app().peerDownSince();
    Duration twoBeats = rules.heartbeat().multipliedBy(2);
    // ask for leave to write alone only once the peer's agent is silent too: when the whole node
    // is being cut off, the witness link is usually gone by then, and a leave granted but never
    // used would leave the secondary outdated with nobody to serve
    boolean wantLeave = r != null && !linkUp && downNanos >= twoBeats.toNanos()
        && (!s.within(s.peer().heardAt(), twoBeats) || downNanos >= rules.peerTimeout().toNanos());
    long until = s.witness().aloneUntil();
    boolean alone = until > s.now();
    Request ask = wantLeave || alone && !linkUp ? Request.REQUEST_STAY_ALONE : Request.REQUEST_NONE;
    return Decision.stay(ask, new Gate(true, alone, alone ? until : 0, null), problem);
  }

  // ---------------------------------------------------------------- secondary

  private static Decision asSecondary(Situation s) {
    Situation.Rules rules = s.rules();
    AgentMessage pv = s.peerHeard() ? s.peer().message() : null;
    if (s.operator().promote()) {
      return operatorPromote(s);
    }
    if (s.operator().takeOver()) {
      // a swap with a witness: the role comes with the witness's epoch
      if (s.holdsGrant()) {
        return Decision.primary(s.witness().grantEpoch(), false, "swap: " + rules.peerName()
            + " handed the primary role over; the witness granted it");
      }
      return Decision.stay(Request.REQUEST_PROMOTE, Gate.CLOSED, "swap: waiting for the witness's vote"
          + witnessReason(s));
    }
    if (s.peerAlive()) {
      if (pv != null && pv.getRole() == Role.ROLE_SECONDARY) {
        // both secondary (after a demote or a swap): elect, so the pair does not stay without one
        return elect(s, pv);
      }
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED,
          pv == null && s.peerRefusing() ? refused(s) : null);
    }
    if (s.peerSilentNanos() < rules.peerTimeout().toNanos()) {
      // silent, but not for long enough (counted from when this node last could hear)
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, null);
    }
    if (!s.local().consistent()) {
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED,
          "peer lost during a resync into this node: its data is inconsistent and cannot take over");
    }
    if (rules.witness()) {
      if (s.holdsGrant()) {
        return Decision.primary(s.witness().grantEpoch(), true, "peer lost; the witness granted the primary role");
      }
      return Decision.stay(Request.REQUEST_PROMOTE, Gate.CLOSED, "peer lost; waiting for the witness's vote"
          + witnessReason(s));
    }
    if (rules.automaticFailover()) {
      long lastAlive = Math.max(s.peer().heardAt(), s.peer().refusedAt());
      long linkUp = s.peer().replicationUpAt();
      if (linkUp == 0 || lastAlive - linkUp > rules.heartbeat().toNanos() * 2) {
        // the replication link was down while the peer still lived: it may have written without
        // this node, and only it (or a witness) could say; an operator decides
        return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, "peer lost, but its replication link to this node "
            + "was down before it (it may have written without this node): run `replicator promote --force` "
            + "to take over anyway");
      }
      return Decision.primary(nextEpoch(s, null), true, "peer lost (automatic failover, no witness)");
    }
    return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED,
        "peer lost; automatic failover is off: run `replicator promote` to take over");
  }

  // ---------------------------------------------------------------- waiting

  private static Decision asWaiting(Situation s) {
    Situation.Rules rules = s.rules();
    AgentMessage pv = s.peerHeard() ? s.peer().message() : null;
    if (claimsPrimary(pv)) {
      // the one node serving: follow it (if this node holds writes it lacks, its replica refuses
      // the connection as a split brain, reported and never merged)
      return Decision.secondary(Math.max(s.epoch(), pv.getEpoch()), false, "peer " + rules.peerName() + " is primary");
    }
    if (s.operator().promote()) {
      return operatorPromote(s);
    }
    if (pv != null) {
      return elect(s, pv);
    }
    String waiting = "waiting for " + rules.peerName() + ": ";
    if (s.peerRefusing()) {
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, refused(s));
    }
    if (s.now() - s.listeningSince() < rules.peerTimeout().toNanos() * 2) {
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, waiting + "listening for it");
    }
    if (!s.local().consistent()) {
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, waiting
          + "this node's data is inconsistent (unfinished resync) and only the peer can complete it");
    }
    if (rules.witness()) {
      if (s.holdsGrant()) {
        return Decision.primary(s.witness().grantEpoch(), false,
            "started without the peer; the witness granted the primary role");
      }
      return Decision.stay(Request.REQUEST_PROMOTE, Gate.CLOSED, waiting + notProven(s)
          + "; waiting for the witness's vote" + witnessReason(s));
    }
    if (provesNewest(s.local())) {
      return Decision.primary(nextEpoch(s, null), false, "started without the peer: this node was the primary "
          + "of a degraded pair and holds changes the peer lacks");
    }
    if (rules.startAloneAfter().isPresent()
        && s.now() - s.listeningSince() >= rules.startAloneAfter().get().toNanos()) {
      return Decision.primary(nextEpoch(s, null), false, "started without the peer after the start-alone timeout ("
          + rules.startAloneAfter().get().toMillis() + " ms)");
    }
    return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, waiting + notProven(s)
        + "; `replicator promote` overrides");
  }

  /** The durable record proves this node holds the newest data: the last primary of a degraded pair. */
  static boolean provesNewest(Situation.Local local) {
    return local.consistent() && local.lastRole() == Role.ROLE_PRIMARY && local.peerOutdated();
  }

  private static String notProven(Situation s) {
    Situation.Local l = s.local();
    if (!l.metPeer()) {
      return "this node has never met it";
    }
    if (l.lastRole() == Role.ROLE_SECONDARY) {
      return "this node was its secondary and may lack newer data";
    }
    if (l.lastRole() == Role.ROLE_PRIMARY) {
      return "the pair was in sync when this node stopped, so " + s.rules().peerName() + " may have taken over since";
    }
    return "this node's record does not prove it holds the newest data";
  }

  private static String refused(Situation s) {
    return "waiting for " + s.rules().peerName() + ": the link was refused, " + plain(s.peer().refusal());
  }

  /** The peer's refusal in an operator's words. */
  static String plain(String refusal) {
    String r = refusal == null ? "" : refusal;
    if (r.contains("shared secret") || r.contains("authentication")) {
      return "the secret does not match";
    }
    if (r.contains("cluster")) {
      return "it belongs to another cluster (" + r + ")";
    }
    if (r.contains("protocol version")) {
      return "it speaks another protocol version (" + r + ")";
    }
    if (r.contains("TLS")) {
      return "TLS failed (" + r + ")";
    }
    return r.isEmpty() ? "for no stated reason" : r;
  }

  // ---------------------------------------------------------------- elections and promotions

  /** Two nodes that hear each other and see no primary: the loser yields, the winner waits for it. */
  private static Decision elect(Situation s, AgentMessage pv) {
    Situation.Rules rules = s.rules();
    long myGrant = s.holdsGrant() ? s.witness().grantEpoch() : 0;
    WitnessMessage w = s.witnessHeard() ? s.witness().message() : null;
    Candidate me = new Candidate(rules.self(), s.local().consistent(),
        w != null && w.getOutdatedList().contains(rules.self()), s.local().peerOutdated(),
        s.operator().steppedDown(), myGrant);
    Candidate them = new Candidate(rules.peerName(), pv.getConsistent(),
        w != null && w.getOutdatedList().contains(rules.peerName()), pv.getPeerOutdated(), pv.getSteppedDown(),
        pv.getGrantEpoch());
    if (!wins(me, them, rules)) {
      if (s.role() == Role.ROLE_WAIT) {
        return Decision.secondary(Math.max(s.epoch(), pv.getEpoch()), false,
            "peer " + rules.peerName() + " is elected primary");
      }
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, null);
    }
    if (!me.consistent()) {
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED,
          "neither node's data is consistent (unfinished resyncs): an operator must promote one with --force");
    }
    if (pv.getRole() != Role.ROLE_SECONDARY || !s.peer().hearsUs()) {
      // the loser commits first: secondary, and having heard this node lately (a secondary that
      // has not heard from it may be about to take over)
      return Decision.stay(Request.REQUEST_NONE, Gate.CLOSED,
          "elected primary; waiting for " + rules.peerName() + " to come up as secondary");
    }
    if (rules.witness()) {
      // with a witness every epoch is the witness's: an election only decides who asks for it
      if (myGrant != 0) {
        return Decision.primary(myGrant, false, "elected (peer " + rules.peerName()
            + " is secondary); the witness granted the primary role");
      }
      return Decision.stay(Request.REQUEST_PROMOTE, Gate.CLOSED, "elected primary; waiting for the witness's vote"
          + witnessReason(s));
    }
    return Decision.primary(nextEpoch(s, pv), false, "elected (peer " + rules.peerName() + " is secondary)");
  }

  /** An operator's promote without force, with a witness: the witness's grant makes it. */
  private static Decision operatorPromote(Situation s) {
    if (s.holdsGrant()) {
      return Decision.primary(s.witness().grantEpoch(), false, "operator promote; the witness granted the primary role");
    }
    return Decision.stay(Request.REQUEST_PROMOTE, Gate.CLOSED, "promote: waiting for the witness's vote"
        + witnessReason(s));
  }

  /**
   * One side of an election.
   *
   * @param name the node's name
   * @param consistent its data may be promoted
   * @param outdated the witness says the other node wrote without it
   * @param peerOutdated it holds changes the other lacks
   * @param steppedDown an operator demoted it or it handed the role over: it yields to an equal
   * @param grantEpoch an unused witness grant it holds (0: none)
   */
  record Candidate(String name, boolean consistent, boolean outdated, boolean peerOutdated, boolean steppedDown,
      long grantEpoch) {}

  /**
   * Whether {@code me} wins the election against {@code them}; both sides compute the same answer
   * from the same messages. Data comes first (promotable, not outdated, holding what the other
   * lacks), then an operator's wish, then a witness grant, then preference and name.
   */
  static boolean wins(Candidate me, Candidate them, Situation.Rules rules) {
    if (me.consistent() != them.consistent()) {
      return me.consistent();
    }
    if (me.outdated() != them.outdated()) {
      return !me.outdated();
    }
    if (me.peerOutdated() != them.peerOutdated()) {
      return me.peerOutdated();
    }
    if (me.steppedDown() != them.steppedDown()) {
      return !me.steppedDown();
    }
    if (me.grantEpoch() != them.grantEpoch()) {
      return me.grantEpoch() > them.grantEpoch();
    }
    if (rules.preferredPrimary().isPresent()) {
      String p = rules.preferredPrimary().get();
      if (p.equals(me.name()) != p.equals(them.name())) {
        return p.equals(me.name());
      }
    }
    return me.name().compareTo(them.name()) < 0;
  }

  /** A primary at {@code epoch} named {@code name} outranks one at {@code otherEpoch} named {@code other}. */
  static boolean outranks(long epoch, String name, long otherEpoch, String other) {
    return epoch > otherEpoch || epoch == otherEpoch && name.compareTo(other) < 0;
  }

  private static boolean claimsPrimary(AgentMessage m) {
    return m != null && m.getRole() == Role.ROLE_PRIMARY;
  }

  /** An epoch above every epoch this node has heard of. */
  private static long nextEpoch(Situation s, AgentMessage pv) {
    long e = s.epoch();
    AgentMessage peer = pv != null ? pv : s.peer().message();
    if (peer != null) {
      e = Math.max(e, peer.getEpoch());
    }
    WitnessMessage w = s.witness().message();
    if (w != null) {
      e = Math.max(e, Math.max(w.getEpoch(), w.getPrimaryEpoch()));
    }
    return e + 1;
  }

  private static String witnessReason(Situation s) {
    WitnessMessage w = s.witness().message();
    if (!s.witnessHeard()) {
      return " (the witness is not reachable)";
    }
    return w.getReason().isEmpty() ? "" : " (" + w.getReason() + ")";
  }
}
