package io.replicator.agent.cluster;

import io.replicator.LocalData;
import io.replicator.agent.admin.OperationFailure;
import io.replicator.agent.cluster.Decision.Gate;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.AgentRecord;
import io.replicator.proto.EventKind;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.LeaseReply;
import io.replicator.proto.LeaseRequest;
import io.replicator.proto.Registration;
import io.replicator.proto.ReplicationState;
import io.replicator.proto.Request;
import io.replicator.proto.Role;
import io.replicator.proto.VerifyFindings;
import io.replicator.proto.WitnessMessage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongSupplier;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One data node's role, owned by one thread: every event (a heartbeat tick, a message from the
 * peer or the witness, a refused link, the application's lease, an operator's command, the end
 * of a slow step) is a method call on that thread, and nothing here blocks or reads a clock of its
 * own. Each event updates what the node knows, asks {@link RoleDecider} what to do, and carries
 * the decision out through {@link NodeIo}; a role change completes the futures that operators
 * wait on, so nothing polls.
 *
 * <p>The agent runs it on a single-threaded executor; the simulation runs it on virtual time.
 *
 * <h2>Role changes</h2>
 * Becoming primary writes the agent's record first (role and epoch), then closes the replica
 * server, then lets the application register, then starts it. Stepping down writes the record,
 * reports WAIT (never SECONDARY) until the application has released its file system, then starts
 * the replica server: a peer waiting for this node to be secondary so it can take over never does
 * so while this node's application still writes.
 */
final class NodeController {
  private static final Logger log = LoggerFactory.getLogger(NodeController.class);
  private static final int RECORD_FORMAT = 1;

  /**
   * The controller's configuration.
   *
   * @param rules what the decider needs
   * @param registration what the application's library is told at registration
   * @param checkInterval interval between rounds of application checks
   * @param restartsBeforeFailover local restarts after failed checks before failing over
   * @param operationTimeout how long an operator's command may wait for its role change
   */
  record Settings(Situation.Rules rules, Registration registration, Duration checkInterval,
      int restartsBeforeFailover, Duration operationTimeout) {}

  /** The last failover (or any promotion), for status. */
  record Failover(long atNanos, String from, String to, String reason, long detectionMillis, long promotionMillis) {}

  private final Settings settings;
  private final Situation.Rules rules;
  private final NodeIo io;
  private final LongSupplier clock;

  // what the node is
  private Role role = Role.ROLE_WAIT;
  private long epoch;
  private boolean busy;
  private boolean appMayRegister;
  private AgentRecord record;
  private LocalData localData;
  private long listeningSince;
  private long lastEvaluatedAt;
  private boolean started;
  private String problem;
  private Decision lastDecision = Decision.stay(Request.REQUEST_NONE, Gate.CLOSED, null);

  // what was heard
  private long incarnation;
  private long sequence;
  private long peerIncarnation;
  private long peerSequence;
  private long witnessIncarnation;
  private long witnessSequence;
  private AgentMessage peerMessage;
  private long peerHeardAt;
  private long peerRefusedAt;
  private String peerRefusal = "";
  private long replicationUpAt;
  private WitnessMessage witnessMessage;
  private long witnessHeardAt;
  private long grantEpoch;
  private long grantAt;
  private long aloneUntil;
  private long promoteRequestId;
  private long nextRequestId = 1;
  private final Map<Long, Long> leaveRequests = new LinkedHashMap<>();
  /** When each of the last heartbeats left, by sequence number. */
  private final Map<Long, Long> sent = new LinkedHashMap<>();

  // the application
  private boolean registered;
  private ApplicationReport report;
  private long reportAt;
  private long peerDownSince;
  private Request pendingCommand = Request.REQUEST_NONE;
  private boolean commandRequested;
  private String commandResult;
  /** What the verify whose result is {@link #commandResult} found; null for a resync or a failed verify. */
  private VerifyFindings commandFindings;
  private int restarts;
  private long lastCheckAt;
  private boolean checking;
  private long lastSwapAt;

  // operators
  private boolean operatorPromote;
  private boolean steppedDown;
  private long takeOverUntil;
  private final List<Waiter> waiters = new ArrayList<>();
  private Failover lastFailover;

  NodeController(Settings settings, NodeIo io, LongSupplier clock, AgentRecord record, LocalData localData) {
    this.settings = settings;
    this.rules = settings.rules();
    this.io = io;
    this.clock = clock;
    this.record = record.getNode().isEmpty()
        ? record.toBuilder().setFormat(RECORD_FORMAT).setNode(rules.self()).build()
        : record;
    this.localData = localData;
    this.epoch = this.record.getEpoch();
  }

  // ---------------------------------------------------------------- events

  /** The links listen now: every start-up timer counts from here. */
  void start() {
    long now = clock.getAsLong();
    incarnation = record.getIncarnations() + 1;
    persist(record.toBuilder().setIncarnations(incarnation).build());
    listeningSince = now;
    started = true;
    log.info("node {} starting in WAIT: data {} at generation {}{}; last role {} at epoch {}", rules.self(),
        localData.consistent() ? "consistent" : "INCONSISTENT (unfinished resync)",
        Long.toHexString(localData.generation()), localData.peerOutOfDate() ? ", with changes the peer lacks" : "",
        roleName(record.getRole()), record.getEpoch());
    evaluate(now);
  }

  /** A heartbeat: tell the peer and the witness where this node stands, then decide again. */
  void tick() {
    if (!started) {
      return;
    }
    long now = clock.getAsLong();
    observeReplica(now);
    evaluate(now);
    AgentMessage own = ownMessage(now).build();
    io.sendToPeer(own);
    if (rules.witness()) {
      io.sendToWitness(witnessRequest(own, now));
    }
    checkApplication(now);
    failBackToPreferred(now);
    expireWaiters(now);
  }

  void onPeerMessage(AgentMessage m) {
    long now = clock.getAsLong();
    if (!newer(m.getIncarnation(), m.getSequence(), peerIncarnation, peerSequence)
        && within(peerHeardAt, now, rules.peerTimeout())) {
      return;
    }
    peerIncarnation = m.getIncarnation();
    peerSequence = m.getSequence();
    peerMessage = m;
    peerHeardAt = now;
    if (!record.getMetPeer()) {
      persist(record.toBuilder().setMetPeer(true).build());
    }
    if (m.getRole() == Role.ROLE_PRIMARY) {
      steppedDown = false;
      if (role != Role.ROLE_PRIMARY && m.getEpoch() > epoch) {
        adoptEpoch(m.getEpoch());
      }
    }
    switch (m.getRequest()) {
      case REQUEST_TAKE_OVER -> takeOver(m, now);
      case REQUEST_SWAP -> {
        if (role == Role.ROLE_PRIMARY) {
          swapOut(now, "swap requested by " + rules.peerName()).exceptionally(e -> {
            log.warn("swap requested by {} refused: {}", rules.peerName(), e.getMessage());
            return null;
          });
        }
      }
      case REQUEST_RESYNC, REQUEST_RESYNC_FULL, REQUEST_VERIFY -> {
        if (role == Role.ROLE_PRIMARY && registered) {
          pendingCommand = m.getRequest();
          commandRequested = true;
          io.event(m.getRequest() == Request.REQUEST_VERIFY ? EventKind.VERIFY : EventKind.RESYNC,
              m.getRequest().name().substring("REQUEST_".length()).toLowerCase(java.util.Locale.ROOT).replace('_', '-')
                  + " requested by " + rules.peerName());
        }
      }
      default -> { }
    }
    evaluate(now);
  }

  void onWitnessMessage(WitnessMessage w) {
    long now = clock.getAsLong();
    if (!newer(w.getIncarnation(), w.getSequence(), witnessIncarnation, witnessSequence)
        && within(witnessHeardAt, now, rules.peerTimeout())) {
      return;
    }
    witnessIncarnation = w.getIncarnation();
    witnessSequence = w.getSequence();
    witnessMessage = w;
    witnessHeardAt = now;
    if (w.getGranted()) {
      if (w.getRequest() == Request.REQUEST_PROMOTE && w.getRequestId() == promoteRequestId && promoteRequestId != 0
          && role != Role.ROLE_PRIMARY) {
        grantEpoch = w.getPrimaryEpoch();
        grantAt = now;
      } else if (w.getRequest() == Request.REQUEST_STAY_ALONE && role == Role.ROLE_PRIMARY) {
        Long sentAt = leaveRequests.get(w.getRequestId());
        if (sentAt != null) {
          // the leave counts from when this node asked, before the witness granted it
          aloneUntil = Math.max(aloneUntil, sentAt + Duration.ofMillis(w.getLeaseMillis()).toNanos());
        }
      }
    }
    evaluate(now);
  }

  /**
   * A message numbered ({@code incarnation}, {@code sequence}) comes after the last one taken. A
   * message that is not newer is still taken when nothing came from its sender for the peer
   * timeout: a sender that lost its disk starts counting again from one.
   */
  static boolean newer(long incarnation, long sequence, long lastIncarnation, long lastSequence) {
    return incarnation > lastIncarnation || incarnation == lastIncarnation && sequence > lastSequence;
  }

  /** A link this node opened to the peer was refused by it (wrong secret, another cluster, ...). */
  void onPeerRefused(String reason) {
    long now = clock.getAsLong();
    if (!reason.equals(peerRefusal) || !within(peerRefusedAt, now, rules.peerTimeout())) {
      log.warn("peer {} refuses this node's link: {}", rules.peerName(), reason);
    }
    peerRefusedAt = now;
    peerRefusal = reason;
    evaluate(now);
  }

  // ---------------------------------------------------------------- deciding

  private Situation situation(long now) {
    Situation.Local local;
    NodeIo.ReplicaView replica = io.replica();
    if (role == Role.ROLE_PRIMARY && report != null) {
      local = new Situation.Local(true, report.getPeerOutOfDate(), record.getRole(), record.getMetPeer(),
          report.getGeneration());
    } else if (replica != null) {
      local = new Situation.Local(replica.consistent(), replica.peerOutdated(), record.getRole(),
          record.getMetPeer(), replica.generation());
    } else {
      // while an application that stepped down still stops, its last report counts too: the disk
      // as read before it started would say less than it may have written since
      boolean outdatedPeer = localData.peerOutOfDate() || report != null && report.getPeerOutOfDate();
      local = new Situation.Local(localData.consistent(), outdatedPeer, record.getRole(),
          record.getMetPeer(), localData.generation());
    }
    boolean hearsUs = false;
    if (peerMessage != null && peerMessage.getHeardIncarnation() == incarnation) {
      Long sentAt = sent.get(peerMessage.getHeardSequence());
      hearsUs = sentAt != null && now - sentAt < rules.peerTimeout().toNanos() / 2;
    }
    return new Situation(now, rules, role, epoch, listeningSince, local,
        new Situation.Peer(peerMessage, peerHeardAt, peerRefusedAt, peerRefusal, replicationUpAt, hearsUs),
        new Situation.WitnessView(witnessMessage, witnessHeardAt, grantEpoch, grantAt, aloneUntil),
        new Situation.App(report, reportAt, peerDownSince),
        new Situation.Operator(operatorPromote, steppedDown, takeOverUntil != 0 && now - takeOverUntil < 0));
  }

  private void observeReplica(long now) {
    NodeIo.ReplicaView r = io.replica();
    if (r != null && r.primaryConnected()) {
      replicationUpAt = now;
    }
  }

  private void evaluate(long now) {
    if (!started) {
      return;
    }
    if (lastEvaluatedAt != 0 && now - lastEvaluatedAt > rules.heartbeat().toNanos() * 3) {
      // this process stood still (a long pause, a frozen VM): what it did not hear meanwhile says
      // nothing about the peer, so silence counts again from now
      log.warn("this node stalled for {} ms; the peer's silence counts from now",
          Duration.ofNanos(now - lastEvaluatedAt).toMillis());
      listeningSince = now;
    }
    lastEvaluatedAt = now;
    if (busy) {
      lastDecision = RoleDecider.decide(situation(now));
      settleWaiters();
      return;
    }
    Decision d = RoleDecider.decide(situation(now));
    lastDecision = d;
    problem = d.problem();
    switch (d.change()) {
      case BECOME_PRIMARY -> becomePrimary(d, now);
      case BECOME_SECONDARY -> becomeSecondary(d.epoch(), d.discardLocal(), d.reason(), false);
      case NONE -> {
        if (d.witnessRequest() != Request.REQUEST_PROMOTE && promoteRequestId != 0) {
          // no longer wanted (the peer came back): a grant that arrives now is not taken
          promoteRequestId = 0;
          grantEpoch = 0;
        }
        if (d.witnessRequest() == Request.REQUEST_PROMOTE && promoteRequestId == 0) {
          promoteRequestId = nextRequestId++;
        }
      }
    }
    settleWaiters();
  }

  // ---------------------------------------------------------------- role changes

  private void becomePrimary(Decision d, long now) {
    Role before = role;
    String reason = d.failover() ? "failover: " + d.reason() : d.reason();
    long detection = d.failover() ? Duration.ofNanos(situation(now).peerSilentNanos()).toMillis() : 0;
    persist(record.toBuilder().setRole(Role.ROLE_PRIMARY).setEpoch(d.epoch()).build());
    role = Role.ROLE_PRIMARY;
    epoch = d.epoch();
    busy = true;
    appMayRegister = false;
    steppedDown = false;
    operatorPromote = false;
    takeOverUntil = 0;
    promoteRequestId = 0;
    grantEpoch = 0;
    aloneUntil = 0;
    restarts = 0;
    problem = null;
    log.warn("{} -> PRIMARY (epoch {}): {}", roleName(before), epoch, reason);
    io.event(d.failover() ? EventKind.FAILOVER : reason.startsWith("swap") ? EventKind.SWAP : EventKind.ROLE_CHANGE,
        roleName(before) + " -> PRIMARY (epoch " + epoch + "): " + reason);
    io.closeReplica(data -> {
      localData = data;
      appMayRegister = true;
      long promoted = clock.getAsLong();
      lastFailover = new Failover(promoted, rules.peerName(), rules.self(), reason, detection,
          Duration.ofNanos(promoted - now).toMillis());
      io.startApplication(ok -> {
        busy = false;
        if (!ok) {
          problem = "the start script failed; the application may not be running";
        }
        evaluate(clock.getAsLong());
      });
      evaluate(clock.getAsLong());
    });
  }

  /**
   * Steps down (or starts as secondary). {@code handOver}: a swap, which tells the peer to take over
   * once this node's application released its file system with the peer holding everything.
   */
  private void becomeSecondary(long newEpoch, boolean discardLocal, String reason, boolean handOver) {
    Role before = role;
    persist(record.toBuilder().setRole(Role.ROLE_SECONDARY).setEpoch(Math.max(newEpoch, epoch)).build());
    busy = true;
    promoteRequestId = 0;
    grantEpoch = 0;
    aloneUntil = 0;
    operatorPromote = false;
    if (before == Role.ROLE_PRIMARY) {
      role = Role.ROLE_WAIT;
      log.warn("PRIMARY -> SECONDARY (epoch {}): {}{}", Math.max(newEpoch, epoch), reason,
          discardLocal ? "; local changes the peer lacks are discarded" : "");
      io.event(EventKind.ROLE_CHANGE, "PRIMARY -> SECONDARY (epoch " + Math.max(newEpoch, epoch) + "): " + reason
          + (discardLocal ? "; local changes the peer lacks are discarded" : ""));
      io.stopApplication(stopped -> {
        registered = false;
        report = null;
        localData = stopped.local();
        startReplica(newEpoch, discardLocal, handOver);
      });
    } else {
      log.warn("{} -> SECONDARY (epoch {}): {}", roleName(before), Math.max(newEpoch, epoch), reason);
      io.event(EventKind.ROLE_CHANGE, roleName(before) + " -> SECONDARY (epoch " + Math.max(newEpoch, epoch) + "): "
          + reason);
      startReplica(newEpoch, discardLocal, handOver);
    }
  }

  private void startReplica(long newEpoch, boolean discardLocal, boolean handOver) {
    io.startReplica(discardLocal, error -> {
      busy = false;
      epoch = Math.max(epoch, newEpoch);
      if (error.isPresent()) {
        role = Role.ROLE_WAIT;
        problem = "cannot start the replica server: " + error.get();
        log.error("cannot start the replica server: {}", error.get());
      } else {
        role = Role.ROLE_SECONDARY;
        if (handOver) {
          long next = Math.max(epoch, witnessMessage == null ? 0
              : Math.max(witnessMessage.getEpoch(), witnessMessage.getPrimaryEpoch())) + 1;
          log.warn("handing the primary role over to {} (epoch {})", rules.peerName(), next);
          io.sendToPeer(ownMessage(clock.getAsLong()).setRequest(Request.REQUEST_TAKE_OVER).setEpoch(next).build());
        }
      }
      evaluate(clock.getAsLong());
    });
  }

  private void takeOver(AgentMessage m, long now) {
    if (role == Role.ROLE_PRIMARY || busy) {
      return;
    }
    if (m.getEpoch() <= epoch) {
      log.warn("take-over from {} at epoch {} ignored: this node knows epoch {}", rules.peerName(), m.getEpoch(), epoch);
      return;
    }
    Situation s = situation(now);
    if (!s.local().consistent()) {
      log.error("take-over from {} refused: this node's data is inconsistent", rules.peerName());
      return;
    }
    if (rules.witness()) {
      // the witness gives the epoch, as it does for every promotion: asked on the next heartbeats
      takeOverUntil = now + rules.peerTimeout().toNanos() * 4;
      evaluate(now);
      return;
    }
    becomePrimary(Decision.primary(m.getEpoch(), false, "swap: " + rules.peerName() + " handed the primary role over"),
        now);
  }

  /** The swap, on the primary: stop the application, check the peer had everything, hand over. */
  private CompletableFuture<String> swapOut(long now, String why) {
    AgentMessage pv = peerHeard(now) ? peerMessage : null;
    if (busy) {
      return failed(OperationFailure.Code.REFUSED, "a role change is in progress; retry");
    }
    if (pv == null) {
      return failed(OperationFailure.Code.PEER_UNREACHABLE, "peer " + rules.peerName() + " is not reachable");
    }
    if (pv.getRole() != Role.ROLE_SECONDARY || !pv.getConsistent()) {
      return failed(OperationFailure.Code.REFUSED, "peer " + rules.peerName() + " is " + roleName(pv.getRole())
          + (pv.getConsistent() ? "" : " with inconsistent data") + ", not a secondary that can take over");
    }
    if (rules.witness() && !within(witnessHeardAt, now, rules.peerTimeout())) {
      return failed(OperationFailure.Code.REFUSED, "the witness is not reachable, and the peer needs its vote to "
          + "take the role over; retry when it is");
    }
    if (registered && (report == null || !report.getPeerConnected() || report.getPeerOutOfDate()
        || report.hasResync())) {
      // in flight is fine (the application's close drains it); out of date or resyncing is not
      return failed(OperationFailure.Code.REFUSED, "the peer is not in sync yet"
          + (report != null && report.hasResync() ? " (resync running)" : "") + "; retry when status says inSync");
    }
    lastSwapAt = now;
    boolean hadApp = registered;
    long swapEpoch = epoch;
    steppedDown = true;
    persist(record.toBuilder().setRole(Role.ROLE_SECONDARY).build());
    role = Role.ROLE_WAIT;
    busy = true;
    long t0 = now;
    log.warn("PRIMARY -> SECONDARY: {}; stopping the application", why);
    io.event(EventKind.SWAP, "PRIMARY -> SECONDARY: " + why + ", handing over to " + rules.peerName());
    CompletableFuture<String> done = new CompletableFuture<>();
    io.stopApplication(stopped -> {
      registered = false;
      report = null;
      localData = stopped.local();
      if (hadApp && !stopped.releasedInSync()) {
        if (epoch > swapEpoch || peerClaimsPrimary()) {
          // the peer took over while the application stopped (this node was silent too long):
          // it serves now, so this node follows it instead of coming back
          log.warn("swap abandoned, and {} serves at epoch {} meanwhile: this node comes back as secondary",
              rules.peerName(), epoch);
          startReplica(epoch, false, false);
          done.completeExceptionally(new OperationFailure(OperationFailure.Code.FAILED, "the application closed "
              + "without the peer acknowledging everything, and " + rules.peerName() + " took over meanwhile"));
          return;
        }
        // the peer may lack something: stay primary rather than hand over a partial copy
        epoch = swapEpoch;
        persist(record.toBuilder().setRole(Role.ROLE_PRIMARY).setEpoch(swapEpoch).build());
        role = Role.ROLE_PRIMARY;
        steppedDown = false;
        appMayRegister = true;
        io.startApplication(ok -> {
          busy = false;
          evaluate(clock.getAsLong());
        });
        done.completeExceptionally(new OperationFailure(OperationFailure.Code.FAILED, "the application closed "
            + "without the peer acknowledging everything; swap abandoned and the application restarted here"));
        return;
      }
      log.info("application stopped for the swap in {} ms", Duration.ofNanos(clock.getAsLong() - t0).toMillis());
      startReplica(epoch, false, true);
      waitFor(done, c -> c.role == Role.ROLE_SECONDARY && c.peerClaimsPrimary(),
          "swap done: " + rules.peerName() + " is primary, " + rules.self() + " is secondary\n",
          "the swap did not complete in time; see `replicator status`");
    });
    return done;
  }

  private void failBackToPreferred(long now) {
    // failback to the preferred primary, as SafeKit does, once the pair is in sync
    Optional<String> preferred = rules.preferredPrimary();
    if (role != Role.ROLE_PRIMARY || busy || preferred.isEmpty() || !preferred.get().equals(rules.peerName())) {
      return;
    }
    AgentMessage pv = peerHeard(now) ? peerMessage : null;
    boolean inSync = report != null && report.getInSync() && within(reportAt, now, rules.peerTimeout());
    if (inSync && pv != null && pv.getRole() == Role.ROLE_SECONDARY && pv.getConsistent()
        && (lastSwapAt == 0 || now - lastSwapAt > rules.peerTimeout().toNanos() * 10)) {
      log.info("pair in sync: handing the primary role back to the preferred primary {}", rules.peerName());
      swapOut(now, "failback to the preferred primary " + rules.peerName()).exceptionally(e -> {
        log.warn("failback to {} refused: {}", rules.peerName(), e.getMessage());
        return null;
      });
    }
  }

  private void checkApplication(long now) {
    if (role != Role.ROLE_PRIMARY || busy || checking || !registered
        || now - lastCheckAt < settings.checkInterval().toNanos()) {
      return;
    }
    lastCheckAt = now;
    checking = true;
    io.checkApplication(failure -> {
      checking = false;
      if (failure.isEmpty() || role != Role.ROLE_PRIMARY || busy) {
        return;
      }
      long at = clock.getAsLong();
      AgentMessage pv = peerHeard(at) ? peerMessage : null;
      if (restarts < settings.restartsBeforeFailover()) {
        restarts++;
        log.warn("application check failed ({}); restart {} of {}", failure.get(), restarts,
            settings.restartsBeforeFailover());
        busy = true;
        io.stopApplication(stopped -> {
          registered = false;
          report = null;
          io.startApplication(ok -> {
            busy = false;
            evaluate(clock.getAsLong());
          });
        });
      } else if (pv != null && pv.getRole() == Role.ROLE_SECONDARY && pv.getConsistent()) {
        log.error("application check failed ({}) after {} restarts: failing over to {}", failure.get(), restarts,
            rules.peerName());
        swapOut(at, "failover after failed application checks").exceptionally(e -> {
          log.error("failover after failed checks refused: {}", e.getMessage());
          return null;
        });
      } else {
        problem = "application check failed (" + failure.get() + ") and the peer cannot take over";
      }
    });
  }

  // ---------------------------------------------------------------- the application's lease

  /** {@code POST /ops/lease}: registration and renewals by the application that embeds the library. */
  LeaseReply lease(LeaseRequest q) {
    long now = clock.getAsLong();
    if (role != Role.ROLE_PRIMARY || !appMayRegister) {
      return LeaseReply.newBuilder().setRole(role).setWritesAllowed(false)
          .setWhy("the agent of " + rules.self() + " says this node is " + roleName(role)
              + (busy ? " (role change in progress)" : ""))
          .build();
    }
    LeaseReply.Builder reply = LeaseReply.newBuilder().setRole(Role.ROLE_PRIMARY);
    if (q.getPhase() == LeaseRequest.Phase.REGISTER) {
      log.info("application registered for {}", q.getRoot().isEmpty() ? "?" : q.getRoot());
      reply.setRegistration(settings.registration());
    } else {
      ApplicationReport r = q.getReport();
      report = r;
      reportAt = now;
      if (r.getPeerConnected()) {
        replicationUpAt = now;
        peerDownSince = 0;
      } else if (peerDownSince == 0) {
        peerDownSince = now;
      }
      if (!r.getCommandResult().isEmpty()) {
        commandResult = r.getCommandResult();
        commandFindings = r.hasVerifyFindings() ? r.getVerifyFindings() : null;
        commandRequested = false;
        io.event(commandResult.startsWith("verify") ? EventKind.VERIFY : EventKind.RESYNC, commandResult);
      }
    }
    registered = true;
    evaluate(now);
    Gate g = lastDecision.change() == Decision.Change.NONE ? lastDecision.gate() : Gate.CLOSED;
    long validNanos = g.aloneUntil() == Long.MAX_VALUE ? 0 : g.aloneUntil() - now;
    boolean alone = g.aloneAllowed() && (g.aloneUntil() == Long.MAX_VALUE || validNanos >= 1_000_000);
    reply.setWritesAllowed(g.writesAllowed()).setAloneAllowed(alone);
    if (alone && g.aloneUntil() != Long.MAX_VALUE) {
      reply.setAloneValidMillis(Duration.ofNanos(validNanos).toMillis());
    }
    if (!g.writesAllowed() && g.suspendedReason() != null) {
      reply.setWhy(g.suspendedReason());
    }
    if (pendingCommand != Request.REQUEST_NONE) {
      reply.setCommand(pendingCommand);
      pendingCommand = Request.REQUEST_NONE;
      commandRequested = true;
    }
    return reply.build();
  }

  /** {@code POST /ops/release}: the application closed its file system. */
  void released(boolean inSync) {
    log.info("application released the file system ({})", inSync ? "peer had everything" : "peer NOT in sync");
    registered = false;
  }

  // ---------------------------------------------------------------- operator commands

  CompletableFuture<String> swap() {
    long now = clock.getAsLong();
    if (role == Role.ROLE_PRIMARY) {
      return swapOut(now, "swap");
    }
    AgentMessage pv = peerHeard(now) ? peerMessage : null;
    if (pv == null) {
      return failed(OperationFailure.Code.PEER_UNREACHABLE, "peer " + rules.peerName() + " is not reachable");
    }
    if (pv.getRole() != Role.ROLE_PRIMARY) {
      return failed(OperationFailure.Code.REFUSED, "neither node is primary; use `replicator promote`");
    }
    io.sendToPeer(ownMessage(now).setRequest(Request.REQUEST_SWAP).build());
    CompletableFuture<String> done = new CompletableFuture<>();
    waitFor(done, c -> c.role == Role.ROLE_PRIMARY && !c.busy,
        "swap done: " + rules.self() + " is primary, " + rules.peerName() + " is secondary\n",
        "the swap did not complete in time; see `replicator status`");
    return done;
  }

  CompletableFuture<String> promote(boolean force) {
    long now = clock.getAsLong();
    if (role == Role.ROLE_PRIMARY) {
      return CompletableFuture.completedFuture(rules.self() + " is already primary\n");
    }
    if (busy) {
      return failed(OperationFailure.Code.REFUSED, "a role change is in progress; retry");
    }
    Situation s = situation(now);
    if (!force) {
      AgentMessage pv = peerHeard(now) ? peerMessage : null;
      if (pv != null && pv.getRole() == Role.ROLE_PRIMARY) {
        return failed(OperationFailure.Code.SPLIT_BRAIN, "peer " + rules.peerName()
            + " is primary: promoting would make two primaries; use `replicator swap` (or --force)");
      }
      NodeIo.ReplicaView r = io.replica();
      if (r != null && r.primaryConnected()) {
        return failed(OperationFailure.Code.SPLIT_BRAIN,
            "a primary is connected to this node's replica server; use `replicator swap` (or --force)");
      }
      if (!s.local().consistent()) {
        return failed(OperationFailure.Code.REFUSED,
            "this node's data is inconsistent (unfinished resync); --force promotes it anyway");
      }
      if (rules.witness()) {
        // the witness decides; the decider asks it on the next heartbeats
        operatorPromote = true;
        evaluate(now);
        CompletableFuture<String> done = new CompletableFuture<>();
        waitFor(done, c -> c.role == Role.ROLE_PRIMARY && !c.busy, rules.self() + " is primary\n", null);
        return done;
      }
    }
    long next = Math.max(epoch, Math.max(peerMessage == null ? 0 : peerMessage.getEpoch(),
        witnessMessage == null ? 0 : Math.max(witnessMessage.getEpoch(), witnessMessage.getPrimaryEpoch()))) + 1;
    becomePrimary(Decision.primary(next, false, "operator promote" + (force ? " --force" : "")), now);
    CompletableFuture<String> done = new CompletableFuture<>();
    waitFor(done, c -> c.role == Role.ROLE_PRIMARY && c.appMayRegister,
        rules.self() + " is primary (epoch " + next + ")\n", "the promotion did not complete in time");
    return done;
  }

  CompletableFuture<String> demote(boolean force) {
    long now = clock.getAsLong();
    if (role != Role.ROLE_PRIMARY) {
      return CompletableFuture.completedFuture(rules.self() + " is not primary (" + roleName(role) + ")\n");
    }
    if (busy) {
      return failed(OperationFailure.Code.REFUSED, "a role change is in progress; retry");
    }
    AgentMessage pv = peerHeard(now) ? peerMessage : null;
    if (!force && !(pv != null && pv.getConsistent())) {
      return failed(OperationFailure.Code.PEER_UNREACHABLE, "peer " + rules.peerName()
          + " is not reachable or not consistent: demoting would leave no primary; --force overrides");
    }
    if (!force && registered && (report == null || !report.getPeerConnected() || report.getPeerOutOfDate()
        || report.hasResync())) {
      return failed(OperationFailure.Code.REFUSED, "peer " + rules.peerName() + " is not in sync: it lacks "
          + "changes this node made, so it must not serve; retry when status says inSync, or --force");
    }
    steppedDown = true;
    becomeSecondary(epoch, false, "operator demote" + (force ? " --force" : ""), false);
    CompletableFuture<String> done = new CompletableFuture<>();
    waitFor(done, c -> c.role == Role.ROLE_SECONDARY && !c.busy, rules.self() + " is secondary\n",
        "the demotion did not complete in time");
    return done;
  }

  /** {@code resync --discard-local}: restart the replica server, discarding this node's own changes. */
  CompletableFuture<String> discardLocal() {
    if (role == Role.ROLE_PRIMARY) {
      return failed(OperationFailure.Code.REFUSED,
          "--discard-local runs on the node whose data is to be replaced; this node is primary (demote it first)");
    }
    if (busy) {
      return failed(OperationFailure.Code.REFUSED, "a role change is in progress; retry");
    }
    busy = true;
    CompletableFuture<String> done = new CompletableFuture<>();
    io.closeReplica(data -> {
      localData = data;
      becomeSecondaryAfterDiscard(done);
    });
    return done;
  }

  private void becomeSecondaryAfterDiscard(CompletableFuture<String> done) {
    persist(record.toBuilder().setRole(Role.ROLE_SECONDARY).build());
    log.warn("{} -> SECONDARY: operator discards this node's local changes", roleName(role));
    io.event(EventKind.RESYNC, "replica restarted discarding its local changes (resync --discard-local)");
    io.startReplica(true, error -> {
      busy = false;
      if (error.isPresent()) {
        role = Role.ROLE_WAIT;
        problem = "cannot start the replica server: " + error.get();
        done.completeExceptionally(new OperationFailure(OperationFailure.Code.FAILED, problem));
      } else {
        role = Role.ROLE_SECONDARY;
        done.complete("replica restarted discarding its local changes; the primary resyncs it on connect\n");
      }
      evaluate(clock.getAsLong());
    });
  }

  /** {@code resync} and {@code verify}: run by the primary's application. */
  CompletableFuture<String> command(Request command) {
    String name = switch (command) {
      case REQUEST_RESYNC -> "resync";
      case REQUEST_RESYNC_FULL -> "resync-full";
      default -> "verify";
    };
    if (role == Role.ROLE_PRIMARY) {
      if (!registered) {
        return failed(OperationFailure.Code.REFUSED, "no application has the file system open on this primary");
      }
      commandResult = null;
      commandFindings = null;
      pendingCommand = command;
      commandRequested = true;
      io.event(command == Request.REQUEST_VERIFY ? EventKind.VERIFY : EventKind.RESYNC, name + " started on "
          + rules.self());
      return CompletableFuture.completedFuture(name + " started on " + rules.self() + "\n");
    }
    if (!io.sendToPeer(ownMessage(clock.getAsLong()).setRequest(command).build())) {
      return failed(OperationFailure.Code.PEER_UNREACHABLE, "peer " + rules.peerName() + " is not reachable");
    }
    return CompletableFuture.completedFuture(name + " requested on the primary " + rules.peerName()
        + "; follow it there with `replicator status`\n");
  }

  // ---------------------------------------------------------------- shutdown

  /** Stops the application (if primary) and the replica server; {@code then} runs once both are down. */
  void stop(Runnable then) {
    Runnable finish = () -> {
      role = Role.ROLE_STOPPED;
      failWaiters("the agent is stopping");
      then.run();
    };
    busy = true;
    if (role == Role.ROLE_PRIMARY) {
      io.stopApplication(stopped -> io.closeReplica(data -> finish.run()));
    } else {
      io.closeReplica(data -> finish.run());
    }
  }

  // ---------------------------------------------------------------- messages

  /** This node's heartbeat, as its peer and the witness see it. */
  AgentMessage.Builder ownMessage(long now) {
    Situation s = situation(now);
    AgentMessage.Builder m = AgentMessage.newBuilder()
        .setNode(rules.self())
        .setRole(role)
        .setEpoch(epoch)
        .setConsistent(s.local().consistent())
        .setPeerOutdated(s.local().peerOutdated())
        .setGeneration(s.local().generation())
        .setSteppedDown(steppedDown)
        .setState(replicationState())
        .setIncarnation(incarnation)
        .setSequence(++sequence)
        .setHeardIncarnation(peerIncarnation)
        .setHeardSequence(peerSequence);
    sent.put(sequence, now);
    if (sent.size() > 64) {
      sent.remove(sent.keySet().iterator().next());
    }
    if (role == Role.ROLE_PRIMARY && report != null) {
      m.setInSync(report.getInSync()).setPeerConnected(report.getPeerConnected());
    }
    if (s.holdsGrant()) {
      m.setGrantEpoch(grantEpoch);
    }
    return m;
  }

  private AgentMessage witnessRequest(AgentMessage own, long now) {
    Request want = lastDecision.witnessRequest();
    AgentMessage.Builder m = own.toBuilder().setRequest(want);
    if (want == Request.REQUEST_PROMOTE && promoteRequestId != 0) {
      m.setRequestId(promoteRequestId);
    } else if (want == Request.REQUEST_STAY_ALONE) {
      long id = nextRequestId++;
      leaveRequests.put(id, now);
      for (Iterator<Long> it = leaveRequests.keySet().iterator(); leaveRequests.size() > 16 && it.hasNext(); ) {
        it.next();
        it.remove();
      }
      m.setRequestId(id);
    } else {
      m.setRequest(Request.REQUEST_NONE);
    }
    return m.build();
  }

  private ReplicationState replicationState() {
    if (role == Role.ROLE_PRIMARY && report != null && report.getState() != ReplicationState.REPLICATION_STATE_UNSPECIFIED) {
      return report.getState();
    }
    return switch (role) {
      case ROLE_PRIMARY -> ReplicationState.STATE_PRIMARY;
      case ROLE_SECONDARY -> {
        NodeIo.ReplicaView r = io.replica();
        yield r != null && !r.consistent() ? ReplicationState.STATE_SYNC_TARGET : ReplicationState.STATE_SECONDARY;
      }
      case ROLE_STOPPED -> ReplicationState.STATE_STOPPED;
      default -> ReplicationState.STATE_WAIT;
    };
  }

  // ---------------------------------------------------------------- waiters

  /** A future that completes once this controller reaches a state, or fails at its deadline. */
  private record Waiter(CompletableFuture<String> future, Predicate<NodeController> until, String done,
      String timeout, long deadline) {}

  private void waitFor(CompletableFuture<String> future, Predicate<NodeController> until, String done, String timeout) {
    waiters.add(new Waiter(future, until, done, timeout,
        clock.getAsLong() + settings.operationTimeout().toNanos()));
    settleWaiters();
  }

  private void settleWaiters() {
    for (Iterator<Waiter> it = waiters.iterator(); it.hasNext(); ) {
      Waiter w = it.next();
      if (w.future().isDone()) {
        it.remove();
      } else if (w.until().test(this)) {
        it.remove();
        w.future().complete(w.done());
      }
    }
  }

  private void expireWaiters(long now) {
    for (Iterator<Waiter> it = waiters.iterator(); it.hasNext(); ) {
      Waiter w = it.next();
      if (now - w.deadline() > 0) {
        it.remove();
        String why = w.timeout() != null ? w.timeout()
            : "the witness has not granted this node the primary role" + reasonOf(witnessMessage) + "; --force overrides";
        if (w.timeout() == null) {
          operatorPromote = false;
        }
        w.future().completeExceptionally(new OperationFailure(
            w.timeout() != null ? OperationFailure.Code.FAILED : OperationFailure.Code.SPLIT_BRAIN, why));
      }
    }
  }

  private void failWaiters(String why) {
    for (Waiter w : waiters) {
      w.future().completeExceptionally(new OperationFailure(OperationFailure.Code.FAILED, why));
    }
    waiters.clear();
  }

  private static String reasonOf(WitnessMessage w) {
    return w == null || w.getReason().isEmpty() ? "" : " (" + w.getReason() + ")";
  }

  private static CompletableFuture<String> failed(OperationFailure.Code code, String message) {
    return CompletableFuture.failedFuture(new OperationFailure(code, message));
  }

  // ---------------------------------------------------------------- small things

  private void persist(AgentRecord next) {
    io.persist(next);
    record = next;
  }

  private void adoptEpoch(long e) {
    epoch = e;
    persist(record.toBuilder().setEpoch(e).build());
  }

  private boolean peerHeard(long now) {
    return peerMessage != null && within(peerHeardAt, now, rules.peerTimeout());
  }

  private boolean peerClaimsPrimary() {
    return peerHeard(clock.getAsLong()) && peerMessage.getRole() == Role.ROLE_PRIMARY;
  }

  private static boolean within(long at, long now, Duration d) {
    return at != 0 && now - at < d.toNanos();
  }

  static String roleName(Role r) {
    return switch (r) {
      case ROLE_PRIMARY -> "PRIMARY";
      case ROLE_SECONDARY -> "SECONDARY";
      case ROLE_STOPPED -> "STOPPED";
      default -> "WAIT";
    };
  }

  // ---------------------------------------------------------------- what status shows

  /**
   * Everything status shows, as of the last event.
   */
  record View(String self, String peerName, Role role, long epoch, boolean busy, String problem, Gate gate,
      AgentMessage peer, long peerHeardAt, long peerRefusedAt, String peerRefusal, WitnessMessage witness,
      long witnessHeardAt, boolean registered, boolean appMayRegister, ApplicationReport report, long reportAt,
      int restarts, Failover lastFailover, boolean commandRunning, String commandResult,
      VerifyFindings commandFindings, LocalData localData, AgentRecord record) {}

  View view() {
    boolean running = commandRequested || report != null && report.getCommandRunning();
    return new View(rules.self(), rules.peerName(), role, epoch, busy, problem, lastDecision.gate(), peerMessage,
        peerHeardAt, peerRefusedAt, peerRefusal, witnessMessage, witnessHeardAt, registered && role == Role.ROLE_PRIMARY,
        appMayRegister, report, reportAt, restarts, lastFailover, running, commandResult, commandFindings, localData,
        record);
  }

  Role role() {
    return role;
  }

  long epoch() {
    return epoch;
  }

  boolean busy() {
    return busy;
  }

  Decision lastDecision() {
    return lastDecision;
  }
}
