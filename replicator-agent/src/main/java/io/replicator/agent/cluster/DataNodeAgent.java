package io.replicator.agent.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.replicator.LinkSecurity;
import io.replicator.LocalData;
import io.replicator.NodeState;
import io.replicator.PeerLossPolicy;
import io.replicator.ReplicaServer;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.SplitBrainPolicy;
import io.replicator.agent.admin.EventHistory;
import io.replicator.agent.admin.OperationFailure;
import io.replicator.agent.admin.StatusDocuments;
import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.FollowerConfig;
import io.replicator.agent.config.NodeConfig;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.AgentRecord;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.EventKind;
import io.replicator.proto.FollowerEntry;
import io.replicator.proto.FollowerReport;
import io.replicator.proto.LeaseReply;
import io.replicator.proto.LeaseRequest;
import io.replicator.proto.Mode;
import io.replicator.proto.PeerLossPolicyValue;
import io.replicator.proto.Registration;
import io.replicator.proto.ReleaseRequest;
import io.replicator.proto.Request;
import io.replicator.proto.Role;
import io.replicator.proto.SplitBrainPolicyValue;
import io.replicator.proto.StatusDocument;
import io.replicator.proto.WitnessMessage;
import io.replicator.transport.TransportSettings;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One data node's agent: the real world around a {@link NodeController}. The controller decides
 * and owns the node's state on one thread ({@code replicator-agent}); link callbacks, the
 * heartbeat timer and every admin request are posted to that thread. The slow steps of a role
 * change (start and stop scripts, opening and closing the {@link ReplicaServer}, waiting for the
 * application to let go) run one at a time on a second thread ({@code replicator-agent-role}), and
 * application checks on a third, so heartbeats never wait for a script.
 *
 * <p>As secondary the agent runs the replica server itself; as primary it runs the application's
 * start script, and the application, which embeds the library, registers through the admin
 * endpoint ({@code /ops/lease}, {@link LeaseRequest} as JSON) and gets the pair's configuration
 * and the gate on its writes from here.
 */
public final class DataNodeAgent implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(DataNodeAgent.class);
  private static final JsonFormat.Printer JSON = JsonFormat.printer().omittingInsignificantWhitespace();
  private static final JsonFormat.Parser JSON_IN = JsonFormat.parser();
  static final String RECORD_FILE = "agent-record";

  private final AgentConfig config;
  private final NodeConfig self;
  private final NodeConfig peer;
  private final LinkSecurity security;
  private final AgentLinks links;
  private final ApplicationControl app;
  private final ScheduledExecutorService owner;
  private final ExecutorService worker;
  private final ExecutorService checker;
  private final RecordFile<AgentRecord> recordFile;
  private final Set<InetSocketAddress> peerAgentAddresses = new HashSet<>();
  private final Duration operationTimeout;
  private final EventHistory events;
  private NodeController controller;
  /** What status shows, published by the owner thread after every event. */
  private volatile NodeController.View view;
  private volatile ReplicaServer replica;
  private volatile CompletableFuture<Boolean> released = new CompletableFuture<>();
  private volatile boolean appRegistered;

  public DataNodeAgent(AgentConfig config, NodeConfig self, LinkSecurity security, EventHistory events) {
    this.events = events;
    this.config = config;
    this.self = self;
    this.peer = config.peerOf(self);
    this.security = security;
    Duration heartbeat = config.timers().heartbeat();
    Duration peerTimeout = config.timers().peerTimeout();
    this.operationTimeout = config.application().scriptTimeout().multipliedBy(2).plus(peerTimeout.multipliedBy(4));
    Set<String> members = new HashSet<>(Set.of(peer.name()));
    config.witness().ifPresent(w -> members.add(Witness.NAME));
    for (InetSocketAddress a : peer.agentAddresses()) {
      peerAgentAddresses.add(a);
    }
    TransportSettings settings = TransportSettings.defaults(config.cluster(), self.name())
        .withTimers(heartbeat, peerTimeout).withSecurity(security);
    this.links = new AgentLinks(settings, members, new AgentLinks.Receiver() {
      @Override
      public void agentMessage(String from, AgentMessage message) {
        if (from.equals(peer.name())) {
          post(() -> controller.onPeerMessage(message));
        }
      }

      @Override
      public void witnessMessage(WitnessMessage message) {
        post(() -> controller.onWitnessMessage(message));
      }

      @Override
      public void refused(InetSocketAddress target, String reason) {
        if (peerAgentAddresses.contains(target)) {
          post(() -> controller.onPeerRefused(reason));
        }
      }
    });
    Map<String, String> env = new LinkedHashMap<>();
    env.put("REPLICATOR_NODE", self.name());
    env.put("REPLICATOR_CLUSTER", config.cluster());
    env.put("REPLICATOR_ROOT", self.root().toString());
    env.put("REPLICATOR_ADMIN", self.admin().getHostString() + ":" + self.admin().getPort());
    env.put("REPLICATOR_PEER", peer.address().getHostString() + ":" + peer.address().getPort());
    this.app = new ApplicationControl(config.application(), env);
    this.owner = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "replicator-agent"));
    this.worker = Executors.newSingleThreadExecutor(r -> daemon(r, "replicator-agent-role"));
    this.checker = Executors.newSingleThreadExecutor(r -> daemon(r, "replicator-agent-checks"));
    this.recordFile = new RecordFile<>(self.root().resolve(Replicator.METADATA_DIRECTORY).resolve(RECORD_FILE),
        AgentRecord.parser(), AgentRecord.getDefaultInstance());
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /** Listens on the agent addresses and starts deciding; the node starts in WAIT. */
  public void start() throws IOException {
    for (InetSocketAddress a : self.agentAddresses()) {
      links.listen(bindable(a));
    }
    AgentRecord record = recordFile.read();
    LocalData local = readLocalData();
    NodeController.Settings settings = new NodeController.Settings(
        new Situation.Rules(self.name(), peer.name(), config.witness().isPresent(), config.automaticFailover(),
            config.preferredPrimary(), config.timers().heartbeat(), config.timers().peerTimeout(),
            config.startAloneAfter()),
        registration(config, self, peer), config.application().checkInterval(), app.restartsBeforeFailover(), operationTimeout);
    controller = new NodeController(settings, new RealIo(), System::nanoTime, record, local);
    // timers start now that the links listen, not when this object was made
    post(controller::start);
    List<InetSocketAddress> targets = new java.util.ArrayList<>(peer.agentAddresses());
    config.witness().ifPresent(w -> targets.add(w.address()));
    long beat = config.timers().heartbeat().toNanos();
    owner.scheduleWithFixedDelay(() -> guarded(() -> {
      links.maintain(targets);
      controller.tick();
    }), 0, beat, TimeUnit.NANOSECONDS);
  }

  /** How the application's library is to open the file system on {@code self} as primary. */
  static Registration registration(AgentConfig config, NodeConfig self, NodeConfig peer) {
    Registration.Builder r = Registration.newBuilder()
        .setPeer(peer.address().getHostString() + ":" + peer.address().getPort())
        .setMode(Mode.valueOf("MODE_" + config.mode().name()))
        .setCluster(config.cluster())
        .setNode(self.name())
        .setRoot(self.root().toString())
        .setHeartbeatMillis(config.timers().heartbeat().toMillis())
        .setPeerTimeoutMillis(config.timers().peerTimeout().toMillis())
        .setConnectTimeoutMillis(config.timers().connectTimeout().toMillis())
        .setAckTimeoutMillis(config.timers().ackTimeout().toMillis())
        .setSplitBrainPolicy(SplitBrainPolicyValue.valueOf("SPLIT_BRAIN_" + config.splitBrainPolicy().name()))
        .setPeerLossPolicy(PeerLossPolicyValue.valueOf("PEER_LOSS_" + config.peerLossPolicy().name()))
        .setBlockTimeoutMillis(config.blockTimeout().toMillis())
        .setResyncRate(config.resyncRate())
        .setLeaseIntervalMillis(Math.max(1, config.timers().heartbeat().toMillis() / 2))
        .setLeaseTimeoutMillis(config.timers().peerTimeout().toMillis());
    config.secretFile().ifPresent(f -> r.setSecretFile(f.toString()));
    for (FollowerConfig f : config.followers()) {
      // a DELAYED follower is fed ASYNC: the delay is the follower's own business
      r.addFollowers(FollowerEntry.newBuilder().setName(f.name()).setAddress(hostPort(f.address()))
          .setMode(Mode.valueOf("MODE_" + f.mode().replicationMode().name()))
          .setBandwidth(f.bandwidth())
          .setCompression(io.replicator.proto.LinkCompressionValue.valueOf("LINK_COMPRESSION_" + f.compression().name())));
    }
    return r.build();
  }

  /** host:port, with brackets around an IPv6 host, as {@link Replicator#parseAddress} reads it. */
  static String hostPort(InetSocketAddress a) {
    String host = a.getHostString();
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
  }

  private static InetSocketAddress bindable(InetSocketAddress a) {
    return a.isUnresolved() ? new InetSocketAddress(a.getHostString(), a.getPort()) : a;
  }

  // ---------------------------------------------------------------- the owner thread

  private void post(Runnable event) {
    try {
      owner.execute(() -> guarded(event));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // stopping: nothing more to decide
    }
  }

  private void guarded(Runnable event) {
    try {
      event.run();
    } catch (RuntimeException e) {
      log.error("agent event failed", e);
    } finally {
      if (controller != null) {
        view = controller.view();
      }
    }
  }

  /** Runs {@code call} on the owner thread and waits for what it returns. */
  private <T> T onOwner(Supplier<T> call, Duration timeout) throws OperationFailure {
    CompletableFuture<T> result = new CompletableFuture<>();
    post(() -> result.complete(call.get()));
    try {
      return result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, "the agent did not answer in time");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new OperationFailure(OperationFailure.Code.FAILED, "interrupted");
    } catch (ExecutionException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, String.valueOf(e.getCause()));
    }
  }

  /** Runs an operator's command on the owner thread and waits for the role change it makes. */
  private String operation(Supplier<CompletableFuture<String>> command) throws OperationFailure {
    CompletableFuture<String> done = onOwner(command, Duration.ofSeconds(10));
    try {
      return done.get(operationTimeout.toMillis() + 5_000, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof OperationFailure f) {
        throw f;
      }
      throw new OperationFailure(OperationFailure.Code.FAILED, String.valueOf(e.getCause()));
    } catch (TimeoutException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, "the operation did not complete in time; see "
          + "`replicator status`");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new OperationFailure(OperationFailure.Code.FAILED, "interrupted");
    }
  }

  // ---------------------------------------------------------------- the world, for the controller

  /** The controller's effects: quick ones inline on the owner thread, slow ones on the worker. */
  private final class RealIo implements NodeIo {
    @Override
    public boolean sendToPeer(AgentMessage message) {
      return links.send(peer.name(), message);
    }

    @Override
    public void sendToWitness(AgentMessage message) {
      links.send(Witness.NAME, message);
    }

    @Override
    public void persist(AgentRecord record) {
      recordFile.write(record);
    }

    @Override
    public void closeReplica(Consumer<LocalData> then) {
      slow(() -> {
        DataNodeAgent.this.closeReplica();
        LocalData d = readLocalData();
        return () -> then.accept(d);
      });
    }

    @Override
    public void startApplication(Consumer<Boolean> then) {
      slow(() -> {
        released = new CompletableFuture<>();
        boolean ok = app.start("primary");
        return () -> then.accept(ok);
      });
    }

    @Override
    public void stopApplication(Consumer<Stopped> then) {
      slow(() -> {
        boolean inSync = false;
        if (app.hasStartScript() || appRegistered) {
          app.stop("primary");
          try {
            inSync = released.get(config.application().scriptTimeout().toMillis(), TimeUnit.MILLISECONDS);
          } catch (TimeoutException e) {
            log.warn("the application did not release the file system within {} ms",
                config.application().scriptTimeout().toMillis());
          } catch (ExecutionException e) {
            log.warn("waiting for the application to release failed: {}", e.toString());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
        appRegistered = false;
        LocalData d = readLocalData();
        boolean releasedInSync = inSync;
        return () -> then.accept(new Stopped(releasedInSync, d));
      });
    }

    @Override
    public void startReplica(boolean discardLocalChanges, Consumer<Optional<String>> then) {
      slow(() -> {
        Optional<String> error = DataNodeAgent.this.startReplica(discardLocalChanges);
        return () -> then.accept(error);
      });
    }

    @Override
    public void checkApplication(Consumer<Optional<String>> then) {
      if (!app.hasCheckers()) {
        post(() -> then.accept(Optional.empty()));
        return;
      }
      checker.execute(() -> {
        Optional<String> failure = app.check();
        post(() -> then.accept(failure));
      });
    }

    @Override
    public void event(EventKind kind, String reason) {
      events.record(kind, NodeController.roleName(controller.role()), reason);
    }

    @Override
    public ReplicaView replica() {
      ReplicaServer r = replica;
      if (r == null) {
        return null;
      }
      LocalData d = r.localData();
      return new ReplicaView(r.status().peerConnected(), d.consistent(), d.peerOutOfDate(), d.generation());
    }
  }

  /** Runs a slow step on the worker; what it returns runs on the owner thread afterwards. */
  private void slow(java.util.concurrent.Callable<Runnable> step) {
    worker.execute(() -> {
      Runnable then;
      try {
        then = step.call();
      } catch (Exception e) {
        log.error("role change step failed", e);
        return;
      }
      post(then);
    });
  }

  /** What the disk says; unreadable metadata counts as inconsistent, so the node is not promoted. */
  private LocalData readLocalData() {
    try {
      return LocalData.read(self.root());
    } catch (IOException e) {
      log.error("cannot read this node's metadata: {}", e.getMessage());
      return new LocalData(false, false, 0, 0, false);
    }
  }

  private Optional<String> startReplica(boolean discard) {
    try {
      Replicator.ReplicaBuilder b = Replicator.replica(self.root())
          .listen(bindable(self.address()))
          .clusterName(config.cluster())
          .nodeId(self.name())
          .heartbeat(config.timers().heartbeat(), config.timers().peerTimeout())
          .splitBrainPolicy(config.splitBrainPolicy())
          .security(security);
      if (discard) {
        b.discardLocalChanges();
      }
      replica = b.start();
      log.info("replica server listening on {}", replica.localAddress());
      return Optional.empty();
    } catch (IOException | RuntimeException e) {
      log.error("cannot start the replica server", e);
      return Optional.of(String.valueOf(e.getMessage()));
    }
  }

  private void closeReplica() {
    ReplicaServer r = replica;
    replica = null;
    if (r != null) {
      r.close();
    }
  }

  // ---------------------------------------------------------------- the application's lease

  /**
   * {@code POST /ops/lease}: a {@link LeaseRequest} as JSON in, a {@link LeaseReply} as JSON out;
   * {@code observer} sees every well-formed request (the application's write statistics).
   */
  public String lease(String body, java.util.function.Consumer<LeaseRequest> observer) throws OperationFailure {
    LeaseRequest.Builder q = LeaseRequest.newBuilder();
    try {
      JSON_IN.merge(body == null ? "" : body, q);
    } catch (InvalidProtocolBufferException e) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "bad lease request: " + e.getMessage());
    }
    if (q.getPhase() == LeaseRequest.Phase.PHASE_UNSPECIFIED) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "bad lease request: no phase (REGISTER or RENEW)");
    }
    LeaseRequest request = q.build();
    observer.accept(request);
    LeaseReply reply = onOwner(() -> controller.lease(request), Duration.ofSeconds(5));
    if (reply.getRole() == Role.ROLE_PRIMARY) {
      appRegistered = true;
    }
    try {
      return JSON.print(reply);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code POST /ops/release}: the application closed its file system ({@link ReleaseRequest} as JSON). */
  public String release(String body) throws OperationFailure {
    ReleaseRequest.Builder q = ReleaseRequest.newBuilder();
    try {
      JSON_IN.merge(body == null ? "" : body, q);
    } catch (InvalidProtocolBufferException e) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "bad release request: " + e.getMessage());
    }
    boolean inSync = q.getInSync();
    appRegistered = false;
    post(() -> controller.released(inSync));
    released.complete(inSync);
    return "released\n";
  }

  // ---------------------------------------------------------------- operator commands

  public String swap() throws OperationFailure {
    return operation(() -> controller.swap());
  }

  public String promote(boolean force) throws OperationFailure {
    return operation(() -> controller.promote(force));
  }

  public String demote(boolean force) throws OperationFailure {
    return operation(() -> controller.demote(force));
  }

  public String resync(boolean full, boolean discardLocal) throws OperationFailure {
    if (discardLocal) {
      return operation(() -> controller.discardLocal());
    }
    return operation(() -> controller.command(full ? Request.REQUEST_RESYNC_FULL : Request.REQUEST_RESYNC));
  }

  public String verify() throws OperationFailure {
    return operation(() -> controller.command(Request.REQUEST_VERIFY));
  }

  // ---------------------------------------------------------------- status

  public NodeState role() {
    NodeController.View v = view;
    return v == null ? NodeState.WAIT : NodeState.valueOf(NodeController.roleName(v.role()));
  }

  /** The library's replication status of this node, as the agent knows it now. */
  public ReplicationStatus replication() {
    NodeController.View v = view;
    return v == null ? starting() : replicationStatus(v, System.nanoTime());
  }

  private ReplicationStatus starting() {
    return new ReplicationStatus(NodeState.WAIT, config.mode(), Optional.empty(), false, false,
        Optional.of("starting"), 0, 0, 0, 0, 0, 0, Optional.empty());
  }

  /** The status document {@code GET /status} serves. */
  public StatusDocument status() {
    long now = System.nanoTime();
    NodeController.View v = view;
    if (v == null) {
      return StatusDocuments.of(self.name(), starting()).build();
    }
    ReplicationStatus replication = replicationStatus(v, now);
    StatusDocument.Builder doc = StatusDocuments.of(self.name(), replication);
    Duration peerTimeout = config.timers().peerTimeout();
    StatusDocument.AgentView.Builder extra = doc.getExtraBuilder()
        .setCluster(config.cluster())
        .setEpoch(v.epoch())
        .setAgentRole(StatusDocument.State.valueOf(NodeController.roleName(v.role())));
    AgentMessage pv = v.peer();
    StatusDocument.PeerNode.Builder p = extra.getPeerNodeBuilder()
        .setName(peer.name())
        .setReachable(pv != null && within(v.peerHeardAt(), now, peerTimeout));
    if (pv != null) {
      p.setState(StatusDocument.State.valueOf(NodeController.roleName(pv.getRole())))
          .setGeneration(StatusDocuments.generation(pv.getGeneration()))
          .setConsistent(pv.getConsistent());
    }
    if (v.peerHeardAt() != 0) {
      p.setLastHeardMillisAgo(TimeUnit.NANOSECONDS.toMillis(now - v.peerHeardAt()));
    }
    if (within(v.peerRefusedAt(), now, peerTimeout)) {
      p.setRefused(RoleDecider.plain(v.peerRefusal()));
    }
    if (config.witness().isPresent()) {
      InetSocketAddress a = config.witness().get().address();
      WitnessMessage wv = v.witness();
      StatusDocument.Witness.Builder w = extra.getWitnessBuilder()
          .setAddress(a.getHostString() + ":" + a.getPort())
          .setReachable(wv != null && within(v.witnessHeardAt(), now, peerTimeout))
          .setAloneGranted(v.gate().aloneAllowed() && v.gate().aloneUntil() != Long.MAX_VALUE)
          .setFenced(!v.gate().writesAllowed() && v.role() == Role.ROLE_PRIMARY);
      if (wv != null) {
        if (!wv.getPrimary().isEmpty()) {
          w.setPrimary(wv.getPrimary());
        }
        w.addAllOutdated(wv.getOutdatedList());
      }
    }
    StatusDocument.Application.Builder application = extra.getApplicationBuilder()
        .setRegistered(v.registered())
        .setRestarts(v.restarts());
    config.application().start().ifPresent(script -> application.setStartScript(script.toString()));
    Optional<ReplicationStatus.VerifyProgress> verifying = replication.verify();
    if (v.commandRunning() || v.commandResult() != null || verifying.isPresent()) {
      StatusDocument.Verify.Builder c = extra.getVerifyBuilder()
          .setRunning(v.commandRunning() || verifying.isPresent());
      if (v.commandResult() != null) {
        c.setResult(v.commandResult());
      }
      if (v.commandFindings() != null) {
        c.setFindings(v.commandFindings());
      }
      verifying.ifPresent(vp -> c.setFilesDone(vp.filesDone()).setFilesTotal(vp.filesTotal())
          .setBytesDone(vp.bytesDone()).setBytesTotal(vp.bytesTotal()).setBytesPerSecond(vp.bytesPerSecond())
          .setEtaSeconds(vp.etaSeconds()));
    }
    StatusDocument.FailoverFigures.Builder figures = extra.getFailoverBuilder();
    NodeController.Failover f = v.lastFailover();
    if (f != null && f.reason().startsWith("failover")) {
      figures.setDetectionMillis(f.detectionMillis()).setPromotionMillis(f.promotionMillis());
    }
    if (f != null) {
      doc.setLastFailover(StatusDocuments.failover(Instant.now().minusNanos(now - f.atNanos()),
          Optional.of(f.from()), Optional.of(f.to()), f.reason()));
    }
    if (v.role() == Role.ROLE_PRIMARY) {
      ApplicationReport a = v.report();
      boolean fresh = a != null && within(v.reportAt(), now, peerTimeout);
      doc.addAllFollowers(StatusDocuments.followers(config.followers(),
          fresh ? a.getFollowersList() : List.<FollowerReport>of()));
    }
    return doc.build();
  }

  private ReplicationStatus replicationStatus(NodeController.View v, long now) {
    String why = v.problem();
    ReplicaServer r = replica;
    if (v.role() == Role.ROLE_SECONDARY && r != null) {
      ReplicationStatus s = r.status();
      return why == null ? s : new ReplicationStatus(s.state(), s.mode(), s.peer(), s.peerConnected(),
          s.peerOutOfDate(), Optional.of(why), s.generation(), s.dirtyBytes(), s.lastSequence(),
          s.appliedSequence(), s.inFlightChanges(), s.inFlightBytes(), s.resync(), s.verify());
    }
    Optional<String> peerAddress = Optional.of(peer.address().getHostString() + ":" + peer.address().getPort());
    ApplicationReport a = v.report();
    boolean fenced = v.role() == Role.ROLE_PRIMARY && !v.gate().writesAllowed();
    if (v.role() == Role.ROLE_PRIMARY && a != null && within(v.reportAt(), now, config.timers().peerTimeout())) {
      Optional<ReplicationStatus.ResyncProgress> resync = a.hasResync()
          ? Optional.of(new ReplicationStatus.ResyncProgress(a.getResync().getBytesDone(), a.getResync().getBytesTotal(),
              a.getResync().getBytesPerSecond(), a.getResync().getEtaSeconds(), a.getResync().getFilesDone(),
              a.getResync().getFilesTotal()))
          : Optional.empty();
      Optional<ReplicationStatus.VerifyProgress> verify = a.hasVerify()
          ? Optional.of(new ReplicationStatus.VerifyProgress(a.getVerify().getFilesDone(), a.getVerify().getFilesTotal(),
              a.getVerify().getBytesDone(), a.getVerify().getBytesTotal(), a.getVerify().getBytesPerSecond(),
              a.getVerify().getEtaSeconds()))
          : Optional.empty();
      String problemText = why != null ? why : a.getProblem().isEmpty() ? null : a.getProblem();
      NodeState state = fenced ? NodeState.WAIT : stateOf(a);
      return new ReplicationStatus(state, config.mode(), peerAddress, a.getPeerConnected(), a.getPeerOutOfDate(),
          Optional.ofNullable(fenced ? "fenced: neither the peer nor the witness is reachable; writes suspended"
              : problemText),
          a.getGeneration(), a.getDirtyBytes(), a.getLastSequence(), a.getAppliedSequence(), a.getInFlightChanges(),
          a.getInFlightBytes(), resync, verify);
    }
    NodeState state = NodeState.valueOf(NodeController.roleName(v.role()));
    if (v.role() == Role.ROLE_PRIMARY && why == null) {
      why = app.hasStartScript() ? "primary; the application has not registered (or stopped renewing its lease)"
          : "primary; no application has the file system open";
    }
    return new ReplicationStatus(state, config.mode(), peerAddress, false, false, Optional.ofNullable(why),
        v.localData().generation(), 0, 0, 0, 0, 0, Optional.empty());
  }

  private static NodeState stateOf(ApplicationReport a) {
    return switch (a.getState()) {
      case STATE_ALONE -> NodeState.ALONE;
      case STATE_SYNC_SOURCE -> NodeState.SYNC_SOURCE;
      case STATE_WAIT -> NodeState.WAIT;
      default -> NodeState.PRIMARY;
    };
  }

  private static boolean within(long at, long now, Duration d) {
    return at != 0 && now - at < d.toNanos();
  }

  /** Stops the application (if primary), the replica server and the links. */
  @Override
  public void close() {
    CountDownLatch down = new CountDownLatch(1);
    if (controller != null) {
      post(() -> controller.stop(down::countDown));
    } else {
      down.countDown();
    }
    try {
      if (!down.await(config.application().scriptTimeout().toMillis() + 5000, TimeUnit.MILLISECONDS)) {
        log.warn("agent stop did not finish cleanly within the script timeout");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    owner.shutdownNow();
    worker.shutdownNow();
    checker.shutdownNow();
    links.close();
  }
}
