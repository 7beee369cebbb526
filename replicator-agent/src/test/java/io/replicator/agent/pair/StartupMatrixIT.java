package io.replicator.agent.pair;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * How a pair of real agent processes starts, without a witness and with one, with the tuned timers
 * (100 ms heartbeat, 600 ms peer timeout) and JVMs that start as slowly as the machine makes
 * them: fresh pairs started at the same instant and staggered end with exactly one primary; a
 * node started alone waits and says why; a pair whose secrets differ never promotes; after a
 * degraded pair stops, only its last primary may start alone and its old secondary waits.
 */
@Timeout(value = 12, unit = TimeUnit.MINUTES)
class StartupMatrixIT {
  static final int STARTS = Integer.getInteger("replicator.startup.starts", 10);
  static final Duration SETTLE = Duration.ofSeconds(40);
  @TempDir Path dir;
  private final List<PairProcesses> pairs = new ArrayList<>();

  @AfterEach
  void tearDown() {
    pairs.forEach(PairProcesses::close);
  }

  private PairProcesses pair(String name, boolean witness) throws Exception {
    PairProcesses p = new PairProcesses(Files.createDirectories(dir.resolve(name)), witness, "100ms", "600ms");
    pairs.add(p);
    return p;
  }

  @ParameterizedTest(name = "witness: {0}")
  @ValueSource(booleans = {false, true})
  void freshPairsStartedTogetherOrStaggeredEndWithExactlyOnePrimary(boolean witness) throws Exception {
    List<Long> millis = new ArrayList<>();
    for (int start = 1; start <= STARTS + 2; start++) {
      boolean staggered = start > STARTS;
      PairProcesses p = pair((staggered ? "staggered-" : "together-") + start, witness).withoutApplication()
          .quickStarting();
      long t0 = System.nanoTime();
      if (witness) {
        p.startWitness();
      }
      String first = start % 2 == 0 ? "alpha" : "beta";
      p.startAgent(first);
      if (staggered) {
        // the second node starts once the first has been listening alone for a few peer timeouts
        p.awaitOrDump(first + " listening", Duration.ofSeconds(30), () -> !p.status(first).isEmpty());
        await().pollDelay(Duration.ofSeconds(2)).until(() -> true);
      }
      p.startAgent(first.equals("alpha") ? "beta" : "alpha");
      awaitOnePrimary(p, "start " + start);
      millis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
      p.close();
      pairs.remove(p);
    }
    System.out.printf("witness %s: %d fresh pairs started together and 2 staggered, each with exactly one primary;"
        + " ms from start to one primary and one secondary: %s%n", witness, STARTS, millis);
  }

  /** Exactly one primary and one secondary, never two primaries on the way, and still so a while later. */
  private static void awaitOnePrimary(PairProcesses p, String what) {
    p.awaitOrDump(what + ": one primary and one secondary", SETTLE, () -> {
      String a = p.agentRole("alpha");
      String b = p.agentRole("beta");
      assertThat(a.equals("PRIMARY") && b.equals("PRIMARY")).as("%s: two primaries", what).isFalse();
      return a.equals("PRIMARY") && b.equals("SECONDARY") || a.equals("SECONDARY") && b.equals("PRIMARY");
    });
    await().during(Duration.ofMillis(1200)).atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(50))
        .until(() -> {
          String a = p.agentRole("alpha");
          String b = p.agentRole("beta");
          return a.equals("PRIMARY") != b.equals("PRIMARY") && !a.isEmpty() && !b.isEmpty();
        });
  }

  @ParameterizedTest(name = "witness: {0}")
  @ValueSource(booleans = {false, true})
  void aNodeStartedAloneWaitsAndSaysWhy(boolean witness) throws Exception {
    PairProcesses p = pair("alone", witness).withoutApplication().quickStarting();
    if (witness) {
      p.startWitness();
    }
    p.startAgent("alpha");
    String expected = witness ? "waiting for the witness's vote" : "this node has never met it";
    p.awaitOrDump("alpha waiting and saying why", SETTLE,
        () -> p.statusDocument("alpha").getProblem().contains(expected));
    assertThat(p.statusDocument("alpha").getProblem()).startsWith("waiting for beta");
    await().failFast("a node alone promoted itself", () -> p.agentRole("alpha").equals("PRIMARY"))
        .during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(6)).pollInterval(Duration.ofMillis(100))
        .until(() -> true);
  }

  @ParameterizedTest(name = "witness: {0}")
  @ValueSource(booleans = {false, true})
  void aPairWhoseSecretsDifferNeverPromotesAndSaysWhy(boolean witness) throws Exception {
    PairProcesses p = pair("secrets", witness).withoutApplication().quickStarting().ownSecret("beta");
    if (witness) {
      p.startWitness();
    }
    p.startAgent("alpha");
    p.startAgent("beta");
    for (String n : PairProcesses.NODES) {
      p.awaitOrDump(n + " reporting the refused link", SETTLE,
          () -> p.statusDocument(n).getProblem().contains("the secret does not match"));
    }
    await().failFast("a refused link made a primary",
            () -> p.agentRole("alpha").equals("PRIMARY") || p.agentRole("beta").equals("PRIMARY"))
        .during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(6)).pollInterval(Duration.ofMillis(100))
        .until(() -> true);
  }

  @ParameterizedTest(name = "witness: {0}")
  @ValueSource(booleans = {false, true})
  void onlyTheLastPrimaryOfADegradedPairStartsAloneAndItsOldSecondaryWaits(boolean witness) throws Exception {
    PairProcesses p = pair("degraded", witness);
    if (witness) {
      p.startWitness();
    }
    p.startAgent("alpha");
    p.startAgent("beta");
    p.awaitOrDump("a primary writing and in sync", SETTLE, () -> PairProcesses.NODES.stream()
        .anyMatch(n -> p.agentRole(n).equals("PRIMARY") && p.inSync(n) && p.ackCount(n) > 20));
    String primary = p.agentRole("alpha").equals("PRIMARY") ? "alpha" : "beta";
    String secondary = primary.equals("alpha") ? "beta" : "alpha";
    // the pair degrades: the secondary dies and the primary writes without it
    p.killNode(secondary);
    long before = p.ackCount(primary);
    p.awaitOrDump(primary + " writing alone", SETTLE, () -> p.ackCount(primary) > before + 20);
    p.killNode(primary);
    // the old secondary alone must not serve: it lacks what the primary wrote since
    p.startAgent(secondary);
    p.awaitOrDump(secondary + " waiting and saying why", SETTLE,
        () -> p.statusDocument(secondary).getProblem().startsWith("waiting for " + primary));
    await().failFast("the outdated secondary promoted itself", () -> p.agentRole(secondary).equals("PRIMARY"))
        .during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(6)).pollInterval(Duration.ofMillis(100))
        .until(() -> true);
    p.killNode(secondary);
    // the last primary alone may: its record proves it holds the newest data (or the witness knows)
    p.startAgent(primary);
    long acked = p.ackCount(primary);
    p.awaitOrDump(primary + " primary again and writing", SETTLE,
        () -> p.agentRole(primary).equals("PRIMARY") && p.ackCount(primary) > acked + 10);
    p.startAgent(secondary);
    p.awaitOrDump(secondary + " back as secondary, in sync", Duration.ofSeconds(60),
        () -> p.agentRole(secondary).equals("SECONDARY") && p.inSync(primary));
    assertThat(p.missingOn(primary).cardinality()).as("acknowledged records missing").isZero();
  }
}
