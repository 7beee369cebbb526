package io.replicator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.agent.admin.AdminHandlers;
import io.replicator.agent.admin.AdminServer;
import io.replicator.cluster.AdminTokenFile;
import io.replicator.cluster.LoopbackPorts;
import io.replicator.agent.admin.OperationFailure;
import io.replicator.proto.StatusDocument;
import io.replicator.proto.VerifyFindings;
import io.replicator.agent.admin.AdminJson;
import io.replicator.agent.admin.StatusDocuments;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The admin verbs against a real admin endpoint on 127.0.0.1 whose status and operations the test
 * controls: what they print, what they send, and each exit code.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdminVerbsTest {
  private static final String TOKEN = "cli-test-token-3b7d91";

  @TempDir Path dir;
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();
  private final Map<String, String> environment = new HashMap<>();
  private final AtomicReference<Supplier<StatusDocument>> status =
      new AtomicReference<>(() -> StatusDocuments.of("alpha", primaryInSync()).build());
  private final AtomicReference<Map<String, String>> lastParameters = new AtomicReference<>();
  private final AdminHandlers handlers = new AdminHandlers().status(() -> status.get().get());
  private AdminServer server;

  @AfterEach
  void tearDown() {
    if (server != null) {
      server.close();
    }
  }

  /**
   * Starts the endpoint as an agent without a configured token does: it made its own, in the
   * user's runtime directory, where the verbs find it by the admin port.
   */
  private void start() throws IOException {
    startWithoutTokenFile();
    environment.put(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE, dir.resolve("run").toString());
    Path own = AdminTokenFile.forPort(environment::get, server.localAddress().getPort());
    Files.createDirectories(own.getParent());
    Files.writeString(own, TOKEN + "\n");
    Files.setPosixFilePermissions(own, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
  }

  /** Starts the endpoint with a token the verbs do not find by themselves. */
  private void startWithoutTokenFile() throws IOException {
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
  }

  private String admin() {
    return "127.0.0.1:" + server.localAddress().getPort();
  }

  private int run(String... args) {
    return ReplicatorCommand.commandLine(new PrintWriter(out, true), new PrintWriter(err, true), environment::get)
        .execute(args);
  }

  /** Runs a verb against the test's endpoint. */
  private int verb(String... args) {
    String[] all = new String[args.length + 2];
    System.arraycopy(args, 0, all, 0, args.length);
    all[args.length] = "--admin";
    all[args.length + 1] = admin();
    return run(all);
  }

  private List<String> errLines() {
    return err.toString().lines().toList();
  }

  private static ReplicationStatus primaryInSync() {
    return new ReplicationStatus(NodeState.PRIMARY, ReplicationMode.SYNC, Optional.of("10.0.0.2:7400"),
        true, false, Optional.empty(), 0x1234abcdL, 0, 42, 42, 0, 0, Optional.empty());
  }

  private static ReplicationStatus syncSource(long done, long total) {
    return new ReplicationStatus(NodeState.SYNC_SOURCE, ReplicationMode.SYNC, Optional.of("10.0.0.2:7400"),
        true, true, Optional.of("peer out of date"), 0xfedcba9876543210L, total - done, 100, 90, 3, 12288,
        Optional.of(new ReplicationStatus.ResyncProgress(done, total, 1_048_576, (total - done) / 1_048_576)));
  }

  private static StatusDocument fullDocument() {
    StatusDocument.Builder doc = StatusDocuments.of("alpha", syncSource(300 * 1024, 1200 * 1024))
        .setLastFailover(StatusDocuments.failover(Instant.parse("2026-03-01T10:00:00Z"),
            Optional.of("beta"), Optional.of("alpha"), "peer lost"));
    doc.getExtraBuilder().setCluster("orders").setEpoch(7)
        .setPeerNode(StatusDocument.PeerNode.newBuilder().setName("beta").setState(StatusDocument.State.SYNC_TARGET)
            .setReachable(true).setLastHeardMillisAgo(120).setGeneration("00000000deadbeef"))
        .setWitness(StatusDocument.Witness.newBuilder().setAddress("10.0.0.3:7401").setReachable(false))
        .setApplication(StatusDocument.Application.newBuilder().setRegistered(true).setRestarts(1));
    return doc.build();
  }

  /** An in-sync primary with a verify in {@code extra}. */
  private static StatusDocument withVerify(StatusDocument.Verify.Builder verify) {
    StatusDocument.Builder doc = StatusDocuments.of("alpha", primaryInSync());
    doc.getExtraBuilder().setVerify(verify);
    return doc.build();
  }

  @Test
  void statusShowsBothNodesAndTheLinkInATable() throws Exception {
    status.set(AdminVerbsTest::fullDocument);
    start();

    assertThat(verb("status")).as(err.toString()).isZero();

    String text = out.toString();
    assertThat(text).startsWith("cluster orders, epoch 7, mode SYNC, NOT in sync\n");
    assertThat(text).containsPattern("node +alpha \\(this node\\) +beta \\(peer\\)")
        .containsPattern("role +primary +secondary")
        .containsPattern("state +SYNC_SOURCE +SYNC_TARGET")
        .containsPattern("generation +fedcba9876543210 +00000000deadbeef")
        .containsPattern("reachable +yes +yes, heard 120 ms ago")
        .containsPattern("connection +connected, peer out of date")
        .containsPattern("dirty +900\\.0 KiB")
        .containsPattern("resync +300\\.0 KiB of 1\\.2 MiB \\(25\\.0%\\), 1\\.0 MiB/s, ETA 0 s")
        .containsPattern("problem +peer out of date")
        .containsPattern("witness +10\\.0\\.0\\.3:7401, NOT reachable")
        .containsPattern("application +registered, 1 restart\n")
        .containsPattern("last failover +2026-03-01T10:00:00Z beta -> alpha: peer lost");
    assertThat(text).doesNotContain("epoch: ").doesNotContain("verify");

    out.getBuffer().setLength(0);
    status.set(() -> fullDocument().toBuilder().setExtra(fullDocument().getExtra().toBuilder()
        .setVerify(StatusDocument.Verify.newBuilder().setResult("verify: VerifyReport[...]")
            .setFindings(VerifyFindings.newBuilder().setPathsCompared(3).setBytesCompared(4096)))).build());
    assertThat(verb("status")).as(err.toString()).isZero();
    assertThat(out.toString()).containsPattern("verify +last result: identical: 3 paths and 4\\.0 KiB compared\n");
    assertThat(err.toString()).isEmpty();
  }

  @Test
  void statusJsonIsTheDocumentAsReceived() throws Exception {
    StatusDocument document = fullDocument();
    status.set(() -> document);
    start();

    assertThat(verb("status", "--json")).isZero();

    assertThat(out.toString()).isEqualTo(AdminJson.print(document) + System.lineSeparator());
  }

  @Test
  void aStatusWithABadValueIsRefusedWithTheReasonNotReadAsZero() {
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> AdminClient.parseStatus(
            "{\"node\":\"alpha\",\"dirtyBytes\":\"lots\"}", "127.0.0.1:7480"))
        .isInstanceOf(CommandFailure.class)
        .hasMessageStartingWith("the agent at 127.0.0.1:7480 sent a status that is not a status document: ")
        .hasMessageContaining("lots");
  }

  @Test
  void statusOfAMinimalDocumentNamesWhatIsUnknown() throws Exception {
    start();

    assertThat(verb("status")).isZero();

    assertThat(out.toString()).startsWith("mode SYNC, in sync\n")
        .containsPattern("node +alpha \\(this node\\) +peer \\(peer\\)")
        .containsPattern("reachable +yes +connected")
        .containsPattern("resync +none")
        .containsPattern("last failover +none");
  }

  @Test
  void closedPortIsAgentUnreachable() throws Exception {
    int port = LoopbackPorts.reserve();

    assertThat(run("status", "--admin", "127.0.0.1:" + port)).isEqualTo(ExitCodes.AGENT_UNREACHABLE);

    assertThat(errLines()).singleElement().asString()
        .startsWith("replicator: cannot reach the agent's admin endpoint at 127.0.0.1:" + port + ": ")
        .contains("is the agent running?");
    assertThat(out.toString()).isEmpty();
  }

  @ParameterizedTest
  @CsvSource({
      "swap, PEER_UNREACHABLE, 4, 'replicator: swap refused, peer unreachable: beta does not answer'",
      "swap, SPLIT_BRAIN, 5, 'replicator: swap refused, split brain: beta does not answer'",
      "swap, REFUSED, 6, 'replicator: swap refused: beta does not answer'",
      "swap, FAILED, 1, 'replicator: swap failed: beta does not answer'",
      "promote, SPLIT_BRAIN, 5, 'replicator: promote refused, split brain: beta does not answer"
          + " (--force overrides this guard)'",
      "demote, SPLIT_BRAIN, 5, 'replicator: demote refused, split brain: beta does not answer"
          + " (--force overrides this guard)'",
      "resync, REFUSED, 6, 'replicator: resync refused: beta does not answer'",
      "verify, PEER_UNREACHABLE, 4, 'replicator: verify refused, peer unreachable: beta does not answer'"})
  void refusalCodesBecomeExitCodes(String operation, OperationFailure.Code code, int exitCode, String line)
      throws Exception {
    handlers.operation(operation, (parameters, body) -> {
      throw new OperationFailure(code, "beta does not answer");
    });
    start();

    assertThat(verb(operation)).isEqualTo(exitCode);

    assertThat(errLines()).containsExactly(line);
  }

  @Test
  void swapPrintsTheAgentsAnswer() throws Exception {
    handlers.operation("swap", (parameters, body) -> "swapped: beta is primary, downtime 1.2 s");
    start();

    assertThat(verb("swap")).isZero();

    assertThat(out.toString()).isEqualTo("swapped: beta is primary, downtime 1.2 s" + System.lineSeparator());
    assertThat(err.toString()).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"promote", "demote"})
  void forceIsSentAsAQueryParameter(String operation) throws Exception {
    handlers.operation(operation, (parameters, body) -> {
      lastParameters.set(parameters);
      return "done";
    });
    start();

    assertThat(verb(operation)).isZero();
    assertThat(lastParameters.get()).isEmpty();
    assertThat(verb(operation, "--force")).isZero();
    assertThat(lastParameters.get()).containsExactly(Map.entry("force", "true"));
  }

  @Test
  void forcedPromotionRefusedForSplitBrainHasNoOverrideHint() throws Exception {
    handlers.operation("promote", (parameters, body) -> {
      throw new OperationFailure(OperationFailure.Code.SPLIT_BRAIN, "both sides wrote");
    });
    start();

    assertThat(verb("promote", "--force")).isEqualTo(ExitCodes.SPLIT_BRAIN);
    assertThat(errLines()).containsExactly("replicator: promote refused, split brain: both sides wrote");
  }

  @Test
  void unexpectedFailureIsExitOneWithTheAgentsMessage() throws Exception {
    handlers.operation("swap", () -> {
      throw new IllegalStateException("stop script exited with 3\nsee the log");
    });
    start();

    assertThat(verb("swap")).isEqualTo(ExitCodes.FAILURE);
    assertThat(errLines()).singleElement().asString().startsWith("replicator: swap failed: the agent at ")
        .endsWith("answered 500: stop script exited with 3 see the log");
  }

  @Test
  void operationTheAgentDoesNotServeIsAFailure() throws Exception {
    start();

    assertThat(verb("swap")).isEqualTo(ExitCodes.FAILURE);
    assertThat(errLines()).singleElement().asString().contains("does not serve the swap (404: No operation named swap)");
  }

  @Test
  void agentHandlerTimeoutIsAFailureThatSaysItMayComplete() throws Exception {
    java.util.concurrent.CountDownLatch finish = new java.util.concurrent.CountDownLatch(1);
    handlers.timeout(Duration.ofMillis(200)).operation("swap", () -> {
      // a swap still running when the agent's time is up; released once the verb has answered
      finish.await(10, TimeUnit.SECONDS);
      return "late";
    });
    start();

    assertThat(verb("swap")).isEqualTo(ExitCodes.FAILURE);
    assertThat(errLines()).singleElement().asString()
        .startsWith("replicator: the swap did not finish in the agent's time (")
        .contains("it may still complete")
        .endsWith("check 'replicator status'");
    finish.countDown();
  }

  @Test
  void tokenIsSentFromTheEnvironmentOrAFileAndNeverPrinted() throws Exception {
    handlers.operation("swap", () -> "swapped");
    startWithoutTokenFile();

    assertThat(verb("swap")).isEqualTo(ExitCodes.UNAUTHORIZED);
    assertThat(errLines()).singleElement().asString().contains("wants an admin token (401)")
        .contains("--token-file FILE or set $REPLICATOR_ADMIN_TOKEN").contains("admin-PORT.token");

    err.getBuffer().setLength(0);
    Path wrong = Files.writeString(dir.resolve("wrong"), "not-the-token\n");
    assertThat(verb("swap", "--token-file", wrong.toString())).isEqualTo(ExitCodes.UNAUTHORIZED);
    assertThat(errLines()).singleElement().asString().contains("refused the admin token (401)")
        .doesNotContain("not-the-token");

    Path right = Files.writeString(dir.resolve("token"), TOKEN + "\n");
    assertThat(verb("swap", "--token-file", right.toString())).isZero();

    environment.put("REPLICATOR_ADMIN_TOKEN", TOKEN);
    assertThat(verb("swap")).isZero();
    assertThat(out.toString() + err).doesNotContain(TOKEN);
  }

  @Test
  void theTokenTheLocalAgentMadeForItselfIsFoundWithoutAnyOption() throws Exception {
    handlers.operation("swap", () -> "swapped");
    start();

    assertThat(verb("swap")).as(err.toString()).isZero();
    assertThat(out.toString()).contains("swapped").doesNotContain(TOKEN);
  }

  @Test
  void usageErrorsExitTwoWithOneLineAndAHint() throws Exception {
    assertThat(run("status", "--jsn")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines()).containsExactly("replicator: Unknown option: '--jsn'",
        "Try 'replicator status --help' for more information.");

    err.getBuffer().setLength(0);
    assertThat(run("swap", "--admin", "nonsense")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines().get(0)).isEqualTo(
        "replicator: Invalid value for option '--admin': 'nonsense' is not host:port (for example 127.0.0.1:7480)");

    err.getBuffer().setLength(0);
    assertThat(run("swap", "--admin", "127.0.0.1:99999")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines().get(0)).endsWith("'127.0.0.1:99999' has a port that is not in 1..65535");

    err.getBuffer().setLength(0);
    assertThat(run("status", "--admin", "127.0.0.1:7480", "--config", "x.conf")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines().get(0)).isEqualTo("replicator: --admin and --config are mutually exclusive");

    err.getBuffer().setLength(0);
    assertThat(run("status", "--node", "alpha")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines().get(0)).isEqualTo("replicator: --node needs --config");

    err.getBuffer().setLength(0);
    Path empty = Files.writeString(dir.resolve("empty-token"), "\n");
    assertThat(run("swap", "--token-file", empty.toString())).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines().get(0)).isEqualTo("replicator: --token-file " + empty + " is empty");

    err.getBuffer().setLength(0);
    assertThat(run("agent")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines().get(0)).isEqualTo("replicator: Missing required option: '--config=FILE'");
  }

  @Test
  void configFileGivesTheNodesAdminAddress() throws Exception {
    start();
    Path config = Files.writeString(dir.resolve("replicator.conf"), """
        cluster = "orders"
        nodes {
          alpha { address = "127.0.0.1:7400", root = "/srv/data", admin = "%s" }
          beta { address = "127.0.0.2:7400", root = "/srv/data" }
        }
        """.formatted(admin()));

    assertThat(run("status", "--json", "--config", config.toString(), "--node", "alpha"))
        .as(err.toString()).isZero();
    assertThat(out.toString()).startsWith("{\"node\":\"alpha\"");

    err.getBuffer().setLength(0);
    assertThat(run("status", "--config", config.toString(), "--node", "gamma")).isEqualTo(ExitCodes.USAGE);
    assertThat(errLines()).containsExactly(config + ": --node \"gamma\" is not a node of this file"
        + " (known nodes: alpha, beta)");
  }

  @Test
  void agentWithABadConfigurationFileExitsTwoWithFileLineKeyMessage() throws Exception {
    Path config = Files.writeString(dir.resolve("replicator.conf"), """
        cluster = "orders"
        nodes {
          alpha { address = "10.0.0.1", root = "/srv/data" }
          beta { address = "10.0.0.2:7400", root = "/srv/data" }
        }
        """);

    assertThat(run("agent", "--config", config.toString(), "--node", "alpha")).isEqualTo(ExitCodes.USAGE);

    assertThat(errLines()).containsExactly(
        config + ":3: nodes.alpha.address: \"10.0.0.1\" has no port (expected host:port)");
    assertThat(out.toString()).isEmpty();
  }

  @Test
  void resyncFollowsTheProgressWithPlainLinesUntilItEnds() throws Exception {
    long total = 40L << 20;
    AtomicReference<Long> startedAt = new AtomicReference<>();
    handlers.operation("resync", (parameters, body) -> {
      lastParameters.set(parameters);
      startedAt.set(System.nanoTime());
      return "resync started: 40.0 MiB to send";
    });
    // In sync until the operation; then a resync that runs 4.5 s; then in sync again.
    status.set(() -> {
      Long since = startedAt.get();
      long elapsedMillis = since == null ? 0 : (System.nanoTime() - since) / 1_000_000;
      if (since == null || elapsedMillis >= 4500) {
        return StatusDocuments.of("alpha", primaryInSync()).build();
      }
      return StatusDocuments.of("alpha", syncSource(total * elapsedMillis / 4500, total)).build();
    });
    start();

    assertThat(verb("resync", "--full", "--discard-local")).as(err.toString()).isZero();

    assertThat(lastParameters.get()).containsExactly(Map.entry("full", "true"), Map.entry("discard-local", "true"));
    List<String> lines = out.toString().lines().toList();
    assertThat(lines.get(0)).isEqualTo("resync started: 40.0 MiB to send");
    List<String> progress = lines.subList(1, lines.size() - 1);
    assertThat(progress).hasSizeBetween(2, 4).allSatisfy(line -> assertThat(line).matches(
        "resync: [\\d.]+ [KMG]?i?B of 40\\.0 MiB \\([\\d.]+%\\), 1\\.0 MiB/s, ETA \\d+ s"));
    assertThat(lines.get(lines.size() - 1)).isEqualTo("resync: done, the peer is up to date (state PRIMARY)");
    assertThat(err.toString()).isEmpty();
  }

  @Test
  void resyncThatEndsWithThePeerGoneIsAFailure() throws Exception {
    handlers.operation("resync", () -> "resync started");
    status.set(() -> StatusDocuments.of("alpha", new ReplicationStatus(NodeState.ALONE, ReplicationMode.SYNC,
        Optional.of("10.0.0.2:7400"), false, true, Optional.of("peer lost during resync"), 1, 4096, 5, 5, 0, 0,
        Optional.empty())).build());
    start();

    assertThat(verb("resync")).isEqualTo(ExitCodes.FAILURE);
    assertThat(errLines()).containsExactly("replicator: resync ended with the peer disconnected: peer lost during resync");
  }

  @Test
  void verifyFollowsTheProgressAndPrintsTheResult() throws Exception {
    long total = 8L << 20;
    AtomicReference<Long> startedAt = new AtomicReference<>();
    handlers.operation("verify", () -> {
      startedAt.set(System.nanoTime());
      return "verify started";
    });
    status.set(() -> {
      Long since = startedAt.get();
      if (since == null) {
        return StatusDocuments.of("alpha", primaryInSync()).build();
      }
      long elapsedMillis = (System.nanoTime() - since) / 1_000_000;
      if (elapsedMillis >= 2500) {
        return withVerify(StatusDocument.Verify.newBuilder().setResult("verify: identical")
            .setFindings(VerifyFindings.newBuilder().setPathsCompared(12).setBytesCompared(total)));
      }
      return withVerify(StatusDocument.Verify.newBuilder().setRunning(true).setBytesDone(total * elapsedMillis / 2500)
          .setBytesTotal(total).setFilesDone(12 * elapsedMillis / 2500).setFilesTotal(12));
    });
    start();

    assertThat(verb("verify")).as(err.toString()).isZero();

    List<String> lines = out.toString().lines().toList();
    assertThat(lines.get(0)).isEqualTo("verify started");
    assertThat(lines.subList(1, lines.size() - 1)).hasSizeBetween(1, 3).allSatisfy(line -> assertThat(line)
        .matches("verify: \\d+ of 12 files, [\\d.]+ [KMG]?i?B of 8\\.0 MiB \\([\\d.]+%\\), (rate unknown|[\\d.]+ [KMG]?i?B/s), ETA .+"));
    assertThat(lines.get(lines.size() - 1)).isEqualTo("verify: identical: 12 paths and 8.0 MiB compared");
  }

  @Test
  void verifyThatReturnsWhenDoneAndFoundDifferencesExitsOne() throws Exception {
    handlers.operation("verify", () -> "verify done");
    status.set(() -> withVerify(StatusDocument.Verify.newBuilder().setResult("verify: 2 blocks differ")
        .setFindings(VerifyFindings.newBuilder().setPathsCompared(3).setBytesCompared(4096).setBlocksDiffering(2)
            .setPathsDiffering(1).addExamples("orders/a.log").addExamples("orders/b.log"))));
    start();

    assertThat(verb("verify")).isEqualTo(ExitCodes.FAILURE);

    assertThat(out.toString().lines().toList()).containsExactly("verify done",
        "verify: DIFFERENT: 2 blocks and 1 path differ (orders/a.log, orders/b.log); 3 paths and 4.0 KiB compared;"
            + " they are marked dirty: 'replicator resync' repairs them");
  }

  @Test
  void verifyThatFailedInTheApplicationIsAFailureWithItsReason() throws Exception {
    handlers.operation("verify", () -> "verify done");
    status.set(() -> withVerify(StatusDocument.Verify.newBuilder()
        .setResult("REQUEST_VERIFY failed: peer disconnected")));
    start();

    assertThat(verb("verify")).isEqualTo(ExitCodes.FAILURE);

    assertThat(errLines()).containsExactly("replicator: REQUEST_VERIFY failed: peer disconnected");
  }

  @ParameterizedTest
  @ValueSource(strings = {"agent", "status", "swap", "promote", "demote", "resync", "verify", "demo"})
  void everyCommandHasHelpWithItsExitCodes(String command) {
    assertThat(run(command, "--help")).isZero();
    assertThat(out.toString()).startsWith("Usage: replicator " + command).contains("Exit codes:")
        .contains("  2   usage: bad arguments or a bad configuration file");
  }

  @Test
  void topLevelHelpListsEveryExitCode() {
    assertThat(run("--help")).isZero();
    assertThat(out.toString()).contains("""
        Exit codes:
          0   ok
          1   failure (the operation failed, or verify found differences)
          2   usage: bad arguments or a bad configuration file
          3   agent unreachable: cannot connect to the admin endpoint
          4   peer unreachable: the other node cannot be reached
          5   split brain: refused, it would serve or create a split brain
          6   refused in the node's current state
          7   unauthorized: missing or wrong admin token
        """);
  }
}
