package io.replicator.agent.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.DelayedFollower;
import io.replicator.LinkSecurity;
import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.Replicator;
import io.replicator.agent.Agent;
import io.replicator.agent.admin.AdminHandlers;
import io.replicator.agent.admin.AdminJson;
import io.replicator.agent.admin.AdminServer;
import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.FollowerConfig;
import io.replicator.cluster.LoopbackPorts;
import io.replicator.proto.AdminRefusal;
import io.replicator.proto.FollowerEntry;
import io.replicator.proto.FollowerLog;
import io.replicator.proto.FollowerMode;
import io.replicator.proto.LeaseReply;
import io.replicator.proto.LeaseRequest;
import io.replicator.proto.Mode;
import io.replicator.proto.Registration;
import io.replicator.proto.Role;
import io.replicator.proto.StatusDocument;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A follower's agent with a real replica server on 127.0.0.1: its status document, the delayed
 * follower's verbs (against a stand-in for the delayed controls), its refusals, and a primary
 * opened through an agent's registration that feeds it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FollowerAgentTest {
  private static final String TOKEN = "follower-test-token-5e21";

  @TempDir Path dir;
  private final List<AutoCloseable> closing = new ArrayList<>();
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build();
  private AdminServer admin;

  @AfterEach
  void tearDown() throws Exception {
    for (int i = closing.size() - 1; i >= 0; i--) {
      closing.get(i).close();
    }
  }

  private AgentConfig config(String mode) throws Exception {
    int alpha = LoopbackPorts.reserve();
    int beta = LoopbackPorts.reserve();
    int follower = LoopbackPorts.reserve();
    Files.createDirectories(dir.resolve("alpha"));
    Path file = Files.writeString(dir.resolve("replicator.conf"), """
        cluster = "orders"
        nodes {
          alpha { address = "127.0.0.1:%d", root = "%s", agent-address = "127.0.0.1:%d" }
          beta { address = "127.0.0.1:%d", root = "%s", agent-address = "127.0.0.1:%d" }
        }
        timers { heartbeat = 100ms, peer-timeout = 1s }
        followers.dr { address = "127.0.0.1:%d", root = "%s", %s }
        """.formatted(alpha, dir.resolve("alpha"), LoopbackPorts.reserve(), beta, dir.resolve("beta"),
        LoopbackPorts.reserve(), follower, dir.resolve("dr"), mode));
    return AgentConfig.load(file);
  }

  private FollowerAgent startFollower(AgentConfig config, FollowerAgent.Starter starter) throws IOException {
    FollowerAgent agent = new FollowerAgent(config, config.follower("dr").orElseThrow(), LinkSecurity.none(),
        starter);
    closing.add(agent);
    agent.start();
    admin = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN,
        Agent.followerHandlers(agent));
    closing.add(admin);
    return agent;
  }

  private HttpResponse<String> get(String pathAndQuery) throws Exception {
    return http.send(request(pathAndQuery).GET().build(), HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> post(String path, String body) throws Exception {
    return http.send(request(path).POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private HttpRequest.Builder request(String pathAndQuery) {
    return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin.localAddress().getPort() + pathAndQuery))
        .timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + TOKEN);
  }

  private static StatusDocument status(String json) throws Exception {
    return AdminJson.parse(json, StatusDocument.newBuilder()).build();
  }

  private static AdminRefusal refusal(HttpResponse<String> response) throws Exception {
    assertThat(response.statusCode()).as(response.body()).isEqualTo(409);
    return AdminJson.parse(response.body(), AdminRefusal.newBuilder()).build();
  }

  @Test
  void aFollowersStatusSaysFollowerWithItsModeAndCluster() throws Exception {
    startFollower(config("mode = ASYNC"), Replicator.ReplicaBuilder::start);

    HttpResponse<String> response = get("/status");

    assertThat(response.statusCode()).isEqualTo(200);
    StatusDocument doc = status(response.body());
    assertThat(doc.getNode()).isEqualTo("dr");
    assertThat(doc.getRole()).isEqualTo(StatusDocument.Role.follower);
    assertThat(doc.getFollowerNode().getMode()).isEqualTo(FollowerMode.FOLLOWER_ASYNC);
    assertThat(doc.getFollowerNode().getCluster()).isEqualTo("orders");
    assertThat(doc.getFollowerNode().hasDelay()).isFalse();
    assertThat(response.body()).contains("\"role\":\"follower\"");
  }

  @Test
  void aFollowerRefusesEveryVerbOfThePairAndNeverPromotes() throws Exception {
    startFollower(config("mode = SYNC"), Replicator.ReplicaBuilder::start);

    for (String verb : List.of("promote", "promote?force=true", "demote", "swap", "resync", "verify", "lease")) {
      AdminRefusal r = refusal(post("/ops/" + verb, ""));
      assertThat(r.getError()).isEqualTo(AdminRefusal.Code.REFUSED);
      assertThat(r.getMessage()).contains("dr is a follower").contains("never promoted");
    }
    assertThat(status(get("/status").body()).getRole()).isEqualTo(StatusDocument.Role.follower);
  }

  @Test
  void pausingAFollowerThatIsNotDelayedIsRefused() throws Exception {
    startFollower(config("mode = ASYNC"), Replicator.ReplicaBuilder::start);

    AdminRefusal r = refusal(post("/ops/pause", ""));

    assertThat(r.getError()).isEqualTo(AdminRefusal.Code.REFUSED);
    assertThat(r.getMessage()).isEqualTo("pause: follower dr is not delayed (mode ASYNC): it applies every change "
        + "as it arrives");
    assertThat(refusal(get("/log")).getMessage()).startsWith("log: follower dr is not delayed");
  }

  @Test
  void anOperatorPausesADelayedFollowerAndAppliesUpToTheMomentBeforeTheMistake() throws Exception {
    FakeDelayed fake = new FakeDelayed();
    startFollower(config("mode = DELAYED, delay = 1h, log-capacity = \"64 MiB\""), withControls(fake));

    StatusDocument paused = status(post("/ops/pause", "").body());
    assertThat(fake.paused).isTrue();
    assertThat(paused.getFollowerNode().getPaused()).isTrue();
    assertThat(paused.getFollowerNode().getMode()).isEqualTo(FollowerMode.FOLLOWER_DELAYED);
    assertThat(paused.getFollowerNode().getDelay().getSeconds()).isEqualTo(3600);
    assertThat(paused.getFollowerNode().getBacklogChanges()).isEqualTo(2);
    assertThat(paused.getFollowerNode().getLogCapacityBytes()).isEqualTo(64L << 20);
    assertThat(paused.getFollowerNode().getAppliedUpTo().getSeconds())
        .isEqualTo(FakeDelayed.APPLIED.getEpochSecond());

    HttpResponse<String> log = get("/log?since=2026-12-03T10:00:00Z&limit=5");
    assertThat(log.statusCode()).as(log.body()).isEqualTo(200);
    FollowerLog changes = AdminJson.parse(log.body(), FollowerLog.newBuilder()).build();
    assertThat(fake.logSince).isEqualTo(Instant.parse("2026-12-03T10:00:00Z"));
    assertThat(fake.logLimit).isEqualTo(5);
    assertThat(changes.getChangesList()).extracting(FollowerLog.Change::getKind).containsExactly("write", "rename");
    assertThat(changes.getChanges(1).getTarget()).isEqualTo("b.txt");
    assertThat(changes.getChanges(0).getApplied()).isTrue();

    HttpResponse<String> applied = post("/ops/apply-until", "{\"before\": \"2026-12-03T10:15:00Z\"}");
    assertThat(applied.statusCode()).as(applied.body()).isEqualTo(200);
    assertThat(fake.applyUntil).isEqualTo(Instant.parse("2026-12-03T10:15:00Z"));

    post("/ops/resume", "");
    assertThat(fake.paused).isFalse();
  }

  @Test
  void malformedTimesAndLimitsAreRefusedWithFourHundredAndChangeNothing() throws Exception {
    FakeDelayed fake = new FakeDelayed();
    startFollower(config("mode = DELAYED, delay = 10m"), withControls(fake));

    for (String body : List.of("not json", "{}", "{\"before\": \"yesterday\"}", "{\"before\": 12}")) {
      HttpResponse<String> r = post("/ops/apply-until", body);
      assertThat(r.statusCode()).as(body + " -> " + r.body()).isEqualTo(400);
      assertThat(r.body()).startsWith("Bad request: apply-until");
    }
    for (String query : List.of("since=yesterday", "limit=0", "limit=abc", "limit=10001", "until=now")) {
      HttpResponse<String> r = get("/log?" + query);
      assertThat(r.statusCode()).as(query + " -> " + r.body()).isEqualTo(400);
    }
    assertThat(get("/log?limit=abc").body()).isEqualTo("Bad request: limit=\"abc\" is not a number in 1..10000\n");
    assertThat(fake.applyUntil).isNull();
    assertThat(fake.logLimit).isZero();
  }

  @Test
  void aDelayedFollowerWithoutControlsSaysSoInsteadOfPretending() throws Exception {
    // what a replica server without the delayed part answers: no controls
    startFollower(config("mode = DELAYED, delay = 10m"), b -> new Wrapped(b.start(), null));

    assertThat(status(get("/status").body()).getFollowerNode().getControlsUnavailable()).isTrue();
    AdminRefusal r = refusal(post("/ops/pause", ""));
    assertThat(r.getError()).isEqualTo(AdminRefusal.Code.FAILED);
    assertThat(r.getMessage()).contains("offers no delayed-follower controls");
  }

  @Test
  void theRegistrationNamesEveryFollowerAndADelayedOneIsFedAsync() throws Exception {
    AgentConfig config = config("mode = DELAYED, delay = 1h");

    Registration r = DataNodeAgent.registration(config, config.nodes().get(0), config.nodes().get(1));

    FollowerConfig dr = config.follower("dr").orElseThrow();
    assertThat(r.getFollowersList()).containsExactly(FollowerEntry.newBuilder().setName("dr")
        .setAddress("127.0.0.1:" + dr.address().getPort()).setMode(Mode.MODE_ASYNC).build());
  }

  @Test
  void aPrimaryOpenedThroughItsAgentFeedsTheConfiguredFollower() throws Exception {
    AgentConfig config = config("mode = ASYNC");
    FollowerAgent follower = startFollower(config, Replicator.ReplicaBuilder::start);
    ReplicaServer secondary = Replicator.replica(dir.resolve("beta"))
        .listen(new InetSocketAddress("127.0.0.1", config.nodes().get(1).address().getPort()))
        .clusterName("orders").nodeId("beta").heartbeat(Duration.ofMillis(100), Duration.ofSeconds(1)).start();
    closing.add(secondary);
    // the part of alpha's agent the library talks to: the lease, answered with alpha's registration
    Registration registration = DataNodeAgent.registration(config, config.nodes().get(0), config.nodes().get(1));
    AdminHandlers handlers = new AdminHandlers()
        .operation("lease", (p, body) -> {
          LeaseRequest q = AdminJson.parse(body, LeaseRequest.newBuilder()).build();
          LeaseReply.Builder reply = LeaseReply.newBuilder().setRole(Role.ROLE_PRIMARY).setWritesAllowed(true)
              .setAloneAllowed(true);
          if (q.getPhase() == LeaseRequest.Phase.REGISTER) {
            reply.setRegistration(registration);
          }
          return AdminJson.print(reply);
        })
        .operation("release", (p, body) -> "released\n");
    AdminServer alphaAgent = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN,
        handlers);
    closing.add(alphaAgent);

    ReplicatedFileSystem fs = Replicator.primary(dir.resolve("alpha"))
        .agent(new InetSocketAddress("127.0.0.1", alphaAgent.localAddress().getPort())).agentToken(TOKEN).open();
    closing.add(fs);
    Files.writeString(fs.getPath("/orders.txt"), "order 1");

    assertThat(fs.followers()).containsOnlyKeys("dr");
    await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
      Path copy = dir.resolve("dr").resolve("orders.txt");
      assertThat(copy).exists();
      assertThat(Files.readString(copy)).isEqualTo("order 1");
    });
    assertThat(follower.replication().lastSequence()).isPositive();
  }

  private static FollowerAgent.Starter withControls(DelayedFollower controls) {
    return b -> new Wrapped(b.start(), controls);
  }

  /** The real replica server, with the delayed controls the test chooses. */
  private record Wrapped(ReplicaServer server, DelayedFollower controls) implements ReplicaServer {
    @Override
    public InetSocketAddress localAddress() {
      return server.localAddress();
    }

    @Override
    public io.replicator.ReplicationStatus status() {
      return server.status();
    }

    @Override
    public io.replicator.LocalData localData() {
      return server.localData();
    }

    @Override
    public Optional<DelayedFollower> delayed() {
      return Optional.ofNullable(controls);
    }

    @Override
    public void close() {
      server.close();
    }
  }

  /** Records what the agent asked of the delayed follower. */
  private static final class FakeDelayed implements DelayedFollower {
    static final Instant APPLIED = Instant.parse("2026-12-03T09:00:00Z");
    volatile boolean paused;
    volatile Instant applyUntil;
    volatile Instant logSince;
    volatile int logLimit;

    @Override
    public Duration delay() {
      return Duration.ofHours(1);
    }

    @Override
    public void pause() {
      paused = true;
    }

    @Override
    public void resume() {
      paused = false;
      applyUntil = null;
    }

    @Override
    public void applyUntil(Instant before) {
      applyUntil = before;
      paused = true;
    }

    @Override
    public List<LoggedChange> log(Instant since, int limit) {
      logSince = since;
      logLimit = limit;
      return List.of(
          new LoggedChange(41, Instant.parse("2026-12-03T10:01:00Z"), "write", "a.txt", Optional.empty(), 4096, true),
          new LoggedChange(42, Instant.parse("2026-12-03T10:20:00Z"), "rename", "a.txt", Optional.of("b.txt"), 0,
              false));
    }

    @Override
    public Status status() {
      return new Status(Duration.ofHours(1), paused, Optional.ofNullable(applyUntil), Optional.of(APPLIED), 2, 4096,
          8192, 64L << 20, Optional.empty());
    }
  }
}
