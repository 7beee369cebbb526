package io.replicator.cluster;

import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationStatus;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An application's registration with its local agent, which owns the role decision: the library
 * opens as primary only when the agent says so, and then renews a lease on every heartbeat. The
 * agent's answer gates writes (alone allowed or not, suspended when fenced); losing the agent
 * for longer than the lease suspends writes too, so a primary whose agent died cannot diverge.
 *
 * <p>The exchange is {@code POST /ops/lease} on the agent's admin endpoint: the application's
 * status goes out as query parameters, and {@code key=value} lines come back. {@code POST
 * /ops/release} tells the agent the file system closed, and whether the peer had everything.
 */
public final class AgentLease implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(AgentLease.class);

  /** Receives the agent's gate decisions (the replication stream). */
  public interface Gate {
    void gate(boolean aloneAllowed, String suspendedReason);
  }

  private final URI base;
  private final Optional<String> token;
  private final HttpClient http;
  private final Map<String, String> registration;
  private final Duration interval;
  private final Duration leaseTimeout;
  private final AtomicReference<String> commandResult = new AtomicReference<>();
  private volatile boolean commandRunning;
  private volatile boolean closed;
  private Thread renewer;

  private AgentLease(URI base, Optional<String> token, HttpClient http, Map<String, String> registration) {
    this.base = base;
    this.token = token;
    this.http = http;
    this.registration = registration;
    this.interval = Duration.parse(registration.getOrDefault("lease-interval", "PT0.2S"));
    this.leaseTimeout = Duration.parse(registration.getOrDefault("lease-timeout", "PT3S"));
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
    Map<String, String> reply = exchange(http, base, token, "/ops/lease",
        Map.of("phase", "register", "root", root), Duration.ofSeconds(10));
    String role = reply.getOrDefault("role", "");
    if (!role.equals("PRIMARY")) {
      throw new IOException("the local agent at " + admin.getHostString() + ":" + admin.getPort()
          + " says this node is " + (role.isEmpty() ? "not primary" : role)
          + "; refusing to open as primary" + (reply.containsKey("why") ? " (" + reply.get("why") + ")" : ""));
    }
    return new AgentLease(base, token, http, reply);
  }

  /** What the agent answered at registration: peer, mode, timers and policies from the pair's configuration. */
  public Map<String, String> registration() {
    return registration;
  }

  /** Starts renewing the lease; every answer goes to {@code gate}. */
  public synchronized void start(ReplicatedFileSystem fs, Gate gate) {
    apply(registration, gate);
    renewer = new Thread(() -> renew(fs, gate), "replicator-agent-lease");
    renewer.setDaemon(true);
    renewer.start();
  }

  private void renew(ReplicatedFileSystem fs, Gate gate) {
    long lastAnswer = System.nanoTime();
    boolean suspendedForSilence = false;
    while (!closed) {
      try {
        Map<String, String> reply = exchange(http, base, token, "/ops/lease", statusParameters(fs.status(), fs.writeStatistics()),
            leaseTimeout);
        lastAnswer = System.nanoTime();
        if (suspendedForSilence) {
          log.info("local agent answers again");
          suspendedForSilence = false;
        }
        apply(reply, gate);
        String command = reply.get("command");
        if (command != null && !commandRunning) {
          runCommand(fs, command);
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
          gate.gate(false, "no answer from the local agent");
        }
      }
      try {
        Thread.sleep(interval.toMillis());
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private static void apply(Map<String, String> reply, Gate gate) {
    boolean alone = !"refused".equals(reply.get("alone"));
    String writes = reply.getOrDefault("writes", "allowed");
    gate.gate(alone, writes.equals("allowed") ? null : reply.getOrDefault("why", "suspended by the agent"));
  }

  private void runCommand(ReplicatedFileSystem fs, String command) {
    commandRunning = true;
    commandResult.set(null);
    Thread t = new Thread(() -> {
      String result;
      try {
        switch (command) {
          case "verify" -> result = "verify: " + fs.verify();
          case "resync" -> {
            fs.resync();
            result = "resync: done, peer in sync";
          }
          case "resync-full" -> {
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
      commandResult.set(result);
      commandRunning = false;
    }, "replicator-agent-command");
    t.setDaemon(true);
    t.start();
  }

  private Map<String, String> statusParameters(ReplicationStatus s, io.replicator.WriteStatistics statistics) {
    Map<String, String> p = new LinkedHashMap<>();
    p.put("phase", "renew");
    p.put("state", s.state().name());
    p.put("inSync", Boolean.toString(s.inSync()));
    p.put("peerConnected", Boolean.toString(s.peerConnected()));
    p.put("peerOutOfDate", Boolean.toString(s.peerOutOfDate()));
    p.put("generation", Long.toHexString(s.generation()));
    p.put("dirtyBytes", Long.toString(s.dirtyBytes()));
    p.put("lastSequence", Long.toString(s.lastSequence()));
    p.put("appliedSequence", Long.toString(s.appliedSequence()));
    p.put("inFlightChanges", Long.toString(s.inFlightChanges()));
    p.put("inFlightBytes", Long.toString(s.inFlightBytes()));
    s.problem().ifPresent(v -> p.put("problem", v));
    s.resync().ifPresent(r -> {
      p.put("resyncDone", Long.toString(r.bytesDone()));
      p.put("resyncTotal", Long.toString(r.bytesTotal()));
      p.put("resyncRate", Long.toString(r.bytesPerSecond()));
      p.put("resyncEta", Long.toString(r.etaSeconds()));
    });
    // Latency as this application sees it, for the agent's metrics and console; base64 of the
    // proto form until the lease itself is a proto exchange.
    p.put("writeStatistics", java.util.Base64.getUrlEncoder().withoutPadding()
        .encodeToString(WriteStatisticsProtos.toProto(statistics).toByteArray()));
    p.put("commandRunning", Boolean.toString(commandRunning));
    String result = commandResult.getAndSet(null);
    if (result != null) {
      p.put("commandResult", result);
    }
    return p;
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
    try {
      exchange(http, base, token, "/ops/release", Map.of("inSync", Boolean.toString(inSync)), Duration.ofSeconds(3));
    } catch (IOException e) {
      log.warn("could not tell the local agent that the file system closed: {}", e.getMessage());
    }
  }

  @Override
  public void close() {
    release(false);
  }

  private static Map<String, String> exchange(HttpClient http, URI base, Optional<String> token, String path,
      Map<String, String> parameters, Duration timeout) throws IOException {
    StringBuilder query = new StringBuilder();
    parameters.forEach((k, v) -> query.append(query.length() == 0 ? "?" : "&")
        .append(URLEncoder.encode(k, StandardCharsets.UTF_8)).append('=')
        .append(URLEncoder.encode(v, StandardCharsets.UTF_8)));
    HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path + query))
        .timeout(timeout).POST(HttpRequest.BodyPublishers.noBody());
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
    return parse(response.body());
  }

  static Map<String, String> parse(String body) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String line : body.split("\n")) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        out.put(line.substring(0, eq).strip(), line.substring(eq + 1).strip());
      }
    }
    return out;
  }

  private static String hostForUri(InetSocketAddress a) {
    String h = a.getHostString();
    return h.contains(":") ? "[" + h + "]" : h;
  }
}
