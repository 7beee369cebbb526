package io.replicator.agent.cluster;

import io.replicator.LocalData;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.AgentRecord;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.LeaseReply;
import io.replicator.proto.LeaseRequest;
import io.replicator.proto.Registration;
import io.replicator.proto.ReplicationState;
import io.replicator.proto.Request;
import io.replicator.proto.Role;
import io.replicator.proto.WitnessMessage;
import io.replicator.proto.WitnessRecord;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;
import java.util.PriorityQueue;
import java.util.Random;
import java.util.function.Consumer;

/**
 * A whole pair on one thread and virtual time: two data nodes running the real {@link
 * NodeController} and {@link RoleDecider}, a witness running the real {@link WitnessCore}, a
 * seeded network between them, and a model of the data path (each node's log of acknowledged
 * writes, the replication link, resyncs, and the application's gate). A seed decides everything,
 * so a failing seed replays exactly and prints the trace that led to it.
 *
 * <p>Faults: messages delayed, dropped, duplicated and reordered; links partitioned in one or both
 * directions and healed; a link refused (the secret does not match); a node killed (its memory
 * lost, its disk kept) and restarted, after a JVM start of random length; a node paused (a long
 * GC or a frozen VM) and its monotonic clock jumping ahead; the witness restarted, with or
 * without its record; operators promoting, demoting and swapping at random moments.
 *
 * <p>Invariants, checked after every event: no two nodes can acknowledge a write at the same
 * instant; a node that acknowledges a write holds every write acknowledged before; a resync never
 * overwrites an acknowledged write the source lacks. Then, once every fault is healed and both
 * nodes run: exactly one primary, serving, with the pair in sync, within a bounded time.
 *
 * <p>Without a witness, a partition (or a pause) that outlasts the peer timeout makes the
 * secondary take over while the primary still serves: the configuration accepts that split brain
 * (it is the witness's job to prevent it). Runs with such faults check instead that the split
 * brain is refused, never merged, and that the pair still ends with one primary.
 */
final class PairSimulation {
  static final Duration HEARTBEAT = Duration.ofMillis(100);
  static final Duration PEER_TIMEOUT = Duration.ofMillis(600);
  static final String ALPHA = "alpha";
  static final String BETA = "beta";

  /** What a run does. */
  record Options(long seed, boolean witness, Duration faultPhase, boolean partitions, boolean operators,
      boolean startTogether) {}

  /** What a run found. */
  record Outcome(long seed, boolean passed, String failure, int events, int writes, int faults,
      long settleMillis, boolean splitBrainAccepted, List<String> trace) {

    String summary() {
      return "seed " + seed + ": " + (passed ? "passed" : "FAILED: " + failure) + " (" + events + " events, "
          + writes + " acknowledged writes, " + faults + " faults, one primary " + settleMillis
          + " ms after healing" + (splitBrainAccepted ? ", split brain accepted without a witness" : "") + ")";
    }
  }

  /** An invariant broke. */
  static final class Violation extends RuntimeException {
    Violation(String message) {
      super(message);
    }
  }

  private final Options options;
  private final Random rnd;
  private long now;
  private long seq;
  private final PriorityQueue<Event> queue = new PriorityQueue<>();
  private final ArrayDeque<String> trace = new ArrayDeque<>();
  private final Node alpha;
  private final Node beta;
  private final WitnessNode witness;
  private final Network net = new Network();
  private int nextWrite;
  private long generations;
  private final BitSet acknowledged = new BitSet();
  private int events;
  private int faults;
  private boolean forced;
  private boolean splitBrainAccepted;
  private boolean healing;

  private record Event(long at, long seq, Object target, Runnable action, String what) implements Comparable<Event> {
    @Override
    public int compareTo(Event o) {
      int c = Long.compare(at, o.at);
      return c != 0 ? c : Long.compare(seq, o.seq);
    }
  }

  PairSimulation(Options options) {
    this.options = options;
    this.rnd = new Random(options.seed());
    this.alpha = new Node(ALPHA);
    this.beta = new Node(BETA);
    alpha.peer = beta;
    beta.peer = alpha;
    this.witness = options.witness() ? new WitnessNode() : null;
  }

  // ---------------------------------------------------------------- running

  Outcome run() {
    String failure = null;
    long settle = -1;
    try {
      if (witness != null) {
        witness.start();
      }
      alpha.boot(ms(0, 50));
      beta.boot(options.startTogether() ? ms(0, 50) : ms(0, 3000));
      schedule(ms(5, 30), null, this::workloadTick, "workload");
      long faultEnd = options.faultPhase().toNanos();
      schedule(ms(300, 1500), null, this::fault, "fault");
      runUntil(faultEnd);
      healEverything();
      long healedAt = now;
      long limit = now + Duration.ofSeconds(30).toNanos();
      long stableSince = -1;
      while (now < limit) {
        runUntil(now + HEARTBEAT.toNanos());
        if (settled()) {
          if (stableSince < 0) {
            stableSince = now;
          }
          if (now - stableSince >= PEER_TIMEOUT.toNanos() * 3) {
            break;
          }
        } else {
          stableSince = -1;
        }
      }
      if ((stableSince < 0 || now - stableSince < PEER_TIMEOUT.toNanos() * 3) && !forced) {
        // after an operator's forced promotion, the pair may rightly wait for the operator again
        throw new Violation("no single serving primary with the pair in sync 30 s after healing: " + describe());
      }
      settle = stableSince < 0 ? -1 : Duration.ofNanos(stableSince - healedAt).toMillis();
    } catch (Violation v) {
      failure = v.getMessage();
      note("VIOLATION: " + v.getMessage());
    }
    return new Outcome(options.seed(), failure == null, failure, events, acknowledged.cardinality(), faults, settle,
        splitBrainAccepted, List.copyOf(trace));
  }

  private void runUntil(long until) {
    while (!queue.isEmpty() && queue.peek().at() <= until) {
      Event e = queue.poll();
      now = e.at();
      if (e.target() instanceof Node n && n.pausedUntil > now) {
        // a paused process does nothing until it resumes; what it was to do waits, in order
        queue.add(new Event(n.pausedUntil, e.seq(), e.target(), e.action(), e.what()));
        continue;
      }
      events++;
      e.action().run();
      net.maintainReplication();
      alpha.noteRoleChange();
      beta.noteRoleChange();
      checkSafety();
    }
    now = Math.max(now, until);
  }

  private void schedule(long delay, Object target, Runnable action, String what) {
    queue.add(new Event(now + delay, seq++, target, action, what));
  }

  private long ms(long min, long max) {
    return Duration.ofMillis(min + (max > min ? rnd.nextLong(max - min + 1) : 0)).toNanos();
  }

  void note(String line) {
    trace.addLast(String.format("%9.3f %s", now / 1e6, line));
    if (trace.size() > 400) {
      trace.removeFirst();
    }
  }

  // ---------------------------------------------------------------- faults

  private void fault() {
    if (healing) {
      return;
    }
    faults++;
    int kind = rnd.nextInt(100);
    Node n = rnd.nextBoolean() ? alpha : beta;
    if (kind < 18) {
      if (n.alive) {
        note("FAULT kill -9 " + n.name);
        n.kill();
        schedule(ms(200, 4000), null, () -> {
          if (!n.alive) {
            n.boot(ms(0, 2000));
          }
        }, "restart " + n.name);
      }
    } else if (kind < 30 && options.partitions()) {
      boolean both = rnd.nextBoolean();
      Link l = net.pick(rnd, n);
      note("FAULT partition " + l + (both ? " both ways" : " one way"));
      l.up = false;
      if (both) {
        net.reverse(l).up = false;
      }
      if (witness == null && l.carriesPeerTraffic()) {
        splitBrainAccepted |= PEER_TIMEOUT.toNanos() < Duration.ofMillis(4000).toNanos();
      }
      schedule(ms(100, 4000), null, () -> {
        l.up = true;
        net.reverse(l).up = true;
        note("heal " + l);
      }, "heal");
    } else if (kind < 42) {
      Link l = net.pick(rnd, n);
      l.minDelay = ms(0, 20);
      l.maxDelay = l.minDelay + ms(0, options.partitions() ? 800 : 300);
      l.drop = rnd.nextInt(4) == 0 ? 0.3 : 0;
      l.duplicate = rnd.nextInt(4) == 0 ? 0.2 : 0;
      note("FAULT " + l + " delay " + l.minDelay / 1_000_000 + "-" + l.maxDelay / 1_000_000 + " ms, drop " + l.drop
          + ", duplicate " + l.duplicate);
      if (witness == null && l.carriesPeerTraffic() && (l.drop > 0 || l.maxDelay > PEER_TIMEOUT.toNanos() / 3)
          && options.partitions()) {
        splitBrainAccepted = true;
      }
      schedule(ms(200, 3000), null, l::reset, "calm " + l);
    } else if (kind < 50) {
      note("FAULT secret mismatch");
      net.refusing = true;
      schedule(ms(500, 4000), null, () -> net.refusing = false, "secret fixed");
    } else if (kind < 60 && options.partitions()) {
      if (n.alive) {
        long pause = ms(100, 3000);
        note("FAULT " + n.name + " paused " + pause / 1_000_000 + " ms");
        n.pausedUntil = now + pause;
        // a silence of the peer timeout, counted from the last heartbeat before the pause
        if (witness == null && pause > PEER_TIMEOUT.minus(HEARTBEAT.multipliedBy(2)).toNanos()) {
          splitBrainAccepted = true;
        }
      }
    } else if (kind < 66) {
      if (n.alive) {
        long jump = ms(50, 2000);
        note("FAULT " + n.name + " monotonic clock jumps " + jump / 1_000_000 + " ms ahead");
        n.clockOffset += jump;
        if (witness == null && jump > PEER_TIMEOUT.toNanos() / 2 && options.partitions()) {
          splitBrainAccepted = true;
        }
      }
    } else if (kind < 72 && witness != null) {
      boolean lose = rnd.nextInt(3) == 0;
      note("FAULT witness restarted" + (lose ? " without its record" : ""));
      witness.restart(lose);
    } else if (options.operators() && n.controller != null) {
      // an operator's command reaches the agent like any request: not while its process stands still
      schedule(0, n, () -> {
        if (n.controller != null && !healing) {
          operator(n);
        }
      }, "operator " + n.name);
    }
    schedule(ms(200, 2000), null, this::fault, "fault");
  }

  private void operator(Node n) {
    int what = rnd.nextInt(10);
    String name = what < 3 ? "promote" : what < 5 ? "demote" : what < 9 ? "swap" : "promote --force";
    if (name.equals("promote") && witness == null) {
      // without a witness a promotion is the operator's word that the peer is gone
      name = "promote --force";
    }
    note("OPERATOR " + name + " on " + n.name);
    NodeController c = n.controller;
    var result = switch (name) {
      case "promote" -> c.promote(false);
      case "demote" -> c.demote(false);
      case "swap" -> c.swap();
      default -> {
        forced = true;
        yield c.promote(true);
      }
    };
    result.whenComplete((ok, e) -> note(n.name + " " + (e == null ? ok.strip() : "refused: " + e.getMessage())));
  }

  private void healEverything() {
    healing = true;
    note("HEAL everything");
    net.healAll();
    for (Node n : List.of(alpha, beta)) {
      n.pausedUntil = 0;
      if (!n.alive) {
        n.boot(ms(0, 2000));
      }
    }
    if (witness != null && !witness.up) {
      witness.restart(false);
    }
  }

  // ---------------------------------------------------------------- invariants

  private void checkSafety() {
    if (forced) {
      return;
    }
    boolean a = alpha.canAcknowledge();
    boolean b = beta.canAcknowledge();
    if (a && b && !splitBrainAccepted) {
      throw new Violation("both nodes can acknowledge writes: " + describe());
    }
  }

  private boolean settled() {
    Node p = alpha.isServingPrimary() ? alpha : beta.isServingPrimary() ? beta : null;
    if (p == null || p.peer.controller == null || p.peer.controller.role() != Role.ROLE_SECONDARY
        || p.peer.controller.busy()) {
      return false;
    }
    if (p.peer.controller.role() == Role.ROLE_PRIMARY) {
      return false;
    }
    boolean inSync = net.replicationOf(p) != null && net.replicationOf(p).inSync();
    return inSync || (splitBrainAccepted || forced) && p.splitBrainSeen;
  }

  String describe() {
    return alpha.describe() + " | " + beta.describe() + (witness != null ? " | " + witness.describe() : "");
  }

  // ---------------------------------------------------------------- the application's writes

  private void workloadTick() {
    for (Node n : List.of(alpha, beta)) {
      if (n.pausedUntil <= now && n.canAcknowledge()) {
        int id = nextWrite++;
        Replication r = net.replicationOf(n);
        BitSet missing = (BitSet) acknowledged.clone();
        missing.andNot(n.disk.log);
        if (!missing.isEmpty() && !forced && !splitBrainAccepted) {
          throw new Violation(n.name + " acknowledges write " + id + " without acknowledged writes " + missing + ": "
              + describe());
        }
        n.disk.log.set(id);
        if (r != null) {
          r.secondary.disk.log.set(id);
        } else if (!n.disk.peerOutOfDate) {
          // the first write the peer misses starts a new generation, as the library does
          n.disk.peerOutOfDate = true;
          n.disk.generation = ++generations;
        }
        acknowledged.set(id);
      }
    }
    schedule(ms(5, 40), null, this::workloadTick, "workload");
  }

  // ---------------------------------------------------------------- a data node

  /** What a node's disk keeps across kills: the agent's record and the data. */
  static final class Disk {
    AgentRecord record = AgentRecord.getDefaultInstance();
    final BitSet log = new BitSet();
    boolean consistent = true;
    boolean peerOutOfDate;
    long generation;
    /** An operator's (or a deposition's) wish to discard this node's data at the next replica connection. */
    boolean discardLocal;

    LocalData local() {
      return new LocalData(consistent, peerOutOfDate, generation, 0, false);
    }
  }

  final class Node {
    final String name;
    Node peer;
    final Disk disk = new Disk();
    boolean alive;
    int incarnation;
    long pausedUntil;
    long clockOffset;
    NodeController controller;
    boolean replicaRunning;
    /** The application: started, registered, and the last gate its lease gave it. */
    boolean appRunning;
    boolean appRegistered;
    LeaseReply gate;
    long aloneDeadline;
    boolean splitBrainSeen;

    Node(String name) {
      this.name = name;
    }

    long clock() {
      return now + clockOffset;
    }

    void boot(long jvmStart) {
      alive = true;
      int inc = ++incarnation;
      note(name + " process starts (links listen in " + jvmStart / 1_000_000 + " ms)");
      schedule(jvmStart, this, () -> {
        if (incarnation != inc) {
          return;
        }
        controller = new NodeController(settings(name), new Io(this, inc), this::clock, disk.record, disk.local());
        controller.start();
        heartbeat(inc);
      }, name + " listening");
    }

    private void heartbeat(int inc) {
      if (incarnation != inc || controller == null) {
        return;
      }
      controller.tick();
      schedule(HEARTBEAT.toNanos(), this, () -> heartbeat(inc), name + " tick");
    }

    void kill() {
      alive = false;
      incarnation++;
      controller = null;
      replicaRunning = false;
      stopApp();
      pausedUntil = 0;
      net.dropReplication(this);
    }

    void stopApp() {
      appRunning = false;
      appRegistered = false;
      gate = null;
      aloneDeadline = 0;
    }

    boolean isServingPrimary() {
      return controller != null && controller.role() == Role.ROLE_PRIMARY && !controller.busy() && appRegistered
          && canAcknowledge();
    }

    /** The application here would acknowledge a write now. */
    boolean canAcknowledge() {
      if (!alive || !appRegistered || gate == null || !gate.getWritesAllowed() || pausedUntil > now) {
        return false;
      }
      Replication r = net.replicationOf(this);
      if (r != null && r.primary == this) {
        return true;
      }
      return gate.getAloneAllowed() && clock() < aloneDeadline;
    }

    void appStarted(int inc) {
      appRunning = true;
      // the application registers with its agent a little after its start
      schedule(ms(5, 200), this, () -> {
        if (incarnation != inc || !appRunning || controller == null) {
          return;
        }
        LeaseReply r = controller.lease(LeaseRequest.newBuilder().setPhase(LeaseRequest.Phase.REGISTER).build());
        if (r.getRole() == Role.ROLE_PRIMARY) {
          appRegistered = true;
          note(name + " application registered");
          renew(inc);
        } else {
          schedule(ms(50, 200), this, () -> appStarted(inc), name + " app retries");
        }
      }, name + " app registers");
    }

    private void renew(int inc) {
      if (incarnation != inc || !appRunning || controller == null) {
        return;
      }
      long sentAt = clock();
      Replication r = net.replicationOf(this);
      boolean connected = r != null && r.primary == this;
      ApplicationReport report = ApplicationReport.newBuilder()
          .setState(connected ? ReplicationState.STATE_PRIMARY : ReplicationState.STATE_ALONE)
          .setPeerConnected(connected)
          .setPeerOutOfDate(disk.peerOutOfDate)
          .setInSync(connected && r.inSync())
          .setGeneration(disk.generation)
          .build();
      LeaseReply reply = controller.lease(LeaseRequest.newBuilder().setPhase(LeaseRequest.Phase.RENEW)
          .setReport(report).build());
      if (reply.getRole() != Role.ROLE_PRIMARY) {
        gate = null;
        appRegistered = false;
        return;
      }
      gate = reply;
      aloneDeadline = !reply.getAloneAllowed() ? 0
          : reply.getAloneValidMillis() == 0 ? Long.MAX_VALUE
          : sentAt + Duration.ofMillis(reply.getAloneValidMillis()).toNanos();
      schedule(HEARTBEAT.toNanos() / 2, this, () -> renew(inc), name + " lease");
    }

    private String lastRole = "";

    void noteRoleChange() {
      if (controller == null) {
        return;
      }
      String r = NodeController.roleName(controller.role()) + "@" + controller.epoch() + (controller.busy() ? "…" : "");
      if (!r.equals(lastRole)) {
        Decision d = controller.lastDecision();
        note(name + " " + lastRole + " -> " + r + (d.reason() != null ? " (" + d.reason() + ")" : "")
            + (d.problem() != null ? " [" + d.problem() + "]" : ""));
        lastRole = r;
      }
    }

    String describe() {
      if (!alive) {
        return name + " dead";
      }
      if (controller == null) {
        return name + " starting";
      }
      Replication r = net.replicationOf(this);
      return name + " " + NodeController.roleName(controller.role()) + "@" + controller.epoch()
          + (controller.busy() ? " (changing)" : "") + (appRegistered ? " app" : "") + (replicaRunning ? " replica" : "")
          + (canAcknowledge() ? " WRITES" : "") + (disk.consistent ? "" : " inconsistent")
          + (disk.peerOutOfDate ? " peer-outdated" : "") + " log " + disk.log.cardinality()
          + (r != null ? " link" + (r.inSync() ? " in-sync" : " resync") : "")
          + (pausedUntil > now ? " PAUSED" : "");
    }
  }

  private NodeController.Settings settings(String self) {
    Situation.Rules rules = new Situation.Rules(self, self.equals(ALPHA) ? BETA : ALPHA, options.witness(), true,
        Optional.empty(), HEARTBEAT, PEER_TIMEOUT, Optional.empty());
    return new NodeController.Settings(rules, Registration.getDefaultInstance(), Duration.ofSeconds(2), 3,
        Duration.ofSeconds(10));
  }

  /** The node's effects on the simulated world; every callback is an event on the node's own timeline. */
  private final class Io implements NodeIo {
    private final Node node;
    private final int incarnation;

    Io(Node node, int incarnation) {
      this.node = node;
      this.incarnation = incarnation;
    }

    private void later(long delay, String what, Runnable r) {
      schedule(delay, node, () -> {
        if (node.incarnation == incarnation) {
          r.run();
        }
      }, node.name + " " + what);
    }

    @Override
    public boolean sendToPeer(AgentMessage message) {
      return net.sendAgent(node, node.peer, message);
    }

    @Override
    public void sendToWitness(AgentMessage message) {
      net.sendToWitness(node, message);
    }

    @Override
    public void persist(AgentRecord record) {
      node.disk.record = record;
    }

    @Override
    public void closeReplica(Consumer<LocalData> then) {
      later(ms(1, 30), "replica closed", () -> {
        node.replicaRunning = false;
        net.dropReplication(node);
        then.accept(node.disk.local());
      });
    }

    @Override
    public void startApplication(Consumer<Boolean> then) {
      // the library opening as primary drops any old wish to discard this node's data
      node.disk.discardLocal = false;
      node.appStarted(incarnation);
      later(ms(20, 1500), "start script done", () -> then.accept(true));
    }

    @Override
    public void stopApplication(Consumer<Stopped> then) {
      later(ms(10, 500), "application stopped", () -> {
        Replication r = net.replicationOf(node);
        boolean inSync = node.appRegistered && r != null && r.inSync();
        node.stopApp();
        net.dropReplication(node);
        then.accept(new Stopped(inSync, node.disk.local()));
      });
    }

    @Override
    public void startReplica(boolean discardLocalChanges, Consumer<Optional<String>> then) {
      later(ms(1, 50), "replica started", () -> {
        node.replicaRunning = true;
        node.disk.discardLocal |= discardLocalChanges;
        then.accept(Optional.empty());
      });
    }

    @Override
    public void checkApplication(Consumer<Optional<String>> then) {
      later(ms(1, 5), "checked", () -> then.accept(Optional.empty()));
    }

    @Override
    public void event(io.replicator.proto.EventKind kind, String reason) {
      // the operator's history is the agent's; the trace notes role changes already
    }

    @Override
    public ReplicaView replica() {
      if (!node.replicaRunning) {
        return null;
      }
      Replication r = net.replicationOf(node);
      return new ReplicaView(r != null && r.secondary == node, node.disk.consistent,
          node.disk.peerOutOfDate && !node.disk.discardLocal,
          node.disk.generation);
    }
  }

  // ---------------------------------------------------------------- the witness

  final class WitnessNode {
    WitnessRecord record = WitnessRecord.getDefaultInstance();
    WitnessCore core;
    boolean up;
    int incarnation;

    void start() {
      up = true;
      int inc = ++incarnation;
      core = new WitnessCore("sim", List.of(ALPHA, BETA), HEARTBEAT, PEER_TIMEOUT, () -> now, record,
          r -> record = r);
      schedule(HEARTBEAT.toNanos(), this, () -> tick(inc), "witness tick");
    }

    private void tick(int inc) {
      if (incarnation != inc) {
        return;
      }
      core.tick();
      schedule(HEARTBEAT.toNanos(), this, () -> tick(inc), "witness tick");
    }

    void restart(boolean loseRecord) {
      up = false;
      incarnation++;
      core = null;
      if (loseRecord) {
        record = WitnessRecord.getDefaultInstance();
      }
      schedule(ms(50, 1500), this, this::start, "witness starts");
    }

    String describe() {
      return up ? "witness primary " + record.getPrimary() + "@" + record.getPrimaryEpoch() + " outdated "
          + record.getOutdatedList() : "witness down";
    }
  }

  // ---------------------------------------------------------------- the network

  /** One direction of one kind of link. */
  final class Link {
    final String from;
    final String to;
    final String kind;
    boolean up = true;
    long minDelay = Duration.ofMillis(1).toNanos();
    long maxDelay = Duration.ofMillis(3).toNanos();
    double drop;
    double duplicate;

    Link(String from, String to, String kind) {
      this.from = from;
      this.to = to;
      this.kind = kind;
    }

    void reset() {
      minDelay = Duration.ofMillis(1).toNanos();
      maxDelay = Duration.ofMillis(3).toNanos();
      drop = 0;
      duplicate = 0;
    }

    boolean carriesPeerTraffic() {
      return !kind.equals("witness");
    }

    long delay() {
      return minDelay + (maxDelay > minDelay ? rnd.nextLong(maxDelay - minDelay + 1) : 0);
    }

    @Override
    public String toString() {
      return kind + " " + from + "->" + to;
    }
  }

  /** The replication link between a primary's application and a secondary's replica server. */
  final class Replication {
    final Node primary;
    final Node secondary;
    long resyncDoneAt;

    Replication(Node primary, Node secondary) {
      this.primary = primary;
      this.secondary = secondary;
    }

    boolean inSync() {
      return resyncDoneAt != 0 && now >= resyncDoneAt && !primary.disk.peerOutOfDate;
    }
  }

  final class Network {
    final List<Link> links = new ArrayList<>();
    boolean refusing;
    Replication replication;
    long connectingSince;

    Network() {
      for (String kind : List.of("agent", "data")) {
        links.add(new Link(ALPHA, BETA, kind));
        links.add(new Link(BETA, ALPHA, kind));
      }
      for (String n : List.of(ALPHA, BETA)) {
        links.add(new Link(n, "witness", "witness"));
        links.add(new Link("witness", n, "witness"));
      }
    }

    Link link(String from, String to, String kind) {
      for (Link l : links) {
        if (l.from.equals(from) && l.to.equals(to) && l.kind.equals(kind)) {
          return l;
        }
      }
      throw new IllegalArgumentException(from + "->" + to + " " + kind);
    }

    Link reverse(Link l) {
      return link(l.to, l.from, l.kind);
    }

    Link pick(Random r, Node n) {
      List<Link> mine = links.stream().filter(l -> l.from.equals(n.name) || l.to.equals(n.name)).toList();
      List<Link> usable = witness == null ? mine.stream().filter(Link::carriesPeerTraffic).toList() : mine;
      return usable.get(r.nextInt(usable.size()));
    }

    void healAll() {
      refusing = false;
      for (Link l : links) {
        l.up = true;
        l.reset();
      }
    }

    boolean sendAgent(Node from, Node to, AgentMessage m) {
      if (refusing) {
        // the peer's agent refuses the handshake: the sender learns it, nothing is delivered
        schedule(ms(1, 5), from, () -> {
          if (from.controller != null && to.alive && to.controller != null) {
            from.controller.onPeerRefused("authentication failed: peer '" + to.name
                + "' does not hold this cluster's shared secret");
          }
        }, from.name + " refused");
        return false;
      }
      Link l = link(from.name, to.name, "agent");
      if (!l.up || !to.alive) {
        return false;
      }
      deliver(l, to, () -> {
        if (to.controller != null) {
          to.controller.onPeerMessage(m);
        }
      }, "agent " + from.name + "->" + to.name);
      return true;
    }

    void sendToWitness(Node from, AgentMessage m) {
      Link l = link(from.name, "witness", "witness");
      if (!l.up || refusing) {
        return;
      }
      deliver(l, witness, () -> {
        if (!witness.up) {
          return;
        }
        WitnessMessage answer = witness.core.onMessage(from.name, m);
        if (answer == null) {
          return;
        }
        Link back = link("witness", from.name, "witness");
        if (back.up) {
          deliver(back, from, () -> {
            if (from.controller != null) {
              from.controller.onWitnessMessage(answer);
            }
          }, "witness->" + from.name);
        }
      }, from.name + "->witness");
    }

    private void deliver(Link l, Object target, Runnable r, String what) {
      if (l.drop > 0 && rnd.nextDouble() < l.drop) {
        return;
      }
      schedule(l.delay(), target, r, what);
      if (l.duplicate > 0 && rnd.nextDouble() < l.duplicate) {
        schedule(l.delay(), target, r, what + " (again)");
      }
    }

    Replication replicationOf(Node n) {
      return replication != null && (replication.primary == n || replication.secondary == n) ? replication : null;
    }

    void dropReplication(Node n) {
      if (replication != null && (replication.primary == n || replication.secondary == n)) {
        note("replication link " + replication.primary.name + "->" + replication.secondary.name + " down");
        replication = null;
      }
    }

    /** Brings the replication link up or down as the two nodes and the network allow. */
    void maintainReplication() {
      if (replication != null) {
        Node p = replication.primary;
        Node s = replication.secondary;
        if (!p.alive || !s.alive || !p.appRegistered || !s.replicaRunning || !link(p.name, s.name, "data").up
            || !link(s.name, p.name, "data").up || refusing || p.pausedUntil > now || s.pausedUntil > now) {
          dropReplication(p);
        } else if (replication.resyncDoneAt != 0 && now >= replication.resyncDoneAt && !s.disk.consistent) {
          finishResync(replication);
        }
        return;
      }
      for (Node p : List.of(alpha, beta)) {
        Node s = p.peer;
        if (p.alive && s.alive && p.appRegistered && s.replicaRunning && link(p.name, s.name, "data").up
            && link(s.name, p.name, "data").up && !refusing && p.pausedUntil <= now && s.pausedUntil <= now) {
          connect(p, s);
        }
      }
    }

    private void connect(Node p, Node s) {
      BitSet extra = (BitSet) s.disk.log.clone();
      extra.andNot(p.disk.log);
      if (!extra.isEmpty() && !s.disk.discardLocal) {
        if (!p.splitBrainSeen) {
          note("split brain refused: " + s.name + " holds " + extra.cardinality() + " writes " + p.name + " lacks");
        }
        p.splitBrainSeen = true;
        return;
      }
      if (!extra.isEmpty()) {
        BitSet lost = (BitSet) extra.clone();
        lost.and(acknowledged);
        if (!lost.isEmpty() && !forced && !splitBrainAccepted) {
          throw new Violation("resync from " + p.name + " discards acknowledged writes " + lost + " on " + s.name
              + ": " + describe());
        }
      }
      replication = new Replication(p, s);
      // the replica's wish to discard its data is used by this connection, whatever it finds
      s.disk.discardLocal = false;
      if (p.disk.generation == 0 && s.disk.generation == 0) {
        // two fresh nodes take a first generation together
        p.disk.generation = ++generations;
        s.disk.generation = p.disk.generation;
      }
      boolean same = s.disk.log.equals(p.disk.log) && !p.disk.peerOutOfDate && s.disk.consistent;
      if (same) {
        replication.resyncDoneAt = now;
        note("replication " + p.name + "->" + s.name + " up, in sync");
      } else {
        s.disk.consistent = false;
        replication.resyncDoneAt = now + ms(20, 400);
        note("replication " + p.name + "->" + s.name + " up, resync");
      }
      p.splitBrainSeen = false;
    }

    private void finishResync(Replication r) {
      r.secondary.disk.log.clear();
      r.secondary.disk.log.or(r.primary.disk.log);
      r.secondary.disk.consistent = true;
      r.secondary.disk.peerOutOfDate = false;
      r.secondary.disk.discardLocal = false;
      r.primary.disk.peerOutOfDate = false;
      r.secondary.disk.generation = r.primary.disk.generation;
      note("resync " + r.primary.name + "->" + r.secondary.name + " done");
    }
  }
}
