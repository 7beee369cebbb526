package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * DRBD's matrix in file terms: nodes A (primary) and B (secondary) part; each may write alone
 * (B after a promotion); then one of them serves again with the other as its secondary. The
 * outcome follows from the generation ids alone: in sync, incremental in the right direction, or
 * a split brain that is refused, never merged.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SplitBrainMatrixTest {
  @TempDir Path base;

  private static final InetSocketAddress NOWHERE = new InetSocketAddress("127.0.0.1", 1);

  private Path a() {
    return base.resolve("a");
  }

  private Path b() {
    return base.resolve("b");
  }

  /** A and B replicate a common file, then part cleanly. */
  private void common() throws IOException {
    try (ReplicaServer rb = Replicator.replica(b()).listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("B").start();
        ReplicatedFileSystem fa = Replicator.primary(a()).peer(rb.localAddress()).nodeId("A").open()) {
      Files.write(fa.getPath("/common"), "both".getBytes());
      assertThat(fa.status().inSync()).isTrue();
    }
  }

  /** {@code node} serves alone (A as the old primary, B after a promotion) and writes or not. */
  private static void alone(Path root, String node, boolean writes) throws IOException {
    try (ReplicatedFileSystem fs = Replicator.primary(root).peer(NOWHERE).nodeId(node)
        .connectTimeout(Duration.ofMillis(200)).open()) {
      if (writes) {
        Files.write(fs.getPath("/by-" + node), node.getBytes());
      }
    }
  }

  @ParameterizedTest(name = "A wrote {0}, B promoted {1} and wrote {2}, then {3} serves -> {4}")
  @CsvSource({
      "false, false, false, A, in sync",
      "true,  false, false, A, incremental from A",
      "false, true,  false, A, in sync",
      "true,  true,  false, A, incremental from A",
      "false, true,  true,  B, incremental from B",
      "false, true,  true,  A, refused: B is newer",
      "true,  false, false, B, refused: A is newer",
      "true,  true,  true,  A, split brain",
      "true,  true,  true,  B, split brain",
  })
  void generationIdsDecideTheOutcome(boolean aWrote, boolean bPromoted, boolean bWrote, String serves,
      String expected) throws Exception {
    common();
    if (aWrote) {
      alone(a(), "A", true);
    }
    if (bPromoted) {
      alone(b(), "B", bWrote);
    }
    Path primaryRoot = serves.equals("A") ? a() : b();
    Path secondaryRoot = serves.equals("A") ? b() : a();
    String secondaryId = serves.equals("A") ? "B" : "A";
    try (ReplicaServer secondary = Replicator.replica(secondaryRoot).listen(new InetSocketAddress("127.0.0.1", 0))
            .nodeId(secondaryId).start();
        ReplicatedFileSystem primary = Replicator.primary(primaryRoot).peer(secondary.localAddress()).nodeId(serves)
            .connectTimeout(Duration.ofSeconds(2)).open()) {
      if (expected.equals("in sync") || expected.startsWith("incremental")) {
        await().atMost(Duration.ofSeconds(20)).until(() -> primary.status().inSync());
        assertThat(TreeDiff.compare(primaryRoot, secondaryRoot)).isEmpty();
        if (expected.equals("in sync")) {
          assertThat(primary.status().generation()).isEqualTo(secondary.status().generation());
        }
      } else {
        await().atMost(Duration.ofSeconds(10)).until(() -> primary.status().problem().isPresent());
        String problem = primary.status().problem().get();
        assertThat(problem).contains(expected.equals("split brain") ? "split brain" : "newer data");
        assertThat(primary.status().peerConnected()).isFalse();
        assertThat(secondary.status().state()).isEqualTo(NodeState.WAIT);
        if (wroteAlone(serves, aWrote, bWrote)) {
          assertThat(Files.exists(secondaryRoot.resolve("by-" + serves)))
              .as("nothing of the refused primary's writes reached the secondary").isFalse();
        }
      }
    }
  }

  private static boolean wroteAlone(String node, boolean aWrote, boolean bWrote) {
    return node.equals("A") ? aWrote : bWrote;
  }

  @Test
  void splitBrainPolicyDiscardsTheSideWithFewerChanges() throws Exception {
    common();
    try (ReplicatedFileSystem fa = Replicator.primary(a()).peer(NOWHERE).nodeId("A")
        .connectTimeout(Duration.ofMillis(200)).open()) {
      Files.write(fa.getPath("/many"), new byte[200_000]);
    }
    alone(b(), "B", true);
    try (ReplicaServer secondary = Replicator.replica(b()).listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("B")
            .splitBrainPolicy(SplitBrainPolicy.DISCARD_LEAST_CHANGES).start();
        ReplicatedFileSystem primary = Replicator.primary(a()).peer(secondary.localAddress()).nodeId("A")
            .splitBrainPolicy(SplitBrainPolicy.DISCARD_LEAST_CHANGES).open()) {
      await().atMost(Duration.ofSeconds(20)).until(() -> primary.status().inSync());
      assertThat(TreeDiff.compare(a(), b())).isEmpty();
      assertThat(Files.exists(b().resolve("by-B"))).as("the side with fewer changes was discarded").isFalse();
    }
  }

  @Test
  void splitBrainPolicyDiscardsTheYoungerPrimary() throws Exception {
    common();
    alone(a(), "A", true);
    // B becomes primary later than A did (in a later millisecond): it is the younger primary
    long aBecamePrimary = System.currentTimeMillis();
    await().atMost(Duration.ofSeconds(1)).until(() -> System.currentTimeMillis() > aBecamePrimary);
    alone(b(), "B", true);
    try (ReplicaServer secondary = Replicator.replica(b()).listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("B")
            .splitBrainPolicy(SplitBrainPolicy.DISCARD_YOUNGER_PRIMARY).start();
        ReplicatedFileSystem primary = Replicator.primary(a()).peer(secondary.localAddress()).nodeId("A")
            .splitBrainPolicy(SplitBrainPolicy.DISCARD_YOUNGER_PRIMARY).open()) {
      await().atMost(Duration.ofSeconds(20)).until(() -> primary.status().inSync());
      assertThat(TreeDiff.compare(a(), b())).isEmpty();
      assertThat(Files.exists(b().resolve("by-B"))).as("the younger primary's writes were discarded").isFalse();
      assertThat(Files.readString(b().resolve("by-A"))).isEqualTo("A");
    }
  }
}
