package io.replicator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Timestamp;
import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.agent.admin.AdminHandlers;
import io.replicator.agent.admin.AdminJson;
import io.replicator.agent.admin.AdminServer;
import io.replicator.agent.admin.BadRequest;
import io.replicator.agent.admin.OperationFailure;
import io.replicator.agent.admin.StatusDocuments;
import io.replicator.proto.ApplyUntilRequest;
import io.replicator.proto.FollowerLink;
import io.replicator.proto.FollowerLog;
import io.replicator.proto.FollowerMode;
import io.replicator.proto.FollowerView;
import io.replicator.proto.StatusDocument;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code replicator follower ...} against an admin endpoint on 127.0.0.1 that plays a delayed follower's agent. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FollowerCommandTest {
  private static final String TOKEN = "follower-cli-token-77a1";
  private static final Instant APPLIED = Instant.parse("2026-12-03T09:00:00Z");

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();
  private final Map<String, String> environment = new HashMap<>(Map.of("REPLICATOR_ADMIN_TOKEN", TOKEN));
  private final AtomicReference<String> lastBody = new AtomicReference<>();
  private final AtomicReference<Map<String, String>> lastQuery = new AtomicReference<>();
  private AdminServer server;

  @AfterEach
  void tearDown() {
    if (server != null) {
      server.close();
    }
  }

  private static StatusDocument delayedFollower(boolean paused) {
    ReplicationStatus s = new ReplicationStatus(NodeState.SECONDARY, ReplicationMode.ASYNC,
        Optional.of("10.0.0.1:7400"), true, false, Optional.empty(), 7, 0, 120, 100, 0, 0, Optional.empty());
    return StatusDocuments.of("dr", s).setRole(StatusDocument.Role.follower)
        .setFollowerNode(FollowerView.newBuilder().setCluster("orders").setMode(FollowerMode.FOLLOWER_DELAYED)
            .setDelay(com.google.protobuf.Duration.newBuilder().setSeconds(3600)).setPaused(paused)
            .setAppliedUpTo(Timestamp.newBuilder().setSeconds(APPLIED.getEpochSecond()))
            .setBacklogChanges(20).setBacklogBytes(2048).setLogBytes(1 << 20).setLogCapacityBytes(10L << 30))
        .build();
  }

  private void start() throws Exception {
    AdminHandlers handlers = new AdminHandlers()
        .status(() -> delayedFollower(false))
        .operation("pause", (p, b) -> AdminJson.print(delayedFollower(true)))
        .operation("apply-until", (p, b) -> {
          lastBody.set(b);
          return AdminJson.print(delayedFollower(true));
        })
        .operation("promote", (p, b) -> {
          throw new OperationFailure(OperationFailure.Code.REFUSED, "promote is a verb of the pair");
        })
        .query("/log", q -> {
          lastQuery.set(q);
          if ("0".equals(q.get("limit"))) {
            throw new BadRequest("limit=\"0\" is not a number in 1..10000");
          }
          return AdminJson.print(FollowerLog.newBuilder()
              .addChanges(FollowerLog.Change.newBuilder().setSequence(41).setKind("write").setPath("a.txt")
                  .setReceived(Timestamp.newBuilder().setSeconds(Instant.parse("2026-12-03T10:01:00Z")
                      .getEpochSecond())).setBytes(4096).setApplied(true))
              .addChanges(FollowerLog.Change.newBuilder().setSequence(42).setKind("rename").setPath("a.txt")
                  .setTarget("b.txt").setReceived(Timestamp.newBuilder().setSeconds(Instant.parse(
                      "2026-12-03T10:20:00Z").getEpochSecond()))));
        });
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
  }

  private int run(String... args) {
    return ReplicatorCommand.commandLine(new PrintWriter(out, true), new PrintWriter(err, true), environment::get)
        .execute(args);
  }

  private int follower(String... args) {
    String[] all = new String[args.length + 3];
    all[0] = "follower";
    System.arraycopy(args, 0, all, 1, args.length);
    all[args.length + 1] = "--admin";
    all[args.length + 2] = "127.0.0.1:" + server.localAddress().getPort();
    return run(all);
  }

  @ParameterizedTest
  @ValueSource(strings = {"yesterday", "-10", "10m", "-10w", "2026-12-03 10:15", "2026-13-03T10:15:00Z"})
  void aTimeThatIsNotATimeIsAUsageErrorAndNothingIsSent(String time) throws Exception {
    start();

    assertThat(follower("apply-until", time)).isEqualTo(ExitCodes.USAGE);

    assertThat(err.toString()).contains("is not a time: write an ISO-8601 instant such as 2026-12-03T10:15:00Z, "
        + "or a time ago such as -10m");
    assertThat(lastBody.get()).isNull();
    assertThat(follower("log", "--since", time)).isEqualTo(ExitCodes.USAGE);
    assertThat(lastQuery.get()).isNull();
  }

  @Test
  void applyUntilSendsTheInstantAsATypedRequest() throws Exception {
    start();

    assertThat(follower("apply-until", "2026-12-03T10:15:00Z")).as(err.toString()).isZero();

    ApplyUntilRequest sent = AdminJson.parse(lastBody.get(), ApplyUntilRequest.newBuilder()).build();
    assertThat(sent.getBefore().getSeconds()).isEqualTo(Instant.parse("2026-12-03T10:15:00Z").getEpochSecond());
    assertThat(out.toString()).startsWith("applying until 2026-12-03T10:15:00Z, then holding\n");
  }

  @Test
  void aTimeAgoCountsBackFromNow() {
    Clock clock = Clock.fixed(Instant.parse("2026-12-03T10:30:00Z"), ZoneOffset.UTC);

    assertThat(TimeArgument.parse("-10m", clock)).isEqualTo(Instant.parse("2026-12-03T10:20:00Z"));
    assertThat(TimeArgument.parse("-2h", clock)).isEqualTo(Instant.parse("2026-12-03T08:30:00Z"));
    assertThat(TimeArgument.parse("-1d", clock)).isEqualTo(Instant.parse("2026-12-02T10:30:00Z"));
    assertThat(TimeArgument.parse("2026-12-03T10:15:00Z", clock)).isEqualTo(Instant.parse("2026-12-03T10:15:00Z"));
  }

  @Test
  void theLogPrintsOneLinePerChangeAppliedOrPending() throws Exception {
    start();

    assertThat(follower("log", "--since", "2026-12-03T10:00:00Z", "--limit", "5")).as(err.toString()).isZero();

    assertThat(lastQuery.get()).containsEntry("since", "2026-12-03T10:00:00Z").containsEntry("limit", "5");
    assertThat(out.toString().lines()).containsExactly(
        "2026-12-03T10:01:00Z  seq 41  write  a.txt  4.0 KiB  applied",
        "2026-12-03T10:20:00Z  seq 42  rename  a.txt → b.txt  0 B  pending");
  }

  @Test
  void aLimitOutOfRangeIsAUsageError() throws Exception {
    start();

    assertThat(follower("log", "--limit", "0")).isEqualTo(ExitCodes.USAGE);
    assertThat(err.toString()).contains("--limit 0 is not in 1..10000");
    assertThat(lastQuery.get()).isNull();
  }

  @Test
  void statusShowsTheDelayHowFarBackTheTreeStandsTheBacklogAndTheLogDisk() throws Exception {
    start();

    assertThat(follower("status")).as(err.toString()).isZero();

    assertThat(out.toString()).contains("follower dr of cluster orders, mode DELAYED",
        "delay          1 h 0 min", "applied tree   as of 2026-12-03T09:00:00Z (",
        "backlog        20 changes, 2.0 KiB", "log disk       1.0 MiB of 10.0 GiB (0.0%)",
        "applying       as changes age past the delay");
    out.getBuffer().setLength(0);
    assertThat(follower("pause")).isZero();
    assertThat(out.toString()).startsWith("paused\n").contains("applying       PAUSED");
  }

  @Test
  void aPairVerbRefusedByTheFollowerExitsRefused() throws Exception {
    start();

    assertThat(run("promote", "--admin", "127.0.0.1:" + server.localAddress().getPort()))
        .isEqualTo(ExitCodes.REFUSED);
    assertThat(err.toString()).contains("promote refused: promote is a verb of the pair");
  }

  @Test
  void followerWithoutAVerbIsAUsageError() {
    assertThat(run("follower")).isEqualTo(ExitCodes.USAGE);
    assertThat(err.toString()).contains("missing follower command: status, pause, resume, apply-until or log");
  }

  @Test
  void aPrimarysStatusListsItsFollowers() {
    StatusDocument doc = StatusDocuments.of("alpha", new ReplicationStatus(NodeState.PRIMARY, ReplicationMode.SYNC,
        Optional.of("10.0.0.2:7400"), true, false, Optional.empty(), 1, 0, 5, 5, 0, 0, Optional.empty()))
        .addFollowers(FollowerLink.newBuilder().setName("dr").setMode(FollowerMode.FOLLOWER_DELAYED)
            .setAddress("10.0.0.4:7400").setReported(true).setConnected(true).setDirtyBytes(0))
        .addFollowers(FollowerLink.newBuilder().setName("copy").setMode(FollowerMode.FOLLOWER_ASYNC)
            .setAddress("10.0.0.5:7400").setReported(true).setConnected(false).setDirtyBytes(3 << 20))
        .build();

    assertThat(StatusView.render(doc)).contains("followers\n"
        + "  dr (DELAYED, 10.0.0.4:7400): connected, dirty 0 B\n"
        + "  copy (ASYNC, 10.0.0.5:7400): DISCONNECTED, dirty 3.0 MiB\n");
  }
}
