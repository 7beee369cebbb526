package io.replicator.agent.cluster;

import io.replicator.LocalData;
import io.replicator.NodeState;
import io.replicator.ReplicaServer;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.agent.admin.EventHistory;
import io.replicator.agent.admin.OperationFailure;
import io.replicator.agent.admin.StatusDocument;
import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.NodeConfig;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.EventKind;
import io.replicator.transport.TransportSettings;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One data node's agent: decides this node's role and carries it out.
 *
 * <p>Design: a heartbeat loop (one thread) sends this node's state to the peer agent and the
 * witness on every tick over {@link AgentLinks}, then evaluates the role from what it heard.
 * Role changes run one at a time on a second thread, because they run scripts and open or close
 * the replica server, and must not stall heartbeats. As secondary the agent runs the {@link
 * ReplicaServer} itself; as primary it runs the application's start script, and the application,
 * which embeds the library, registers through the admin endpoint ({@code /ops/lease}) and gets
 * the peer, mode and timers from here, and the gate on its writes: alone allowed only with the
 * witness's leave, and everything suspended (fenced) when neither the peer nor the witness is heard.
 *
 * <p>The peer counts as alive while its agent is heard on any link or the replication link is up.
 * A secondary that loses it for the peer timeout takes over: with a witness only when the witness
 * grants it, without one when automatic failover is on. A primary deposed by a newer epoch stops
 * its application and comes back as secondary, discarding its unacknowledged local changes when
 * the witness decided (it never had leave to write alone, so nothing it kept was acknowledged).
 */
public final class DataNodeAgent implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(DataNodeAgent.class);

  private final AgentConfig config;
  private final NodeConfig self;
  private final NodeConfig peer;
  private final AgentLinks links;
  private final ApplicationControl app;
  private final ScheduledExecutorService loop;
  private final ExecutorService transitions;
  private final long startedNanos = System.nanoTime();
  private final Duration heartbeat;
  private final Duration peerTimeout;
  private final Duration leaseTimeout;
  private final Set<String> checkedRoles = Set.of("PRIMARY", "ALONE", "SYNC_SOURCE");

  // role and what was heard; written by the loop and transition threads, read by admin threads
  private volatile NodeState role = NodeState.WAIT;
  private volatile long epoch;
  private volatile boolean inTransition;
  private volatile ReplicaServer replica;
  private volatile AgentMessage peerView;
  private volatile long peerHeard;
  private volatile long peerLastAlive = System.nanoTime();
  private volatile AgentMessage witnessView;
  private volatile long witnessHeard;
  private volatile String witnessRequest = "";
  private volatile boolean aloneGranted;
  private volatile boolean fenced;
  private volatile String problem;
  private volatile StatusDocument.Failover lastFailover;
  private volatile Map<String, Object> lastFailoverFigures = Map.of();
  // the application, as its lease reports it
  private volatile Map<String, String> appReport;
  private volatile long appReportNanos;
  private volatile boolean appRegistered;
  private volatile CompletableFuture<Boolean> released = new CompletableFuture<>();
  private volatile String pendingCommand;
  private volatile String commandResult;
  private volatile boolean commandRequested;
  private volatile int restarts;
  private volatile long lastCheckNanos;
  private volatile long lastSwapNanos;
  private volatile boolean discardOnNextReplica;
  /** The metadata on disk while neither the replica server nor the application holds it: read when they let go. */
  private volatile LocalData localData = new LocalData(false, false, 0, 0, false);

  private final io.replicator.LinkSecurity security;

  private final EventHistory events;

  public DataNodeAgent(AgentConfig config, NodeConfig self, io.replicator.LinkSecurity security, EventHistory events) {
    this.security = security;
    this.events = events;
    this.config = config;
    this.self = self;
    this.peer = config.peerOf(self);
    this.heartbeat = config.timers().heartbeat();
    this.peerTimeout = config.timers().peerTimeout();
    this.leaseTimeout = peerTimeout;
    Set<String> members = new java.util.HashSet<>(Set.of(peer.name()));
    config.witness().ifPresent(w -> members.add(Witness.NAME));
    TransportSettings settings = TransportSettings.defaults(config.cluster(), self.name())
        .withTimers(heartbeat, peerTimeout).withSecurity(security);
    this.links = new AgentLinks(settings, members, this::onMessage);
    Map<String, String> env = new LinkedHashMap<>();
    env.put("REPLICATOR_NODE", self.name());
    env.put("REPLICATOR_CLUSTER", config.cluster());
    env.put("REPLICATOR_ROOT", self.root().toString());
    env.put("REPLICATOR_ADMIN", self.admin().getHostString() + ":" + self.admin().getPort());
    env.put("REPLICATOR_PEER", peer.address().getHostString() + ":" + peer.address().getPort());
    this.app = new ApplicationControl(config.application(), env);
    this.loop = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "replicator-agent-heartbeat"));
    this.transitions = Executors.newSingleThreadExecutor(r -> daemon(r, "replicator-agent-role"));
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /** Listens on the agent addresses and starts the heartbeat loop; the node starts in WAIT. */
  public void start() throws IOException {
    for (InetSocketAddress a : self.agentAddresses()) {
      links.listen(bindable(a));
    }
    refreshLocalData();
    LocalData data = localData;
    log.info("node {} starting in WAIT: data {} at generation {}{}", self.name(),
        data.consistent() ? "consistent" : "INCONSISTENT (unfinished resync)", Long.toHexString(data.generation()),
        data.peerOutOfDate() ? ", with changes the peer lacks" : "");
    loop.scheduleWithFixedDelay(this::tick, 0, heartbeat.toMillis(), TimeUnit.MILLISECONDS);
  }

  private static InetSocketAddress bindable(InetSocketAddress a) {
    return a.isUnresolved() ? new InetSocketAddress(a.getHostString(), a.getPort()) : a;
  }

  // ------------------------------------------------------------------ heartbeat loop

  private void tick() {
    try {
      List<InetSocketAddress> targets = new ArrayList<>(peer.agentAddresses());
      config.witness().ifPresent(w -> targets.add(w.address()));
      links.maintain(targets);
      AgentMessage.Builder m = ownState();
      links.send(peer.name(), m.build());
      if (config.witness().isPresent()) {
        links.send(Witness.NAME, m.setRequest(witnessRequest).build());
      }
      if (!inTransition) {
        evaluate();
      }
    } catch (RuntimeException e) {
      log.error("agent heartbeat failed", e);
    }
  }

  private AgentMessage.Builder ownState() {
    AgentMessage.Builder m = AgentMessage.newBuilder().setNode(self.name()).setRole(role.name()).setEpoch(epoch);
    ReplicaServer r = replica;
    if (role == NodeState.PRIMARY) {
      Map<String, String> a = appReport;
      m.setConsistent(true);
      if (a != null) {
        m.setInSync(Boolean.parseBoolean(a.get("peerConnected")) && !Boolean.parseBoolean(a.get("peerOutOfDate"))
            && !a.containsKey("resyncTotal")).setPeerOutdated(Boolean.parseBoolean(a.get("peerOutOfDate")));
        m.setGeneration(parseHex(a.get("generation")));
      }
    } else if (r != null) {
      ReplicationStatus s = r.status();
      m.setConsistent(s.state() != NodeState.SYNC_TARGET).setGeneration(s.generation());
    } else {
      LocalData d = localData;
      m.setConsistent(d.consistent()).setPeerOutdated(d.peerOutOfDate()).setGeneration(d.generation());
    }
    return m;
  }

  private void onMessage(String from, AgentMessage m) {
    long now = System.nanoTime();
    if (from.equals(Witness.NAME)) {
      witnessView = m;
      witnessHeard = now;
      if (m.getGranted().equals(self.name()) && witnessRequest.equals("stay-alone")) {
        aloneGranted = true;
      }
      if (m.getEpoch() > epoch && role != NodeState.PRIMARY) {
        epoch = m.getEpoch();
      }
      return;
    }
    peerView = m;
    peerHeard = now;
    peerLastAlive = now;
    if (m.getEpoch() > epoch && role != NodeState.PRIMARY) {
      epoch = m.getEpoch();
    }
    switch (m.getRequest()) {
      case "take-over" -> transitions.execute(() -> {
        if (role != NodeState.PRIMARY) {
          epoch = Math.max(epoch, m.getEpoch());
          becomePrimary("swap: " + peer.name() + " handed the primary role over", false);
        }
      });
      case "swap" -> transitions.execute(() -> {
        try {
          if (role == NodeState.PRIMARY) {
            swapNow();
          }
        } catch (OperationFailure e) {
          log.warn("swap requested by {} refused: {}", from, e.getMessage());
        }
      });
      case "resync", "resync-full", "verify" -> {
        if (role == NodeState.PRIMARY) {
          pendingCommand = m.getRequest();
          events.record(m.getRequest().equals("verify") ? EventKind.VERIFY : EventKind.RESYNC, role.name(),
              m.getRequest() + " requested by " + from);
        }
      }
      default -> { }
    }
  }

  private boolean heard(long when, long now) {
    return when != 0 && now - when < peerTimeout.toNanos();
  }

  private static boolean heardWithin(long when, long now, Duration d) {
    return when != 0 && now - when < d.toNanos();
  }

  private boolean peerAgentAlive(long now) {
    return heard(peerHeard, now);
  }

  private boolean witnessAlive(long now) {
    return config.witness().isPresent() && heard(witnessHeard, now);
  }

  private static boolean claimsPrimary(AgentMessage m) {
    return m != null && (m.getRole().equals("PRIMARY") || m.getRole().equals("ALONE") || m.getRole().equals("SYNC_SOURCE"));
  }

  private void evaluate() {
    long now = System.nanoTime();
    boolean peerAgent = peerAgentAlive(now);
    boolean replicationUp = role == NodeState.SECONDARY && replica != null && replica.status().peerConnected()
        || role == NodeState.PRIMARY && appReport != null && Boolean.parseBoolean(appReport.get("peerConnected"))
            && now - appReportNanos < leaseTimeout.toNanos();
    if (peerAgent || replicationUp) {
      peerLastAlive = Math.max(peerLastAlive, replicationUp ? now : peerHeard);
    }
    boolean peerAlive = peerAgent || replicationUp;
    AgentMessage pv = peerAgent ? peerView : null;
    switch (role) {
      case WAIT -> evaluateWait(now, pv);
      case SECONDARY -> evaluateSecondary(now, peerAlive);
      case PRIMARY -> evaluatePrimary(now, pv, peerAlive);
      default -> { }
    }
  }

  private void evaluateWait(long now, AgentMessage pv) {
    boolean witness = config.witness().isPresent();
    if (pv != null && claimsPrimary(pv)) {
      transition(() -> becomeSecondary("peer " + peer.name() + " is primary", false));
      return;
    }
    if (pv != null) {
      // both up, nobody primary: both compute the same winner from what they exchanged
      if (!wins(ownState().build(), pv)) {
        transition(() -> becomeSecondary("peer " + peer.name() + " is elected primary", false));
        return;
      }
      if (!pv.getRole().equals("SECONDARY")) {
        return; // let the loser come up as secondary first, so the new primary connects at once
      }
      if (!witness || granted("promote")) {
        transition(() -> becomePrimary("elected at start (peer " + peer.name() + " is secondary)", true));
      }
      return;
    }
    if (now - startedNanos < 2 * peerTimeout.toNanos()) {
      return;
    }
    AgentMessage own = ownState().build();
    if (!own.getConsistent()) {
      problem = "peer " + peer.name() + " not reachable and local data is inconsistent (unfinished resync); waiting";
      return;
    }
    if (witness) {
      if (granted("promote")) {
        transition(() -> becomePrimary("started without the peer; the witness granted the primary role", true));
      } else {
        problem = "peer " + peer.name() + " not reachable; waiting for the witness's vote"
            + (witnessView != null && !witnessView.getReason().isEmpty() ? " (" + witnessView.getReason() + ")" : "");
      }
    } else if (localData.peerOutOfDate() && (localData.primarySinceMillis() > 0 || localData.crashedAsPrimary())) {
      // a degraded pair's last primary: it holds changes its peer lacks, so it holds the newest data
      transition(() -> becomePrimary("started without the peer: this node was the primary of a degraded pair"
          + " and holds changes the peer lacks", true));
    } else {
      problem = "waiting for " + peer.name() + ": only the last primary of a degraded pair starts alone;"
          + " `replicator promote` overrides";
    }
  }

  /** Whether this node wins the start-up election against {@code pv}: changes the peer lacks, then preference, then name. */
  private boolean wins(AgentMessage own, AgentMessage pv) {
    if (own.getConsistent() != pv.getConsistent()) {
      return own.getConsistent();
    }
    if (own.getPeerOutdated() != pv.getPeerOutdated()) {
      return own.getPeerOutdated();
    }
    Optional<String> preferred = config.preferredPrimary();
    if (preferred.isPresent() && (preferred.get().equals(self.name()) || preferred.get().equals(peer.name()))) {
      return preferred.get().equals(self.name());
    }
    return self.name().compareTo(peer.name()) < 0;
  }

  /** Asks the witness for {@code request} on the next heartbeat; true once it granted it. */
  private boolean granted(String request) {
    witnessRequest = request;
    AgentMessage w = witnessView;
    return w != null && heard(witnessHeard, System.nanoTime()) && w.getGranted().equals(self.name());
  }

  private void evaluateSecondary(long now, boolean peerAlive) {
    ReplicaServer r = replica;
    if (peerAlive) {
      witnessRequest = "";
      if (problem != null && problem.startsWith("peer lost")) {
        problem = null;
      }
      return;
    }
    long silentNanos = now - peerLastAlive;
    if (silentNanos < peerTimeout.toNanos()) {
      return;
    }
    if (r != null && r.status().state() == NodeState.SYNC_TARGET) {
      problem = "peer lost during a resync into this node: its data is inconsistent and cannot take over";
      return;
    }
    long detectionMillis = TimeUnit.NANOSECONDS.toMillis(silentNanos);
    if (config.witness().isPresent()) {
      if (granted("promote")) {
        transition(() -> failover(detectionMillis, "peer lost; the witness granted the primary role"));
      } else {
        problem = "peer lost; waiting for the witness's vote"
            + (witnessView != null && !witnessView.getReason().isEmpty() ? " (" + witnessView.getReason() + ")" : "");
      }
    } else if (config.automaticFailover()) {
      transition(() -> failover(detectionMillis, "peer lost (automatic failover, no witness)"));
    } else {
      problem = "peer lost; automatic failover is off: run `replicator promote` to take over";
    }
  }

  private void failover(long detectionMillis, String reason) {
    long t0 = System.nanoTime();
    log.warn("peer {} silent for {} ms: taking over", peer.name(), detectionMillis);
    becomePrimary("failover: " + reason, true);
    Map<String, Object> figures = new LinkedHashMap<>();
    figures.put("detectionMillis", detectionMillis);
    figures.put("promotionMillis", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    lastFailoverFigures = figures;
  }

  private void evaluatePrimary(long now, AgentMessage pv, boolean peerAlive) {
    boolean witness = config.witness().isPresent();
    AgentMessage w = witnessView;
    // deposed: the peer holds a newer epoch as primary, or the witness granted it the role
    if (pv != null && claimsPrimary(pv) && pv.getEpoch() > epoch
        || witness && w != null && heard(witnessHeard, now) && !w.getPrimary().isEmpty()
            && !w.getPrimary().equals(self.name()) && w.getEpoch() > epoch) {
      boolean discard = witness;
      transition(() -> becomeSecondary("deposed: " + peer.name() + " became primary at a newer epoch", discard));
      return;
    }
    if (pv != null && claimsPrimary(pv) && pv.getEpoch() == epoch) {
      problem = "split brain: both nodes are primary at epoch " + epoch
          + "; keep one with `replicator demote --force` on the other";
    } else if (problem != null && problem.startsWith("split brain: both")) {
      problem = null;
    }
    Map<String, String> a = appReport;
    boolean inSync = a != null && Boolean.parseBoolean(a.get("peerConnected"))
        && !Boolean.parseBoolean(a.get("peerOutOfDate")) && !a.containsKey("resyncTotal");
    if (witness) {
      fenced = !peerAlive && !witnessAlive(now) && now - startedNanos > peerTimeout.toNanos();
      boolean appSeesPeer = a != null && Boolean.parseBoolean(a.get("peerConnected"));
      if (inSync) {
        aloneGranted = false;
        witnessRequest = "";
      } else if (!peerAlive || !appSeesPeer && !heardWithin(peerHeard, now, heartbeat.multipliedBy(2))) {
        // ask for leave to write alone only once the peer's agent is silent too: when the whole
        // node is being cut off, the witness link is usually gone by then, and a leave granted
        // but never used would leave the secondary outdated with nobody to serve
        if (granted("stay-alone")) {
          aloneGranted = true;
        }
      }
    } else {
      fenced = false;
    }
    // application checks and restarts
    if (appRegistered && app.hasCheckers() && now - lastCheckNanos > app.checkInterval().toNanos()) {
      lastCheckNanos = now;
      Optional<String> failure = app.check();
      if (failure.isPresent()) {
        if (restarts < app.restartsBeforeFailover()) {
          restarts++;
          log.warn("application check failed ({}); restart {} of {}", failure.get(), restarts, app.restartsBeforeFailover());
          transition(() -> {
            app.stop("primary");
            app.start("primary");
          });
        } else if (peerAlive && pv != null && pv.getRole().equals("SECONDARY") && pv.getConsistent()) {
          log.error("application check failed ({}) after {} restarts: failing over to {}", failure.get(), restarts, peer.name());
          transition(() -> {
            try {
              swapNow();
            } catch (OperationFailure e) {
              log.error("failover after failed checks refused: {}", e.getMessage());
            }
          });
        } else {
          problem = "application check failed (" + failure.get() + ") and the peer cannot take over";
        }
        return;
      }
    }
    // failback to the preferred primary, as SafeKit does, once the pair is in sync
    Optional<String> preferred = config.preferredPrimary();
    if (preferred.isPresent() && preferred.get().equals(peer.name()) && inSync && pv != null
        && pv.getRole().equals("SECONDARY") && pv.getConsistent()
        && now - lastSwapNanos > 10 * peerTimeout.toNanos() && now - appReportNanos < leaseTimeout.toNanos()) {
      lastSwapNanos = now;
      log.info("pair in sync: handing the primary role back to the preferred primary {}", peer.name());
      transition(() -> {
        try {
          swapNow();
        } catch (OperationFailure e) {
          log.warn("failback to {} refused: {}", peer.name(), e.getMessage());
        }
      });
    }
  }

  private void transition(Runnable change) {
    inTransition = true;
    transitions.execute(() -> {
      try {
        change.run();
      } catch (RuntimeException e) {
        log.error("role change failed", e);
        problem = "role change failed: " + e.getMessage();
        events.record(EventKind.ROLE_CHANGE, role.name(), problem);
      } finally {
        inTransition = false;
      }
    });
  }

  // ------------------------------------------------------------------ role changes (transition thread)

  private void becomePrimary(String reason, boolean newEpoch) {
    NodeState before = role;
    closeReplica();
    if (newEpoch) {
      long base = epoch;
      AgentMessage w = witnessView;
      if (w != null) {
        base = Math.max(base, w.getEpoch() - 1);
      }
      AgentMessage pv = peerView;
      if (pv != null) {
        base = Math.max(base, pv.getEpoch());
      }
      epoch = base + 1;
    }
    role = NodeState.PRIMARY;
    problem = null;
    aloneGranted = false;
    witnessRequest = "";
    restarts = 0;
    released = new CompletableFuture<>();
    lastFailover = new StatusDocument.Failover(Instant.now(), Optional.of(peer.name()), Optional.of(self.name()), reason);
    log.warn("{} -> PRIMARY (epoch {}): {}", before, epoch, reason);
    events.record(reason.startsWith("failover") ? EventKind.FAILOVER : reason.startsWith("swap") ? EventKind.SWAP
        : EventKind.ROLE_CHANGE, "PRIMARY", before + " -> PRIMARY (epoch " + epoch + "): " + reason);
    if (!app.start("primary")) {
      problem = "the start script failed; the application may not be running";
    }
  }

  private void becomeSecondary(String reason, boolean discardLocal) {
    NodeState before = role;
    if (before == NodeState.PRIMARY) {
      role = NodeState.WAIT;
      stopApplication();
    }
    role = NodeState.SECONDARY;
    problem = null;
    witnessRequest = "";
    discardOnNextReplica |= discardLocal;
    log.warn("{} -> SECONDARY (epoch {}): {}{}", before, epoch, reason,
        discardOnNextReplica ? "; local changes the peer lacks are discarded" : "");
    events.record(EventKind.ROLE_CHANGE, "SECONDARY", before + " -> SECONDARY (epoch " + epoch + "): " + reason
        + (discardOnNextReplica ? "; local changes the peer lacks are discarded" : ""));
    startReplica();
  }

  private void stopApplication() {
    if (app.hasStartScript() || appRegistered) {
      app.stop("primary");
      try {
        released.get(config.application().scriptTimeout().toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        log.warn("the application did not release the file system within {} ms",
            config.application().scriptTimeout().toMillis());
      } catch (Exception e) {
        Thread.currentThread().interrupt();
      }
    }
    appRegistered = false;
    appReport = null;
    refreshLocalData();
  }

  /** Reads the metadata again; unreadable metadata counts as inconsistent, so the node is not promoted. */
  private void refreshLocalData() {
    try {
      localData = LocalData.read(self.root());
    } catch (IOException e) {
      log.error("cannot read this node's metadata: {}", e.getMessage());
      localData = new LocalData(false, false, 0, 0, false);
    }
  }

  private void startReplica() {
    try {
      Replicator.ReplicaBuilder b = Replicator.replica(self.root())
          .listen(bindable(self.address()))
          .clusterName(config.cluster())
          .nodeId(self.name())
          .heartbeat(heartbeat, peerTimeout)
          .splitBrainPolicy(config.splitBrainPolicy())
          .security(security);
      if (discardOnNextReplica) {
        b.discardLocalChanges();
      }
      replica = b.start();
      discardOnNextReplica = false;
      log.info("replica server listening on {}", replica.localAddress());
    } catch (IOException | RuntimeException e) {
      problem = "cannot start the replica server: " + e.getMessage();
      log.error("cannot start the replica server", e);
      role = NodeState.WAIT;
      refreshLocalData();
    }
  }

  private void closeReplica() {
    ReplicaServer r = replica;
    replica = null;
    if (r != null) {
      r.close();
      refreshLocalData();
    }
  }

  /** The swap, on the primary: stop the application, check the peer had everything, hand over. */
  private void swapNow() throws OperationFailure {
    long now = System.nanoTime();
    AgentMessage pv = peerView;
    if (!peerAgentAlive(now) || pv == null) {
      throw new OperationFailure(OperationFailure.Code.PEER_UNREACHABLE, "peer " + peer.name() + " is not reachable");
    }
    if (!pv.getRole().equals("SECONDARY") || !pv.getConsistent()) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "peer " + peer.name() + " is " + pv.getRole()
          + (pv.getConsistent() ? "" : " with inconsistent data") + ", not a secondary that can take over");
    }
    Map<String, String> a = appReport;
    // in flight is fine (the application's close drains it); out of date or resyncing is not
    if (appRegistered && (a == null || !Boolean.parseBoolean(a.get("peerConnected"))
        || Boolean.parseBoolean(a.get("peerOutOfDate")) || a.containsKey("resyncTotal"))) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "the peer is not in sync yet"
          + (a != null && a.containsKey("resyncTotal") ? " (resync running)" : "") + "; retry when status says inSync");
    }
    lastSwapNanos = now;
    role = NodeState.WAIT;
    boolean hadApp = appRegistered;
    long t0 = System.nanoTime();
    if (app.hasStartScript() || hadApp) {
      app.stop("primary");
      Boolean cleanly = null;
      try {
        cleanly = released.get(config.application().scriptTimeout().toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        log.warn("application did not release the file system within the script timeout");
      } catch (Exception e) {
        Thread.currentThread().interrupt();
      }
      appRegistered = false;
      appReport = null;
      if (hadApp && !Boolean.TRUE.equals(cleanly)) {
        // the peer may lack something: stay primary rather than hand over a partial copy
        role = NodeState.PRIMARY;
        released = new CompletableFuture<>();
        app.start("primary");
        throw new OperationFailure(OperationFailure.Code.FAILED, "the application closed without the peer "
            + "acknowledging everything; swap abandoned and the application restarted here");
      }
    }
    long stopMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    role = NodeState.SECONDARY;
    startReplica();
    long nextEpoch = epoch + 1;
    log.warn("PRIMARY -> SECONDARY: swap, handing over to {} (epoch {}); application stop took {} ms",
        peer.name(), nextEpoch, stopMillis);
    events.record(EventKind.SWAP, "SECONDARY", "PRIMARY -> SECONDARY: swap, handing over to " + peer.name()
        + " (epoch " + nextEpoch + "); application stop took " + stopMillis + " ms");
    links.send(peer.name(), ownState().setRequest("take-over").setEpoch(nextEpoch).build());
    epoch = nextEpoch;
  }

  // ------------------------------------------------------------------ the application's lease

  /** {@code POST /ops/lease}: registration and renewal by the application that embeds the library. */
  public String lease(Map<String, String> p) {
    long now = System.nanoTime();
    StringBuilder out = new StringBuilder();
    NodeState r = role;
    if (r != NodeState.PRIMARY || inTransition && !appRegistered) {
      out.append("role=").append(r.name()).append('\n');
      out.append("why=the agent of ").append(self.name()).append(" says this node is ").append(r.name())
          .append(inTransition ? " (role change in progress)" : "").append('\n');
      if (appRegistered && p.get("phase").equals("renew")) {
        out.append("writes=suspended\n");
      }
      return out.toString();
    }
    if ("register".equals(p.get("phase"))) {
      appRegistered = true;
      released = new CompletableFuture<>();
      log.info("application registered for {}", p.getOrDefault("root", "?"));
      out.append("peer=").append(peer.address().getHostString()).append(':').append(peer.address().getPort()).append('\n');
      out.append("mode=").append(config.mode().name()).append('\n');
      out.append("cluster=").append(config.cluster()).append('\n');
      out.append("node=").append(self.name()).append('\n');
      out.append("root=").append(self.root()).append('\n');
      out.append("heartbeat=").append(heartbeat).append('\n');
      out.append("peer-timeout=").append(peerTimeout).append('\n');
      out.append("connect-timeout=").append(config.timers().connectTimeout()).append('\n');
      out.append("ack-timeout=").append(config.timers().ackTimeout()).append('\n');
      out.append("split-brain-policy=").append(config.splitBrainPolicy().name()).append('\n');
      out.append("peer-loss-policy=").append(config.peerLossPolicy().name()).append('\n');
      out.append("block-timeout=").append(config.blockTimeout()).append('\n');
      out.append("resync-rate=").append(config.resyncRate()).append('\n');
      config.secretFile().ifPresent(f -> out.append("secret-file=").append(f).append('\n'));
      out.append("lease-interval=").append(heartbeat.dividedBy(2)).append('\n');
      out.append("lease-timeout=").append(leaseTimeout).append('\n');
    } else {
      appRegistered = true;
      appReport = Map.copyOf(p);
      appReportNanos = now;
      if (p.containsKey("commandResult")) {
        commandResult = p.get("commandResult");
        commandRequested = false;
        events.record(commandResult.startsWith("verify") ? EventKind.VERIFY : EventKind.RESYNC, role.name(), commandResult);
      }
    }
    out.append("role=PRIMARY\n");
    boolean aloneOk = config.witness().isEmpty() || aloneGranted;
    out.append("alone=").append(aloneOk ? "allowed" : "refused").append('\n');
    if (fenced) {
      out.append("writes=suspended\nwhy=fenced: neither the peer nor the witness is reachable\n");
    } else {
      out.append("writes=allowed\n");
    }
    String c = pendingCommand;
    if (c != null) {
      pendingCommand = null;
      commandRequested = true;
      out.append("command=").append(c).append('\n');
    }
    return out.toString();
  }

  /** {@code POST /ops/release}: the application closed its file system. */
  public String release(Map<String, String> p) {
    boolean inSync = Boolean.parseBoolean(p.get("inSync"));
    log.info("application released the file system ({})", inSync ? "peer had everything" : "peer NOT in sync");
    appRegistered = false;
    released.complete(inSync);
    return "released\n";
  }

  // ------------------------------------------------------------------ operator operations

  public String swap() throws Exception {
    if (role == NodeState.PRIMARY) {
      runOnTransitions(this::swapNow);
      return awaitRole(peerView, "swap done: " + peer.name() + " is primary, " + self.name() + " is secondary", true);
    }
    AgentMessage pv = peerView;
    if (!peerAgentAlive(System.nanoTime()) || pv == null) {
      throw new OperationFailure(OperationFailure.Code.PEER_UNREACHABLE, "peer " + peer.name() + " is not reachable");
    }
    if (!claimsPrimary(pv)) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "neither node is primary; use `replicator promote`");
    }
    links.send(peer.name(), ownState().setRequest("swap").build());
    return awaitRole(pv, "swap done: " + self.name() + " is primary, " + peer.name() + " is secondary", false);
  }

  private String awaitRole(AgentMessage unused, String done, boolean peerBecomesPrimary) throws OperationFailure {
    long deadline = System.nanoTime() + config.application().scriptTimeout().multipliedBy(2).plus(peerTimeout).toNanos();
    while (System.nanoTime() < deadline) {
      AgentMessage pv = peerView;
      if (peerBecomesPrimary ? pv != null && claimsPrimary(pv) && role == NodeState.SECONDARY
          : role == NodeState.PRIMARY && !inTransition) {
        return done + "\n";
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    throw new OperationFailure(OperationFailure.Code.FAILED, "the swap did not complete in time; see `replicator status`");
  }

  private void runOnTransitions(ThrowingAction action) throws Exception {
    CompletableFuture<Void> done = new CompletableFuture<>();
    inTransition = true;
    transitions.execute(() -> {
      try {
        action.run();
        done.complete(null);
      } catch (Throwable t) {
        done.completeExceptionally(t);
      } finally {
        inTransition = false;
      }
    });
    try {
      done.get(config.application().scriptTimeout().multipliedBy(3).toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof Exception ex) {
        throw ex;
      }
      throw e;
    }
  }

  private interface ThrowingAction {
    void run() throws Exception;
  }

  public String promote(boolean force) throws Exception {
    if (role == NodeState.PRIMARY) {
      return self.name() + " is already primary\n";
    }
    long now = System.nanoTime();
    AgentMessage pv = peerView;
    if (!force) {
      if (peerAgentAlive(now) && claimsPrimary(pv)) {
        throw new OperationFailure(OperationFailure.Code.SPLIT_BRAIN, "peer " + peer.name()
            + " is primary: promoting would make two primaries; use `replicator swap` (or --force)");
      }
      ReplicaServer r = replica;
      if (r != null && r.status().peerConnected()) {
        throw new OperationFailure(OperationFailure.Code.SPLIT_BRAIN,
            "a primary is connected to this node's replica server; use `replicator swap` (or --force)");
      }
      if (!ownState().getConsistent()) {
        throw new OperationFailure(OperationFailure.Code.REFUSED,
            "this node's data is inconsistent (unfinished resync); --force promotes it anyway");
      }
      if (config.witness().isPresent() && !granted("promote")) {
        throw new OperationFailure(OperationFailure.Code.SPLIT_BRAIN, "the witness has not granted this node the "
            + "primary role" + (witnessView != null && !witnessView.getReason().isEmpty()
                ? " (" + witnessView.getReason() + ")" : "") + "; --force overrides");
      }
    }
    runOnTransitions(() -> becomePrimary("operator promote" + (force ? " --force" : ""), true));
    return self.name() + " is primary (epoch " + epoch + ")\n";
  }

  public String demote(boolean force) throws Exception {
    if (role != NodeState.PRIMARY) {
      return self.name() + " is not primary (" + role + ")\n";
    }
    AgentMessage pv = peerView;
    if (!force && !(peerAgentAlive(System.nanoTime()) && pv != null && pv.getConsistent())) {
      throw new OperationFailure(OperationFailure.Code.PEER_UNREACHABLE, "peer " + peer.name()
          + " is not reachable or not consistent: demoting would leave no primary; --force overrides");
    }
    runOnTransitions(() -> becomeSecondary("operator demote" + (force ? " --force" : ""), false));
    return self.name() + " is secondary\n";
  }

  public String resync(boolean full, boolean discardLocal) throws Exception {
    if (discardLocal) {
      if (role == NodeState.PRIMARY) {
        throw new OperationFailure(OperationFailure.Code.REFUSED,
            "--discard-local runs on the node whose data is to be replaced; this node is primary (demote it first)");
      }
      runOnTransitions(() -> {
        closeReplica();
        discardOnNextReplica = true;
        role = NodeState.SECONDARY;
        startReplica();
      });
      events.record(EventKind.RESYNC, role.name(), "replica restarted discarding its local changes (resync --discard-local)");
      return "replica restarted discarding its local changes; the primary resyncs it on connect\n";
    }
    return command(full ? "resync-full" : "resync");
  }

  public String verify() throws Exception {
    return command("verify");
  }

  private String command(String name) throws OperationFailure {
    if (role == NodeState.PRIMARY) {
      if (!appRegistered) {
        throw new OperationFailure(OperationFailure.Code.REFUSED, "no application has the file system open on this primary");
      }
      commandResult = null;
      pendingCommand = name;
      commandRequested = true;
      events.record(name.equals("verify") ? EventKind.VERIFY : EventKind.RESYNC, role.name(), name + " started on " + self.name());
      return name + " started on " + self.name() + "\n";
    }
    if (!links.send(peer.name(), ownState().setRequest(name).build())) {
      throw new OperationFailure(OperationFailure.Code.PEER_UNREACHABLE, "peer " + peer.name() + " is not reachable");
    }
    return name + " requested on the primary " + peer.name() + "; follow it there with `replicator status`\n";
  }

  // ------------------------------------------------------------------ status

  public StatusDocument status() {
    long now = System.nanoTime();
    ReplicationStatus rs = replicationStatus(now);
    Map<String, Object> extra = new LinkedHashMap<>();
    extra.put("cluster", config.cluster());
    extra.put("epoch", epoch);
    extra.put("agentRole", role.name());
    AgentMessage pv = peerView;
    Map<String, Object> p = new LinkedHashMap<>();
    p.put("name", peer.name());
    p.put("state", pv == null ? null : pv.getRole());
    p.put("reachable", peerAgentAlive(now));
    p.put("lastHeardMillisAgo", peerHeard == 0 ? null : TimeUnit.NANOSECONDS.toMillis(now - peerHeard));
    p.put("generation", pv == null ? null : String.format("%016x", pv.getGeneration()));
    p.put("consistent", pv == null ? null : pv.getConsistent());
    extra.put("peerNode", p);
    if (config.witness().isPresent()) {
      Map<String, Object> w = new LinkedHashMap<>();
      InetSocketAddress a = config.witness().get().address();
      w.put("address", a.getHostString() + ":" + a.getPort());
      w.put("reachable", witnessAlive(now));
      AgentMessage wv = witnessView;
      w.put("primary", wv == null || wv.getPrimary().isEmpty() ? null : wv.getPrimary());
      w.put("outdated", wv == null ? List.of() : List.copyOf(wv.getOutdatedList()));
      w.put("aloneGranted", aloneGranted);
      w.put("fenced", fenced);
      extra.put("witness", w);
    } else {
      extra.put("witness", null);
    }
    Map<String, Object> application = new LinkedHashMap<>();
    application.put("startScript", config.application().start().map(Object::toString).orElse(null));
    application.put("registered", appRegistered && role == NodeState.PRIMARY);
    application.put("restarts", restarts);
    extra.put("application", application);
    Map<String, String> a = appReport;
    boolean running = commandRequested || a != null && Boolean.parseBoolean(a.get("commandRunning"));
    if (running || commandResult != null) {
      Map<String, Object> v = new LinkedHashMap<>();
      v.put("running", running);
      v.put("result", commandResult);
      extra.put("verify", v);
    } else {
      extra.put("verify", null);
    }
    extra.put("failover", lastFailoverFigures);
    StatusDocument doc = new StatusDocument(self.name(), rs, Optional.ofNullable(lastFailover), extra);
    return doc;
  }

  private ReplicationStatus replicationStatus(long now) {
    String why = problem;
    NodeState r = role;
    if (r == NodeState.SECONDARY && replica != null) {
      ReplicationStatus s = replica.status();
      return why == null ? s : new ReplicationStatus(s.state(), s.mode(), s.peer(), s.peerConnected(),
          s.peerOutOfDate(), Optional.of(why), s.generation(), s.dirtyBytes(), s.lastSequence(),
          s.appliedSequence(), s.inFlightChanges(), s.inFlightBytes(), s.resync());
    }
    Optional<String> peerAddress = Optional.of(peer.address().getHostString() + ":" + peer.address().getPort());
    Map<String, String> a = appReport;
    if (r == NodeState.PRIMARY && a != null && now - appReportNanos < leaseTimeout.toNanos()) {
      Optional<ReplicationStatus.ResyncProgress> resync = a.containsKey("resyncTotal")
          ? Optional.of(new ReplicationStatus.ResyncProgress(parse(a.get("resyncDone")), parse(a.get("resyncTotal")),
              parse(a.get("resyncRate")), parse(a.get("resyncEta"))))
          : Optional.empty();
      String problemText = why != null ? why : a.get("problem");
      NodeState state = fenced ? NodeState.WAIT : NodeState.valueOf(a.getOrDefault("state", "PRIMARY"));
      return new ReplicationStatus(state, config.mode(), peerAddress,
          Boolean.parseBoolean(a.get("peerConnected")), Boolean.parseBoolean(a.get("peerOutOfDate")),
          Optional.ofNullable(fenced ? "fenced: neither the peer nor the witness is reachable; writes suspended" : problemText),
          parseHex(a.get("generation")), parse(a.get("dirtyBytes")), parse(a.get("lastSequence")),
          parse(a.get("appliedSequence")), parse(a.get("inFlightChanges")), parse(a.get("inFlightBytes")), resync);
    }
    if (r == NodeState.PRIMARY && why == null) {
      why = app.hasStartScript() ? "primary; the application has not registered (or stopped renewing its lease)"
          : "primary; no application has the file system open";
    }
    return new ReplicationStatus(r, config.mode(), peerAddress, false, false, Optional.ofNullable(why),
        localData.generation(),
        0, 0, 0, 0, 0, Optional.empty());
  }

  private static long parse(String s) {
    try {
      return s == null ? 0 : Long.parseLong(s);
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  private static long parseHex(String s) {
    try {
      return s == null ? 0 : Long.parseUnsignedLong(s, 16);
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  public NodeState role() {
    return role;
  }

  /** Stops the application (if primary), the replica server and the links. */
  @Override
  public void close() {
    loop.shutdownNow();
    CompletableFuture<Void> done = CompletableFuture.runAsync(() -> {
      if (role == NodeState.PRIMARY) {
        stopApplication();
      }
      closeReplica();
      role = NodeState.STOPPED;
    }, transitions);
    try {
      done.get(config.application().scriptTimeout().toMillis() + 5000, TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      log.warn("agent stop did not finish cleanly: {}", e.toString());
    }
    transitions.shutdownNow();
    links.close();
  }
}
