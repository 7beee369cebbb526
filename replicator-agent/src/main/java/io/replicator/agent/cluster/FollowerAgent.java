package io.replicator.agent.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Durations;
import io.replicator.DelayedFollower;
import io.replicator.LinkSecurity;
import io.replicator.NodeState;
import io.replicator.ReplicaServer;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.agent.admin.AdminJson;
import io.replicator.agent.admin.BadRequest;
import io.replicator.agent.admin.OperationFailure;
import io.replicator.agent.admin.StatusDocuments;
import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.FollowerConfig;
import io.replicator.proto.ApplyUntilRequest;
import io.replicator.proto.FollowerLog;
import io.replicator.proto.FollowerLogRequest;
import io.replicator.proto.FollowerView;
import io.replicator.proto.StatusDocument;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.DateTimeException;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A follower node's agent: runs the {@link ReplicaServer} that whichever node of the pair is
 * primary feeds, answers its status, and, for a DELAYED follower, pauses, resumes, applies up to
 * a point and reads the spill log. It never promotes itself and refuses the pair's verbs.
 */
public final class FollowerAgent implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(FollowerAgent.class);
  /** Changes {@code GET /log} returns when no limit is given, and the most it returns. */
  static final int DEFAULT_LOG_LIMIT = 100;
  static final int MAX_LOG_LIMIT = 10_000;

  /** Starts the configured replica server; tests substitute it. */
  @FunctionalInterface
  interface Starter {
    ReplicaServer start(Replicator.ReplicaBuilder builder) throws IOException;
  }

  private final AgentConfig config;
  private final FollowerConfig self;
  private final LinkSecurity security;
  private final Starter starter;
  private volatile ReplicaServer server;

  public FollowerAgent(AgentConfig config, FollowerConfig self, LinkSecurity security) {
    this(config, self, security, Replicator.ReplicaBuilder::start);
  }

  FollowerAgent(AgentConfig config, FollowerConfig self, LinkSecurity security, Starter starter) {
    this.config = config;
    this.self = self;
    this.security = security;
    this.starter = starter;
  }

  /** Binds the follower's replication address and starts receiving. */
  public void start() throws IOException {
    InetSocketAddress a = self.address();
    Replicator.ReplicaBuilder b = Replicator.replica(self.root())
        .listen(a.isUnresolved() ? new InetSocketAddress(a.getHostString(), a.getPort()) : a)
        .clusterName(config.cluster())
        .nodeId(self.name())
        .heartbeat(config.timers().heartbeat(), config.timers().peerTimeout())
        .splitBrainPolicy(config.splitBrainPolicy())
        .security(security)
        .compression(self.compression());
    if (self.mode() == FollowerConfig.Mode.DELAYED) {
      b.delayed(self.delay().orElseThrow(), self.logCapacity());
    } else {
      b.asFollower();
    }
    server = starter.start(b);
    log.info("follower {} ({}) receiving on {}", self.name(), self.mode(), server.localAddress());
  }

  /** Where the replica server listens (the real port when the configured one was 0). */
  public InetSocketAddress replicationAddress() {
    return running().localAddress();
  }

  /** The replica server's replication status; WAIT before it started. */
  public ReplicationStatus replication() {
    ReplicaServer s = server;
    return s != null ? s.status() : new ReplicationStatus(NodeState.WAIT, self.mode().replicationMode(),
        Optional.empty(), false, false, Optional.of("starting"), 0, 0, 0, 0, 0, 0, Optional.empty());
  }

  /** The status document {@code GET /status} serves: role follower, and the follower's own view. */
  public StatusDocument status() {
    StatusDocument.Builder doc = StatusDocuments.of(self.name(), replication())
        .setRole(StatusDocument.Role.follower);
    FollowerView.Builder view = doc.getFollowerNodeBuilder()
        .setCluster(config.cluster())
        .setMode(StatusDocuments.mode(self.mode()));
    self.delay().ifPresent(d -> view.setDelay(Durations.fromNanos(d.toNanos())));
    if (self.mode() == FollowerConfig.Mode.DELAYED) {
      view.setLogCapacityBytes(self.logCapacity());
      Optional<DelayedFollower> delayed = delayed();
      if (delayed.isEmpty()) {
        view.setControlsUnavailable(true);
      } else {
        DelayedFollower.Status s = delayed.get().status();
        view.setDelay(Durations.fromNanos(s.delay().toNanos()))
            .setPaused(s.paused())
            .setBacklogChanges(s.backlogChanges())
            .setBacklogBytes(s.backlogBytes())
            .setLogBytes(s.logBytes())
            .setLogCapacityBytes(s.logCapacityBytes());
        s.applyUntil().ifPresent(t -> view.setApplyUntil(timestamp(t)));
        s.appliedUpTo().ifPresent(t -> view.setAppliedUpTo(timestamp(t)));
        s.overflowedAt().ifPresent(t -> view.setOverflowedAt(timestamp(t)));
      }
    }
    return doc.build();
  }

  /** {@code POST /ops/pause}: stop applying; changes keep arriving into the log. */
  public String pause() throws OperationFailure {
    DelayedFollower d = controls("pause");
    try {
      d.pause();
    } catch (IOException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, "pause failed: " + e.getMessage());
    }
    log.info("follower {} paused", self.name());
    return AdminJson.print(status());
  }

  /** {@code POST /ops/resume}: apply again as changes age past the delay. */
  public String resume() throws OperationFailure {
    DelayedFollower d = controls("resume");
    try {
      d.resume();
    } catch (IOException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, "resume failed: " + e.getMessage());
    }
    log.info("follower {} resumed", self.name());
    return AdminJson.print(status());
  }

  /** {@code POST /ops/apply-until} with an {@link ApplyUntilRequest} as JSON. */
  public String applyUntil(String body) throws BadRequest, OperationFailure {
    ApplyUntilRequest request;
    try {
      request = AdminJson.parse(body == null ? "" : body, ApplyUntilRequest.newBuilder()).build();
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      throw new BadRequest("apply-until takes {\"before\": \"2026-12-03T10:15:00Z\"}: " + e.getMessage());
    }
    if (!request.hasBefore()) {
      throw new BadRequest("apply-until needs a time: {\"before\": \"2026-12-03T10:15:00Z\"}");
    }
    Instant before = Instant.ofEpochSecond(request.getBefore().getSeconds(), request.getBefore().getNanos());
    DelayedFollower d = controls("apply-until");
    try {
      d.applyUntil(before);
    } catch (IOException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, "apply-until failed: " + e.getMessage());
    } catch (IllegalArgumentException e) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, "apply-until " + before + ": " + e.getMessage());
    }
    log.info("follower {} applies until {}", self.name(), before);
    return AdminJson.print(status());
  }

  /** {@code GET /log?since=ISO-8601&limit=N}: logged changes, oldest first, as a {@link FollowerLog}. */
  public String log(Map<String, String> parameters) throws BadRequest, OperationFailure {
    FollowerLogRequest request = logRequest(parameters);
    DelayedFollower d = controls("log");
    Instant since = request.hasSince()
        ? Instant.ofEpochSecond(request.getSince().getSeconds(), request.getSince().getNanos()) : Instant.EPOCH;
    List<DelayedFollower.LoggedChange> changes;
    try {
      changes = d.log(since, request.getLimit() == 0 ? DEFAULT_LOG_LIMIT : request.getLimit());
    } catch (IOException e) {
      throw new OperationFailure(OperationFailure.Code.FAILED, "reading the log failed: " + e.getMessage());
    }
    FollowerLog.Builder answer = FollowerLog.newBuilder();
    for (DelayedFollower.LoggedChange c : changes) {
      FollowerLog.Change.Builder change = answer.addChangesBuilder()
          .setSequence(c.sequence()).setReceived(timestamp(c.received())).setKind(c.kind()).setPath(c.path())
          .setBytes(c.bytes()).setApplied(c.applied());
      c.target().ifPresent(change::setTarget);
    }
    return AdminJson.print(answer);
  }

  /** The query of {@code GET /log} read into its typed request; anything unknown or malformed is refused. */
  static FollowerLogRequest logRequest(Map<String, String> parameters) throws BadRequest {
    FollowerLogRequest.Builder request = FollowerLogRequest.newBuilder();
    for (Map.Entry<String, String> p : parameters.entrySet()) {
      switch (p.getKey()) {
        case "since" -> {
          try {
            request.setSince(timestamp(Instant.parse(p.getValue())));
          } catch (DateTimeException e) {
            throw new BadRequest("since=" + printable(p.getValue())
                + " is not an ISO-8601 instant such as 2026-12-03T10:15:00Z");
          }
        }
        case "limit" -> {
          int limit;
          try {
            limit = Integer.parseInt(p.getValue());
          } catch (NumberFormatException e) {
            limit = -1;
          }
          if (limit < 1 || limit > MAX_LOG_LIMIT) {
            throw new BadRequest("limit=" + printable(p.getValue()) + " is not a number in 1.." + MAX_LOG_LIMIT);
          }
          request.setLimit(limit);
        }
        default -> throw new BadRequest("unknown parameter " + printable(p.getKey()) + " (log takes since and limit)");
      }
    }
    return request.build();
  }

  /** What a follower answers to promote, demote, swap, resync, verify and the application's lease. */
  public String refuse(String verb) throws OperationFailure {
    throw new OperationFailure(OperationFailure.Code.REFUSED, verb + " is a verb of the pair, and "
        + self.name() + " is a follower: it is never promoted and holds no lease; run " + verb
        + " against a node's agent (a follower is made a node only by changing the configuration)");
  }

  private Optional<DelayedFollower> delayed() {
    ReplicaServer s = server;
    return s == null ? Optional.empty() : s.delayed();
  }

  private DelayedFollower controls(String verb) throws OperationFailure {
    if (self.mode() != FollowerConfig.Mode.DELAYED) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, verb + ": follower " + self.name()
          + " is not delayed (mode " + self.mode() + "): it applies every change as it arrives");
    }
    if (server == null) {
      throw new OperationFailure(OperationFailure.Code.REFUSED, verb + ": follower " + self.name()
          + " is still starting");
    }
    return delayed().orElseThrow(() -> new OperationFailure(OperationFailure.Code.FAILED, verb
        + ": this replica server offers no delayed-follower controls (a build without delayed followers)"));
  }

  private ReplicaServer running() {
    ReplicaServer s = server;
    if (s == null) {
      throw new IllegalStateException("follower " + self.name() + " has not started");
    }
    return s;
  }

  private static Timestamp timestamp(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }

  /** A client's text in a message: short, and without control characters. */
  private static String printable(String text) {
    String cut = text.length() > 64 ? text.substring(0, 64) + "..." : text;
    return "\"" + cut.replaceAll("\\p{Cntrl}", "?") + "\"";
  }

  /** Stops the replica server; idempotent. */
  @Override
  public void close() {
    ReplicaServer s = server;
    server = null;
    if (s != null) {
      s.close();
    }
  }
}
