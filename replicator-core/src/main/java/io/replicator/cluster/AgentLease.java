package io.replicator.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.replicator.NodeState;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationStatus;
import io.replicator.VerifyReport;
import io.replicator.proto.ApplicationReport;
import io.replicator.proto.LeaseReply;
import io.replicator.proto.LeaseRequest;
import io.replicator.proto.Registration;
import io.replicator.proto.ReleaseRequest;
import io.replicator.proto.ReplicationState;
import io.replicator.proto.Request;
import io.replicator.proto.ResyncProgress;
import io.replicator.proto.Role;
import io.replicator.proto.VerifyFindings;
import io.replicator.proto.VerifyProgress;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An application's registration with its local agent, which owns the role decision: the library
 * opens as primary only when the agent says so, and then renews a lease on every half heartbeat.
 * The agent's answer gates writes (alone allowed or not, suspended when fenced); losing the agent
 * for longer than the lease suspends writes too, so a primary whose agent died cannot diverge.
 *
 * <p>The exchange is {@code POST /ops/lease} on the agent's admin endpoint with a {@link
 * LeaseRequest} as JSON, answered by a {@link LeaseReply}; {@code POST /ops/release} with a
 * {@link ReleaseRequest} tells the agent the file system closed, and whether the peer had
 * everything. Leave to write alone may come with a time limit (a witness's lease): it counts from
 * when the renewal was sent, and ends on its own deadline even if no later answer comes.
 */
public final class AgentLease implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(AgentLease.class);
  private static final JsonFormat.Printer JSON = JsonFormat.printer().omittingInsignificantWhitespace();
  private static final JsonFormat.Parser JSON_IN = JsonFormat.parser().ignoringUnknownFields();

  /** Receives the agent's gate decisions (the replication stream). */
  public interface Gate {
    void gate(boolean aloneAllowed, String suspendedReason);
  }

  private final URI base;
  private final Optional<String> token;
  private final HttpClient http;
  private final Registration registration;
  private final Duration interval;
  private final Duration leaseTimeout;
  /** The last command's result (and a verify's findings), sent once with the next renewal. */
  private final AtomicReference<ApplicationReport> commandResult = new AtomicReference<>();
  private final ScheduledExecutorService deadlines = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "replicator-agent-lease-deadline");
    t.setDaemon(true);
    return t;
  });
  private volatile boolean commandRunning;
  private volatile boolean closed;
  private Thread renewer;
  /** The gate as last applied, and the scheduled end of a time-limited leave to write alone. */
  private boolean aloneNow;
  private String suspendedNow;
  private ScheduledFuture<?> aloneEnds;

  private AgentLease(URI base, Optional<String> token, HttpClient http, Registration registration) {
    this.base = base;
    this.token = token;
    this.http = http;
    this.registration = registration;
    this.interval = Duration.ofMillis(Math.max(1, registration.getLeaseIntervalMillis() == 0 ? 200
        : registration.getLeaseIntervalMillis()));
    this.leaseTimeout = Duration.ofMillis(registration.getLeaseTimeoutMillis() == 0 ? 3000
        : registration.getLeaseTimeoutMillis());
  }

  /**
   * Registers with the agent at {@code admin}; returns only when the agent says this node is primary.
   *
   * @throws IOException when the agent cannot be reached or says this node must not be primary
   */
  public static AgentLease register(InetSocketAddress admin, Optional<String> token, String root)
      throws IOException {
    URI base = URI.create("http://" + hostForUri(admin) + ":" + admin.getPort());
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build();
    LeaseReply reply = exchange(http, base, token, "/ops/lease",
        LeaseRequest.newBuilder().setPhase(LeaseRequest.Phase.REGISTER).setRoot(root).build(), Duration.ofSeconds(10));
    if (reply.getRole() != Role.ROLE_PRIMARY) {
      throw new IOException("the local agent at " + admin.getHostString() + ":" + admin.getPort()
          + " says this node is " + roleName(reply.getRole()) + "; refusing to open as primary"
          + (reply.getWhy().isEmpty() ? "" : " (" + reply.getWhy() + ")"));
    }
    if (!reply.hasRegistration()) {
      throw new IOException("the local agent at " + admin.getHostString() + ":" + admin.getPort()
          + " answered the registration without the pair's configuration");
    }
    AgentLease lease = new AgentLease(base, token, http, reply.getRegistration());
    lease.first = reply;
    return lease;
  }

  private LeaseReply first;

  /** What the agent answered at registration: peer, mode, timers and policies from the pair's configuration. */
  public Registration registration() {
    return registration;
  }

  /** Starts renewing the lease; every answer goes to {@code gate}. */
  public synchronized void start(ReplicatedFileSystem fs, Gate gate) {
    apply(first, System.nanoTime(), gate);
    renewer = new Thread(() -> renew(fs, gate), "replicator-agent-lease");
    renewer.setDaemon(true);
    renewer.start();
  }

  private void renew(ReplicatedFileSystem fs, Gate gate) {
    long lastAnswer = System.nanoTime();
    boolean suspendedForSilence = false;
    while (!closed) {
      try {
        long sent = System.nanoTime();
        LeaseReply reply = exchange(http, base, token, "/ops/lease", LeaseRequest.newBuilder()
            .setPhase(LeaseRequest.Phase.RENEW).setReport(report(fs)).build(), leaseTimeout);
        lastAnswer = System.nanoTime();
        if (suspendedForSilence) {
          log.info("local agent answers again");
          suspendedForSilence = false;
        }
        apply(reply, sent, gate);
        if (reply.getCommand() != Request.REQUEST_NONE && !commandRunning) {
          runCommand(fs, reply.getCommand());
        }
      } catch (InterruptedIOException e) {
        if (closed) {
          return;
        }
      } catch (IOException | RuntimeException e) {
        if (closed) {
          return;
        }
        if (!suspendedForSilence && System.nanoTime() - lastAnswer > leaseTimeout.toNanos()) {
          // the agent may have died or been cut off: a primary without its agent must not go on
          // alone, since the agent may no longer be there to stop it when the peer takes over
          suspendedForSilence = true;
          log.warn("no answer from the local agent for {} ms ({}); suspending writes",
              leaseTimeout.toMillis(), e.getMessage());
          setGate(gate, false, "no answer from the local agent");
        }
      }
      try {
        Thread.sleep(interval.toMillis());
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  /** Applies an answer to a renewal sent at {@code sentNanos}. */
  private void apply(LeaseReply reply, long sentNanos, Gate gate) {
    String suspended = reply.getWritesAllowed() ? null
        : reply.getWhy().isEmpty() ? "suspended by the agent" : reply.getWhy();
    boolean alone = reply.getAloneAllowed();
    synchronized (this) {
      if (aloneEnds != null) {
        aloneEnds.cancel(false);
        aloneEnds = null;
      }
      if (alone && reply.getAloneValidMillis() > 0) {
        // the leave counts from when this renewal left, which is before the agent granted it
        long remaining = sentNanos + Duration.ofMillis(reply.getAloneValidMillis()).toNanos() - System.nanoTime();
        if (remaining <= 0) {
          alone = false;
        } else {
          aloneEnds = deadlines.schedule(() -> leaveEnded(gate), remaining, TimeUnit.NANOSECONDS);
        }
      }
    }
    setGate(gate, alone, suspended);
  }

  private void leaveEnded(Gate gate) {
    String suspended;
    synchronized (this) {
      if (aloneEnds == null || !aloneNow) {
        return;
      }
      aloneEnds = null;
      suspended = suspendedNow;
    }
    log.info("leave to write without the peer ended with no renewal");
    setGate(gate, false, suspended);
  }

  private synchronized void setGate(Gate gate, boolean alone, String suspended) {
    aloneNow = alone;
    suspendedNow = suspended;
    gate.gate(alone, suspended);
  }

  private void runCommand(ReplicatedFileSystem fs, Request command) {
    commandRunning = true;
    commandResult.set(null);
    Thread t = new Thread(() -> {
      String result;
      VerifyFindings findings = null;
      try {
        switch (command) {
          case REQUEST_VERIFY -> {
            VerifyReport report = fs.verify();
            result = "verify: " + report;
            findings = VerifyFindings.newBuilder().setPathsCompared(report.pathsCompared())
                .setBytesCompared(report.bytesCompared()).setBlocksDiffering(report.blocksDiffering())
                .setPathsDiffering(report.pathsDiffering()).addAllExamples(report.examples()).build();
          }
          case REQUEST_RESYNC -> {
            fs.resync();
            result = "resync: done, peer in sync";
          }
          case REQUEST_RESYNC_FULL -> {
            var report = fs.verify();
            fs.resync();
            result = "full resync: compared the whole tree (" + report + "), peer in sync";
          }
          default -> result = "unknown command " + command;
        }
      } catch (IOException | RuntimeException e) {
        result = command + " failed: " + e.getMessage();
      }
      log.info("{}", result);
      ApplicationReport.Builder outcome = ApplicationReport.newBuilder().setCommandResult(result);
      if (findings != null) {
        outcome.setVerifyFindings(findings);
      }
      commandResult.set(outcome.build());
      commandRunning = false;
    }, "replicator-agent-command");
    t.setDaemon(true);
    t.start();
  }

  private ApplicationReport report(ReplicatedFileSystem fs) {
    ReplicationStatus s = fs.status();
    ApplicationReport.Builder r = ApplicationReport.newBuilder()
        .setWriteStatistics(WriteStatisticsProtos.toProto(fs.writeStatistics()))
        .setState(stateOf(s.state()))
        .setInSync(s.inSync())
        .setPeerConnected(s.peerConnected())
        .setPeerOutOfDate(s.peerOutOfDate())
        .setGeneration(s.generation())
        .setDirtyBytes(s.dirtyBytes())
        .setLastSequence(s.lastSequence())
        .setAppliedSequence(s.appliedSequence())
        .setInFlightChanges(s.inFlightChanges())
        .setInFlightBytes(s.inFlightBytes())
        .setCommandRunning(commandRunning);
    s.problem().ifPresent(r::setProblem);
    s.resync().ifPresent(p -> r.setResync(ResyncProgress.newBuilder().setBytesDone(p.bytesDone())
        .setBytesTotal(p.bytesTotal()).setBytesPerSecond(p.bytesPerSecond()).setEtaSeconds(p.etaSeconds())
        .setFilesDone(p.filesDone()).setFilesTotal(p.filesTotal())));
    s.verify().ifPresent(p -> r.setVerify(VerifyProgress.newBuilder().setFilesDone(p.filesDone())
        .setFilesTotal(p.filesTotal()).setBytesDone(p.bytesDone()).setBytesTotal(p.bytesTotal())
        .setBytesPerSecond(p.bytesPerSecond()).setEtaSeconds(p.etaSeconds())));
    fs.followers().forEach((name, f) -> {
      io.replicator.proto.FollowerReport.Builder b = io.replicator.proto.FollowerReport.newBuilder()
          .setName(name)
          .setMode(io.replicator.proto.Mode.valueOf("MODE_" + f.mode().name()))
          .setAddress(f.peer().orElse(""))
          .setConnected(f.peerConnected())
          .setOutOfDate(f.peerOutOfDate())
          .setDirtyBytes(f.dirtyBytes())
          .setInFlightChanges(f.inFlightChanges())
          .setInFlightBytes(f.inFlightBytes());
      f.problem().ifPresent(b::setProblem);
      r.addFollowers(b);
    });
    ApplicationReport outcome = commandResult.getAndSet(null);
    if (outcome != null) {
      r.mergeFrom(outcome);
    }
    return r.build();
  }

  private static ReplicationState stateOf(NodeState s) {
    return ReplicationState.valueOf("STATE_" + s.name());
  }

  /** Stops renewing and tells the agent the file system closed; {@code inSync} says whether the peer had everything. */
  public void release(boolean inSync) {
    closed = true;
    Thread t;
    synchronized (this) {
      t = renewer;
    }
    if (t != null) {
      t.interrupt();
    }
    deadlines.shutdownNow();
    try {
      post(http, base, token, "/ops/release", ReleaseRequest.newBuilder().setInSync(inSync).build(),
          Duration.ofSeconds(3));
    } catch (IOException e) {
      log.warn("could not tell the local agent that the file system closed: {}", e.getMessage());
    }
  }

  @Override
  public void close() {
    release(false);
  }

  private static LeaseReply exchange(HttpClient http, URI base, Optional<String> token, String path,
      LeaseRequest request, Duration timeout) throws IOException {
    String body = post(http, base, token, path, request, timeout);
    LeaseReply.Builder reply = LeaseReply.newBuilder();
    try {
      JSON_IN.merge(body, reply);
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("the local agent at " + base + " answered something that is not a lease reply: "
          + e.getMessage());
    }
    return reply.build();
  }

  private static String post(HttpClient http, URI base, Optional<String> token, String path, Message body,
      Duration timeout) throws IOException {
    HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path))
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(JSON.print(body), StandardCharsets.UTF_8));
    token.ifPresent(t -> request.header("Authorization", "Bearer " + t));
    HttpResponse<String> response;
    try {
      response = http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    } catch (ConnectException e) {
      throw new IOException("cannot reach the local agent at " + base + ": connection refused", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while talking to the local agent");
    }
    if (response.statusCode() != 200) {
      throw new IOException("the local agent at " + base + " answered " + response.statusCode() + ": "
          + response.body().strip());
    }
    return response.body();
  }

  private static String roleName(Role r) {
    return switch (r) {
      case ROLE_PRIMARY -> "PRIMARY";
      case ROLE_SECONDARY -> "SECONDARY";
      case ROLE_STOPPED -> "STOPPED";
      case ROLE_WAIT -> "WAIT";
      default -> "not primary";
    };
  }

  private static String hostForUri(InetSocketAddress a) {
    String h = a.getHostString();
    return h.contains(":") ? "[" + h + "]" : h;
  }
}
