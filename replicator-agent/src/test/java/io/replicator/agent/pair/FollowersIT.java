package io.replicator.agent.pair;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.proto.FollowerLink;
import io.replicator.proto.StatusDocument;
import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A pair of agent processes with the torture's random workload and two followers run by their own
 * agents, one ASYNC and one DELAYED: both converge byte for byte with the primary, and after the
 * primary is killed with {@code kill -9} they follow the new primary and converge again.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class FollowersIT {
  private static final Duration STEP = Duration.ofSeconds(90);
  @TempDir Path dir;
  PairProcesses pair;
  private int token;

  @AfterEach
  void tearDown() {
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void followersConvergeAndFollowTheNewPrimaryAfterItsPeerIsKilled() throws Exception {
    pair = new PairProcesses(dir, false, "100ms", "600ms", 17L);
    pair.withFollower("dr", "ASYNC", null);
    pair.withFollower("undo", "DELAYED", "1s");
    pair.startFollower("dr");
    pair.startFollower("undo");
    pair.startAgent("alpha");
    pair.startAgent("beta");
    String primary = awaitPrimary();

    awaitFollowersCaughtUp(primary, "first primary");
    String secondary = primary.equals("alpha") ? "beta" : "alpha";
    pair.killNode(primary);
    pair.awaitOrDump(secondary + " takes over", STEP, () -> pair.agentRole(secondary).equals("PRIMARY")
        && pair.registered(secondary));
    long acks = pair.ackCount(secondary);
    pair.awaitOrDump(secondary + " writing", STEP, () -> pair.ackCount(secondary) > acks + 20);
    pair.startAgent(primary);
    String old = primary;
    pair.awaitOrDump(old + " back as secondary and in sync", STEP,
        () -> pair.agentRole(old).equals("SECONDARY") && pair.inSync(secondary));

    awaitFollowersCaughtUp(secondary, "after the failover");
    assertThat(pair.followerStatus("undo").getFollowerNode().getDelay().getSeconds())
        .as("the delayed follower's agent reports its delay").isEqualTo(1);
  }

  /**
   * Pauses the primary's writer, waits for both followers to hold its tree (the delayed one once
   * the delay has passed), then lets it write again.
   */
  private void awaitFollowersCaughtUp(String primary, String when) throws IOException {
    long before = pair.ackCount(primary);
    pair.awaitOrDump("primary " + primary + " writing and its followers connected (" + when + ")", STEP,
        () -> pair.ackCount(primary) > before + 50 && followersConnected(primary));
    pauseWriter(primary);
    try {
      Path root = pair.node(primary).root;
      for (String f : List.of("dr", "undo")) {
        Path copy = pair.follower(f).root;
        pair.awaitOrDump("follower " + f + " equal to " + primary + " (" + when + ")", STEP,
            () -> followersConnected(primary) && equal(root, copy));
      }
    } finally {
      Files.deleteIfExists(pair.node(primary).control.resolve("pause"));
    }
  }

  /** Whether the trees are equal; not yet when a file vanishes under the walk (the follower is still applying). */
  private static boolean equal(Path a, Path b) {
    try {
      return TreeDiff.compare(a, b).isEmpty();
    } catch (IOException e) {
      return false;
    }
  }

  private boolean followersConnected(String primary) {
    StatusDocument doc = pair.statusDocument(primary);
    List<FollowerLink> links = doc.getFollowersList();
    return links.size() == 2 && links.stream().allMatch(l -> l.getReported() && l.getConnected() && !l.getOutOfDate());
  }

  private void pauseWriter(String node) throws IOException {
    PairProcesses.Node n = pair.node(node);
    String t = Integer.toString(++token);
    Files.createDirectories(n.control);
    Files.writeString(n.control.resolve("pause"), t);
    pair.awaitOrDump("the writer on " + node + " to pause", STEP, () -> {
      Path paused = n.control.resolve("paused");
      return Files.exists(paused)
          && Files.readString(paused, StandardCharsets.US_ASCII).trim().split(" ")[0].equals(t);
    });
  }

  private String awaitPrimary() {
    String[] found = new String[1];
    pair.awaitOrDump("a primary", STEP, () -> {
      for (String n : PairProcesses.NODES) {
        if (pair.agentRole(n).equals("PRIMARY") && pair.registered(n)) {
          found[0] = n;
          return true;
        }
      }
      return false;
    });
    return found[0];
  }
}
