package io.replicator.agent;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.replicator.NodeState;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.agent.admin.AdminHandlers;
import io.replicator.agent.admin.ApplicationLatency;
import io.replicator.agent.admin.ConsoleSampler;
import io.replicator.agent.admin.EventHistory;
import io.replicator.agent.admin.LeaseStatistics;
import io.replicator.agent.admin.SampleRing;
import io.replicator.cluster.AdminTokenFile;
import io.replicator.proto.EventKind;
import java.time.Clock;
import java.time.Duration;
import java.util.function.Supplier;
import io.replicator.agent.admin.AdminServer;
import io.replicator.agent.admin.ReplicationMetrics;
import io.replicator.agent.cluster.DataNodeAgent;
import io.replicator.agent.cluster.FollowerAgent;
import io.replicator.agent.cluster.Witness;
import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.BadConfigurationException;
import io.replicator.agent.config.FollowerConfig;
import io.replicator.agent.config.NodeConfig;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Entry point of {@code replicator agent}: loads the configuration, picks this server's node (or
 * the witness role, or a follower named by {@code --node}), starts the agent channel, the admin endpoint and the role loop, and runs
 * until the process is asked to stop (SIGTERM or SIGINT), when it stops the application cleanly.
 */
public final class Agent {
  private static final Logger log = LoggerFactory.getLogger(Agent.class);

  /** One console sample a second, fifteen minutes of them. */
  private static final Duration SAMPLE_INTERVAL = Duration.ofSeconds(1);
  private static final int SAMPLES = 900;

  private Agent() {}

  /**
   * Runs the agent until the process is asked to stop.
   *
   * @param configFile the pair's configuration file
   * @param node the node named by {@code --node}, or empty to pick by host name
   * @param witness run as the witness (no data, one vote) instead of a data node
   * @return the process exit code
   * @throws BadConfigurationException when the file is bad; nothing was started
   */
  public static int run(Path configFile, Optional<String> node, boolean witness) throws BadConfigurationException {
    AgentConfig config = AgentConfig.load(configFile);
    CountDownLatch stop = new CountDownLatch(1);
    io.replicator.LinkSecurity security = io.replicator.LinkSecurity.none();
    if (config.secretFile().isPresent()) {
      try {
        security = io.replicator.LinkSecurity.secretFile(config.secretFile().get());
      } catch (IOException | RuntimeException e) {
        throw new BadConfigurationException(List.of(configFile + ": secret-file " + config.secretFile().get()
            + " cannot be used: " + e.getMessage()));
      }
    }
    if (witness) {
      if (config.witness().isEmpty()) {
        throw new BadConfigurationException(List.of(configFile + ": --witness given but the file has no witness section"));
      }
      Witness w;
      try {
        w = new Witness(config.cluster(), config.nodes().stream().map(NodeConfig::name).toList(),
            config.timers().heartbeat(), config.timers().peerTimeout(), config.witness().get().stateFile(), security);
      } catch (IllegalArgumentException e) {
        throw new BadConfigurationException(List.of(configFile + ": witness.state-file: " + e.getMessage()));
      }
      try {
        InetSocketAddress a = config.witness().get().address();
        w.listen(new InetSocketAddress(a.getHostString(), a.getPort()));
      } catch (IOException e) {
        log.error("witness cannot start: {}", e.getMessage());
        w.close();
        return 1;
      }
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        w.close();
        stop.countDown();
      }, "replicator-witness-stop"));
      await(stop);
      return 0;
    }
    if (node.isPresent() && config.follower(node.get()).isPresent()) {
      return runFollower(config, configFile, config.follower(node.get()).get(), security, stop);
    }
    NodeConfig self = config.self(node, hostName());
    String token = adminToken(config, configFile, self.admin().getPort());
    EventHistory history = EventHistory.open(self.root().resolve(Replicator.METADATA_DIRECTORY)
        .resolve(EventHistory.FILE_NAME), self.name(), EventHistory.DEFAULT_CAPACITY, Clock.systemUTC());
    DataNodeAgent agent = new DataNodeAgent(config, self, security, history);
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    ApplicationLatency latency = new ApplicationLatency();
    Supplier<ReplicationStatus> replication = agent::replication;
    ReplicationMetrics metrics = new ReplicationMetrics(registry, replication, latency);
    history.onRecord(e -> {
      if (e.getKind() == EventKind.FAILOVER) {
        metrics.failovers().increment();
      }
    });
    SampleRing samples = new SampleRing(SAMPLE_INTERVAL, SAMPLES);
    ConsoleSampler sampler = new ConsoleSampler(samples, replication, latency, history, Clock.systemUTC());
    AdminHandlers handlers = new AdminHandlers()
        .status(agent::status)
        .metrics(registry, metrics::refresh)
        .document("/events", history::toJson)
        .document("/samples", samples::toJson)
        .refusals((operation, code, reason) -> {
          metrics.refused(code);
          history.record(EventKind.REFUSED, agent.role().name(), operation + " refused (" + code + "): " + reason);
        })
        .timeout(config.application().scriptTimeout().multipliedBy(4))
        .routineOperation("lease", (p, b) -> agent.lease(b, q -> LeaseStatistics.take(q, latency)))
        .operation("release", (p, b) -> agent.release(b))
        .operation("swap", (p, b) -> agent.swap())
        .operation("promote", (p, b) -> agent.promote(flag(p, "force")))
        .operation("demote", (p, b) -> agent.demote(flag(p, "force")))
        .operation("resync", (p, b) -> agent.resync(flag(p, "full"), flag(p, "discard-local")))
        .operation("verify", (p, b) -> agent.verify());
    AdminServer admin;
    try {
      InetSocketAddress a = self.admin();
      admin = AdminServer.start(new InetSocketAddress(a.getHostString(), a.getPort()), token, handlers);
      history.record(EventKind.AGENT_START, NodeState.WAIT.name(), "agent started; admin endpoint and console on "
          + admin.localAddress().getAddress().getHostAddress() + ":" + admin.localAddress().getPort());
      agent.start();
      sampler.start(SAMPLE_INTERVAL);
    } catch (IOException | RuntimeException e) {
      log.error("agent for node {} cannot start: {}", self.name(), e.getMessage());
      sampler.close();
      agent.close();
      return 1;
    }
    log.info("agent for node {} of cluster {} running; admin on {}", self.name(), config.cluster(), admin.localAddress());
    AdminServer started = admin;
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log.info("agent stopping");
      sampler.close();
      agent.close();
      started.close();
      stop.countDown();
    }, "replicator-agent-stop"));
    await(stop);
    return 0;
  }

  /** Runs a follower's agent: its replica server and its admin endpoint, until the process is asked to stop. */
  private static int runFollower(AgentConfig config, Path configFile, FollowerConfig self,
      io.replicator.LinkSecurity security, CountDownLatch stop) throws BadConfigurationException {
    String token = adminToken(config, configFile, self.admin().getPort());
    FollowerAgent follower = new FollowerAgent(config, self, security);
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    ReplicationMetrics metrics = new ReplicationMetrics(registry, follower::replication, new ApplicationLatency());
    AdminServer admin;
    try {
      follower.start();
      InetSocketAddress a = self.admin();
      admin = AdminServer.start(new InetSocketAddress(a.getHostString(), a.getPort()), token,
          followerHandlers(follower).metrics(registry, metrics::refresh));
    } catch (IOException | RuntimeException e) {
      log.error("agent for follower {} cannot start: {}", self.name(), e.getMessage());
      follower.close();
      return 1;
    }
    log.info("agent for follower {} ({}) of cluster {} running; admin on {}", self.name(), self.mode(),
        config.cluster(), admin.localAddress());
    AdminServer started = admin;
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log.info("follower agent stopping");
      started.close();
      follower.close();
      stop.countDown();
    }, "replicator-follower-stop"));
    await(stop);
    return 0;
  }

  /**
   * The admin API of a follower's agent: its status, the delayed follower's verbs, and a clear
   * refusal of every verb of the pair.
   */
  public static AdminHandlers followerHandlers(FollowerAgent follower) {
    AdminHandlers handlers = new AdminHandlers()
        .status(follower::status)
        .operation("pause", (p, b) -> follower.pause())
        .operation("resume", (p, b) -> follower.resume())
        .operation("apply-until", (p, b) -> follower.applyUntil(b))
        .query("/log", follower::log);
    for (String verb : List.of("promote", "demote", "swap", "resync", "verify", "lease", "release")) {
      handlers.operation(verb, (p, b) -> follower.refuse(verb));
    }
    return handlers;
  }

  private static boolean flag(java.util.Map<String, String> p, String name) {
    String v = p.get(name);
    return v != null && (v.isEmpty() || v.equalsIgnoreCase("true"));
  }

  /**
   * The admin token: the configured {@code admin-token-file}, else the token this agent made for
   * itself in the user's runtime directory (made at first start, owner-only), where the CLI and the
   * embedded library find it by the admin port.
   */
  private static String adminToken(AgentConfig config, Path configFile, int adminPort)
      throws BadConfigurationException {
    if (config.adminTokenFile().isPresent()) {
      Path f = config.adminTokenFile().get();
      try {
        String t = Files.readString(f).strip();
        if (t.isEmpty()) {
          throw new BadConfigurationException(List.of(configFile + ": admin-token-file " + f + " is empty"));
        }
        return t;
      } catch (IOException e) {
        throw new BadConfigurationException(List.of(configFile + ": admin-token-file " + f + " cannot be read: "
            + e.getMessage()));
      }
    }
    Path own = AdminTokenFile.forPort(System::getenv, adminPort);
    try {
      String t = AdminTokenFile.readOrCreate(own);
      log.info("admin token (no admin-token-file configured): {}", own);
      return t;
    } catch (IOException | RuntimeException e) {
      throw new BadConfigurationException(List.of(configFile + ": no admin-token-file configured, and the agent's "
          + "own token cannot be used: " + e.getMessage()));
    }
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      return "localhost";
    }
  }

  private static void await(CountDownLatch stop) {
    try {
      stop.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
