package io.replicator.agent.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.agent.cluster.Decision.Change;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.Request;
import io.replicator.proto.Role;
import io.replicator.proto.WitnessMessage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link RoleDecider} by table (one row per rule an operator relies on) and exhaustively: every
 * pair of node states that hear each other, decided at the same instant, never makes two primaries.
 */
class RoleDeciderTest {
  static final Duration BEAT = Duration.ofMillis(100);
  static final Duration TIMEOUT = Duration.ofMillis(600);
  static final long MS = 1_000_000;
  /** "Now": long after the links started listening, so no start-up wait is in play unless a row says so. */
  static final long NOW = 100_000 * MS;

  /** A situation built row by row: this node alpha, its peer beta. */
  static final class S {
    Role role = Role.ROLE_WAIT;
    long epoch = 1;
    long listening = NOW - 10_000 * MS;
    boolean witness;
    boolean automatic = true;
    Optional<Duration> startAlone = Optional.empty();
    boolean consistent = true;
    boolean peerOutdated;
    Role lastRole = Role.ROLE_SECONDARY;
    boolean metPeer = true;
    AgentMessage peer;
    long peerHeardAt;
    long refusedAt;
    String refusal = "";
    long replicationUpAt;
    boolean hearsUs;
    WitnessMessage witnessMessage;
    long witnessHeardAt;
    long grantEpoch;
    long grantAt;
    long aloneUntil;
    ApplicationReport report;
    long peerDownSince;
    boolean operatorPromote;
    boolean steppedDown;

    S with(UnaryOperator<S> change) {
      return change.apply(this);
    }

    S hears(Role peerRole, long peerEpoch) {
      peer = AgentMessage.newBuilder().setNode("beta").setRole(peerRole).setEpoch(peerEpoch).setConsistent(true).build();
      peerHeardAt = NOW - 50 * MS;
      return this;
    }

    Situation situation() {
      return new Situation(NOW,
          new Situation.Rules("alpha", "beta", witness, automatic, Optional.empty(), BEAT, TIMEOUT, startAlone),
          role, epoch, listening,
          new Situation.Local(consistent, peerOutdated, lastRole, metPeer, 7),
          new Situation.Peer(peer, peerHeardAt, refusedAt, refusal, replicationUpAt, hearsUs),
          new Situation.WitnessView(witnessMessage, witnessHeardAt, grantEpoch, grantAt, aloneUntil),
          new Situation.App(report, report == null ? 0 : NOW - 10 * MS, peerDownSince),
          new Situation.Operator(operatorPromote, steppedDown, false));
    }

    Decision decide() {
      return RoleDecider.decide(situation());
    }
  }

  static S s() {
    return new S();
  }

  /** A row: a description, the situation, and what must come of it. */
  record Row(String scenario, S situation, Change change, String problemContains, Request witnessRequest) {
    @Override
    public String toString() {
      return scenario;
    }
  }

  static Row row(String scenario, S s, Change change, String problem) {
    return new Row(scenario, s, change, problem, null);
  }

  static Row row(String scenario, S s, Change change, String problem, Request request) {
    return new Row(scenario, s, change, problem, request);
  }

  static List<Row> rows() {
    List<Row> r = new ArrayList<>();
    // ---- start-up without the peer
    r.add(row("a fresh node that never met its peer waits and says so",
        s().with(x -> { x.metPeer = false; x.lastRole = Role.ROLE_UNSPECIFIED; return x; }),
        Change.NONE, "waiting for beta: this node has never met it"));
    r.add(row("a node that was secondary waits: it may lack newer data",
        s(), Change.NONE, "this node was its secondary and may lack newer data"));
    r.add(row("the primary of a healthy pair waits: the peer may have taken over since",
        s().with(x -> { x.lastRole = Role.ROLE_PRIMARY; return x; }),
        Change.NONE, "the pair was in sync when this node stopped"));
    r.add(row("the last primary of a degraded pair starts alone",
        s().with(x -> { x.lastRole = Role.ROLE_PRIMARY; x.peerOutdated = true; return x; }),
        Change.BECOME_PRIMARY, null));
    r.add(row("the last primary of a degraded pair with unfinished resync data waits",
        s().with(x -> { x.lastRole = Role.ROLE_PRIMARY; x.peerOutdated = true; x.consistent = false; return x; }),
        Change.NONE, "inconsistent"));
    r.add(row("nobody starts alone before two peer timeouts of listening",
        s().with(x -> { x.lastRole = Role.ROLE_PRIMARY; x.peerOutdated = true; x.listening = NOW - 1000 * MS;
          return x; }),
        Change.NONE, "listening for it"));
    r.add(row("a configured start-alone timeout lets a consistent node start alone",
        s().with(x -> { x.startAlone = Optional.of(Duration.ofSeconds(5)); return x; }),
        Change.BECOME_PRIMARY, null));
    r.add(row("a start-alone timeout not yet reached waits",
        s().with(x -> { x.startAlone = Optional.of(Duration.ofSeconds(60)); return x; }),
        Change.NONE, "may lack newer data"));
    r.add(row("a refused link is not an absent peer: a wrong secret waits and says so",
        s().with(x -> { x.lastRole = Role.ROLE_PRIMARY; x.peerOutdated = true; x.refusedAt = NOW - 100 * MS;
          x.refusal = "authentication failed: peer 'beta' does not hold this cluster's shared secret"; return x; }),
        Change.NONE, "the link was refused, the secret does not match"));
    r.add(row("with a witness, a node alone asks it, and does not start on its own record",
        s().with(x -> { x.witness = true; x.lastRole = Role.ROLE_PRIMARY; x.peerOutdated = true; return x; }),
        Change.NONE, "waiting for the witness's vote", Request.REQUEST_PROMOTE));
    r.add(row("with a witness, its grant starts a node alone",
        s().with(x -> { x.witness = true; x.grantEpoch = 5; x.grantAt = NOW - 10 * MS; return x; }),
        Change.BECOME_PRIMARY, null));
    r.add(row("a grant older than the peer timeout is not used",
        s().with(x -> { x.witness = true; x.grantEpoch = 5; x.grantAt = NOW - 700 * MS; return x; }),
        Change.NONE, "waiting for the witness's vote", Request.REQUEST_PROMOTE));
    // ---- start-up with the peer
    r.add(row("a peer that serves is followed", s().hears(Role.ROLE_PRIMARY, 3), Change.BECOME_SECONDARY, null));
    r.add(row("the loser of an election becomes secondary",
        s().with(x -> { x.peer = AgentMessage.newBuilder().setNode("beta").setRole(Role.ROLE_WAIT).setConsistent(true)
            .setPeerOutdated(true).build(); x.peerHeardAt = NOW - 10 * MS; return x; }),
        Change.BECOME_SECONDARY, null));
    r.add(row("the winner waits for the loser to be secondary", s().hears(Role.ROLE_WAIT, 1), Change.NONE,
        "waiting for beta to come up as secondary"));
    r.add(row("the winner waits until the secondary loser has heard it lately",
        s().hears(Role.ROLE_SECONDARY, 1), Change.NONE, "waiting for beta to come up as secondary"));
    r.add(row("the winner takes the role once the loser is secondary and hears it",
        s().hears(Role.ROLE_SECONDARY, 1).with(x -> { x.hearsUs = true; return x; }), Change.BECOME_PRIMARY, null));
    r.add(row("with a witness, the winner asks it for the epoch",
        s().hears(Role.ROLE_SECONDARY, 1).with(x -> { x.hearsUs = true; x.witness = true; return x; }),
        Change.NONE, "elected primary; waiting for the witness's vote", Request.REQUEST_PROMOTE));
    r.add(row("a node whose data is inconsistent loses to one whose is not",
        s().hears(Role.ROLE_SECONDARY, 1).with(x -> { x.hearsUs = true; x.consistent = false; return x; }),
        Change.BECOME_SECONDARY, null));
    r.add(row("a node an operator demoted yields to an equal peer",
        s().hears(Role.ROLE_SECONDARY, 1).with(x -> { x.role = Role.ROLE_SECONDARY; x.hearsUs = true;
          x.steppedDown = true; return x; }),
        Change.NONE, null));
    // ---- failover
    r.add(row("a secondary whose peer went silent with the replication link takes over (no witness)",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.peer = msg(Role.ROLE_PRIMARY, 1); x.peerHeardAt = NOW - 700 * MS;
          x.replicationUpAt = NOW - 650 * MS; return x; }),
        Change.BECOME_PRIMARY, null));
    r.add(row("a secondary whose replication link was down while the primary lived does not take over",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.peer = msg(Role.ROLE_PRIMARY, 1); x.peerHeardAt = NOW - 700 * MS;
          x.replicationUpAt = NOW - 3000 * MS; return x; }),
        Change.NONE, "it may have written without this node"));
    r.add(row("a secondary does not take over before the peer timeout",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.peer = msg(Role.ROLE_PRIMARY, 1); x.peerHeardAt = NOW - 500 * MS;
          x.replicationUpAt = NOW - 500 * MS; return x; }),
        Change.NONE, null));
    r.add(row("a secondary that just stalled counts silence from when it could hear again",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.peer = msg(Role.ROLE_PRIMARY, 1); x.peerHeardAt = NOW - 2000 * MS;
          x.replicationUpAt = NOW - 2000 * MS; x.listening = NOW - 10 * MS; return x; }),
        Change.NONE, null));
    r.add(row("a secondary in an unfinished resync never takes over",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.consistent = false; x.peer = msg(Role.ROLE_PRIMARY, 1);
          x.peerHeardAt = NOW - 700 * MS; x.replicationUpAt = NOW - 700 * MS; return x; }),
        Change.NONE, "inconsistent and cannot take over"));
    r.add(row("without automatic failover a secondary waits for an operator",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.automatic = false; x.peer = msg(Role.ROLE_PRIMARY, 1);
          x.peerHeardAt = NOW - 700 * MS; x.replicationUpAt = NOW - 700 * MS; return x; }),
        Change.NONE, "automatic failover is off"));
    r.add(row("a refusing peer is alive: no failover",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.refusedAt = NOW - 100 * MS; x.refusal = "cluster 'x'"; return x; }),
        Change.NONE, "another cluster"));
    r.add(row("with a witness a secondary asks it before taking over",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.witness = true; x.peer = msg(Role.ROLE_PRIMARY, 1);
          x.peerHeardAt = NOW - 700 * MS; x.replicationUpAt = NOW - 700 * MS; return x; }),
        Change.NONE, "peer lost; waiting for the witness's vote", Request.REQUEST_PROMOTE));
    r.add(row("with a witness's grant a secondary takes over at the granted epoch",
        s().with(x -> { x.role = Role.ROLE_SECONDARY; x.witness = true; x.peer = msg(Role.ROLE_PRIMARY, 1);
          x.peerHeardAt = NOW - 700 * MS; x.grantEpoch = 4; x.grantAt = NOW - 5 * MS; return x; }),
        Change.BECOME_PRIMARY, null));
    // ---- primary
    r.add(row("a primary deposed by a newer epoch steps down",
        s().hears(Role.ROLE_PRIMARY, 2).with(x -> { x.role = Role.ROLE_PRIMARY; return x; }),
        Change.BECOME_SECONDARY, null));
    r.add(row("two primaries at one epoch: the higher name steps down",
        s().hears(Role.ROLE_PRIMARY, 1).with(x -> { x.role = Role.ROLE_PRIMARY; return x; }),
        Change.NONE, "split brain: both nodes are primary"));
    r.add(row("a primary the witness no longer recognises steps down",
        s().with(x -> { x.role = Role.ROLE_PRIMARY; x.witness = true;
          x.witnessMessage = WitnessMessage.newBuilder().setPrimary("beta").setPrimaryEpoch(2).build();
          x.witnessHeardAt = NOW - 10 * MS; return x; }),
        Change.BECOME_SECONDARY, null));
    r.add(row("with a witness, a primary cut off from peer and witness is fenced",
        s().with(x -> { x.role = Role.ROLE_PRIMARY; x.witness = true; return x; }),
        Change.NONE, "fenced"));
    r.add(row("with a witness, a primary whose link and peer went quiet asks for leave to write alone",
        s().with(x -> { x.role = Role.ROLE_PRIMARY; x.witness = true;
          x.witnessMessage = WitnessMessage.newBuilder().setPrimary("alpha").setPrimaryEpoch(1).build();
          x.witnessHeardAt = NOW - 10 * MS; x.report = ApplicationReport.getDefaultInstance();
          x.peerDownSince = NOW - 300 * MS; x.replicationUpAt = NOW - 300 * MS; return x; }),
        Change.NONE, null, Request.REQUEST_STAY_ALONE));
    r.add(row("without a witness a primary writes alone freely",
        s().with(x -> { x.role = Role.ROLE_PRIMARY; return x; }), Change.NONE, null, Request.REQUEST_NONE));
    return r;
  }

  static AgentMessage msg(Role role, long epoch) {
    return AgentMessage.newBuilder().setNode("beta").setRole(role).setEpoch(epoch).setConsistent(true).build();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("rows")
  void rule(Row row) {
    Decision d = row.situation().decide();
    assertThat(d.change()).as("change").isEqualTo(row.change());
    if (row.problemContains() != null) {
      assertThat(d.problem()).as("problem").contains(row.problemContains());
    }
    if (row.witnessRequest() != null) {
      assertThat(d.witnessRequest()).as("witness request").isEqualTo(row.witnessRequest());
    }
  }

  @Test
  void aWitnessLeaseOpensAloneWritesOnlyUntilItEnds() {
    S s = s().with(x -> { x.role = Role.ROLE_PRIMARY; x.witness = true;
      x.witnessMessage = WitnessMessage.newBuilder().setPrimary("alpha").setPrimaryEpoch(1).build();
      x.witnessHeardAt = NOW - 10 * MS; x.aloneUntil = NOW + 200 * MS; return x; });
    Decision.Gate open = s.decide().gate();
    assertThat(open.aloneAllowed()).isTrue();
    assertThat(open.aloneUntil()).isEqualTo(NOW + 200 * MS);
    s.aloneUntil = NOW - 1;
    assertThat(s.decide().gate().aloneAllowed()).isFalse();
    assertThat(s.decide().gate().writesAllowed()).as("replicated writes still go").isTrue();
  }

  @Test
  void electionsAreDecidedAlikeFromEitherSide() {
    Situation.Rules[] rules = {
        new Situation.Rules("alpha", "beta", false, true, Optional.empty(), BEAT, TIMEOUT, Optional.empty()),
        new Situation.Rules("alpha", "beta", false, true, Optional.of("beta"), BEAT, TIMEOUT, Optional.empty()),
        new Situation.Rules("alpha", "beta", false, true, Optional.of("alpha"), BEAT, TIMEOUT, Optional.empty())};
    int cases = 0;
    for (Situation.Rules r : rules) {
      Situation.Rules mirrored = new Situation.Rules("beta", "alpha", false, true, r.preferredPrimary(), BEAT, TIMEOUT,
          Optional.empty());
      for (int a = 0; a < 48; a++) {
        for (int b = 0; b < 48; b++) {
          RoleDecider.Candidate ca = candidate("alpha", a);
          RoleDecider.Candidate cb = candidate("beta", b);
          assertThat(RoleDecider.wins(ca, cb, r)).as("%s vs %s", ca, cb).isNotEqualTo(RoleDecider.wins(cb, ca, mirrored));
          cases++;
        }
      }
    }
    assertThat(cases).isEqualTo(3 * 48 * 48);
  }

  private static RoleDecider.Candidate candidate(String name, int bits) {
    return new RoleDecider.Candidate(name, (bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0,
        bits >> 4);
  }

  /**
   * Every pair of states two nodes that hear each other can be in, decided at the same instant from
   * each other's messages: never two primaries, and two primaries that meet always lose one.
   */
  @Test
  void twoNodesThatHearEachOtherNeverBothEndPrimary() {
    Role[] roles = {Role.ROLE_WAIT, Role.ROLE_SECONDARY, Role.ROLE_PRIMARY};
    int checked = 0;
    for (boolean witness : new boolean[] {false, true}) {
      for (int a = 0; a < 3 * 64; a++) {
        for (int b = 0; b < 3 * 64; b++) {
          NodeShape na = shape(roles[a % 3], a / 3);
          NodeShape nb = shape(roles[b % 3], b / 3);
          if (na.grant > 0 && nb.grant > 0) {
            continue; // the witness grants one node per epoch
          }
          Decision da = decide("alpha", "beta", na, nb, witness);
          Decision db = decide("beta", "alpha", nb, na, witness);
          Role ra = after(na.role, da);
          Role rb = after(nb.role, db);
          assertThat(ra == Role.ROLE_PRIMARY && rb == Role.ROLE_PRIMARY
                  && !(na.role == Role.ROLE_PRIMARY && nb.role == Role.ROLE_PRIMARY))
              .as("witness %s: alpha %s -> %s, beta %s -> %s", witness, na, da, nb, db).isFalse();
          if (na.role == Role.ROLE_PRIMARY && nb.role == Role.ROLE_PRIMARY) {
            assertThat(da.change() == Change.BECOME_SECONDARY || db.change() == Change.BECOME_SECONDARY)
                .as("two primaries that meet: alpha %s, beta %s", na, nb).isTrue();
          }
          checked++;
        }
      }
    }
    assertThat(checked).isGreaterThan(50_000);
  }

  /** One node's state in the exhaustive check. */
  record NodeShape(Role role, long epoch, boolean consistent, boolean peerOutdated, boolean steppedDown, long grant,
      boolean hearsPeer) {}

  private static NodeShape shape(Role role, int bits) {
    long epoch = 1 + (bits & 1);
    return new NodeShape(role, epoch, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0, (bits & 16) != 0 ? 3 : 0,
        (bits & 32) != 0);
  }

  private static Decision decide(String self, String peer, NodeShape me, NodeShape other, boolean witness) {
    AgentMessage theirs = AgentMessage.newBuilder().setNode(peer).setRole(other.role()).setEpoch(other.epoch())
        .setConsistent(other.consistent()).setPeerOutdated(other.peerOutdated()).setSteppedDown(other.steppedDown())
        .setGrantEpoch(other.grant()).build();
    boolean linkUp = me.role() != Role.ROLE_WAIT && other.role() != Role.ROLE_WAIT && me.role() != other.role();
    Situation s = new Situation(NOW,
        new Situation.Rules(self, peer, witness, true, Optional.empty(), BEAT, TIMEOUT, Optional.empty()),
        me.role(), me.epoch(), NOW - 10_000 * MS,
        new Situation.Local(me.consistent(), me.peerOutdated(), Role.ROLE_SECONDARY, true, 1),
        new Situation.Peer(theirs, NOW - 20 * MS, 0, "", linkUp ? NOW - 20 * MS : 0, other.hearsPeer()),
        new Situation.WitnessView(null, 0, me.grant(), me.grant() > 0 ? NOW - 20 * MS : 0, 0),
        Situation.App.NONE,
        new Situation.Operator(false, me.steppedDown(), false));
    return RoleDecider.decide(s);
  }

  private static Role after(Role role, Decision d) {
    return switch (d.change()) {
      case BECOME_PRIMARY -> Role.ROLE_PRIMARY;
      case BECOME_SECONDARY -> Role.ROLE_SECONDARY;
      case NONE -> role;
    };
  }
}
