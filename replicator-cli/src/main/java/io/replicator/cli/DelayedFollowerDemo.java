package io.replicator.cli;

import io.replicator.DelayedFollower;
import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.Replicator;
import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The demo's undo step: a pair and a delayed follower on loopback; the application deletes a
 * directory by mistake, the pair copies the mistake at once, and the operator pauses the delayed
 * follower, applies its log up to just before the delete and copies the files back.
 */
final class DelayedFollowerDemo {
  private static final Duration DELAY = Duration.ofMinutes(5);
  private static final Duration WAIT = Duration.ofSeconds(60);

  private final PrintWriter out;
  private final Path work;

  DelayedFollowerDemo(PrintWriter out, Path work) {
    this.out = out;
    this.work = work;
  }

  /** Runs the step and says what it saw; true when every deleted file came back byte for byte. */
  boolean run() throws IOException, InterruptedException {
    out.printf("Undoing a mistake with a delayed follower (delay %d min, on loopback)%n", DELAY.toMinutes());
    Path primaryRoot = work.resolve("primary");
    Path followerRoot = work.resolve("delayed-follower");
    try (ReplicaServer secondary = Replicator.replica(work.resolve("secondary"))
            .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("demo-secondary").start();
        ReplicaServer follower = Replicator.replica(followerRoot)
            .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("demo-delayed")
            .delayed(DELAY, 256L << 20).start();
        ReplicatedFileSystem fs = Replicator.primary(primaryRoot)
            .peer(secondary.localAddress()).nodeId("demo-primary")
            .follower("undo", follower.localAddress(), ReplicationMode.ASYNC).open()) {
      DelayedFollower undo = follower.delayed().orElseThrow();
      Map<String, byte[]> files = new LinkedHashMap<>();
      Random rnd = new Random(42);
      for (int i = 0; i < 40; i++) {
        String name = "projects/p" + (i % 4) + "/file-" + i + ".dat";
        byte[] data = new byte[1024 + rnd.nextInt(64 * 1024)];
        rnd.nextBytes(data);
        Files.createDirectories(fs.getPath("/" + name).getParent());
        Files.write(fs.getPath("/" + name), data);
        files.put(name, data);
      }
      if (!waitFor(() -> fs.followers().get("undo").inSync())) {
        out.println("  FAIL: the delayed follower did not receive the changes");
        return false;
      }
      out.printf("  wrote %d files under /projects; the delayed follower logged them, applied none yet (%d in its log)%n",
          files.size(), undo.status().backlogChanges());

      // the log keeps receive times in milliseconds: the mistake starts on a millisecond of its own
      long before = System.currentTimeMillis();
      while (System.currentTimeMillis() <= before) {
        Thread.onSpinWait();
      }
      Instant mistake = Instant.ofEpochMilli(before + 1);
      try (Stream<Path> all = Files.walk(fs.getPath("/projects"))) {
        for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
      out.printf("  %s  the application deletes /projects by mistake; the secondary has it deleted too: %s%n",
          mistake, !Files.exists(work.resolve("secondary/projects")));

      undo.pause();
      waitFor(() -> fs.followers().get("undo").inSync());
      List<DelayedFollower.LoggedChange> since = undo.log(mistake, 5);
      out.println("  operator: replicator follower pause; replicator follower log --since " + mistake);
      for (DelayedFollower.LoggedChange c : since) {
        out.printf("    %s  %-7s %s%n", c.received(), c.kind(), c.path());
      }
      undo.applyUntil(mistake);
      out.println("  operator: replicator follower apply-until " + mistake);
      if (!waitFor(() -> undo.status().appliedUpTo().isPresent()
          && Files.exists(followerRoot.resolve("projects/p3")) && appliedBefore(undo, mistake))) {
        out.println("  FAIL: the delayed follower did not apply up to the mistake");
        return false;
      }
      int same = 0;
      for (Map.Entry<String, byte[]> e : files.entrySet()) {
        Path saved = followerRoot.resolve(e.getKey());
        if (Files.exists(saved) && java.util.Arrays.equals(Files.readAllBytes(saved), e.getValue())) {
          same++;
          Files.createDirectories(fs.getPath("/" + e.getKey()).getParent());
          Files.write(fs.getPath("/" + e.getKey()), Files.readAllBytes(saved));
        }
      }
      out.printf("  the follower's tree holds %d of %d deleted files byte for byte; copied back through the primary%n",
          same, files.size());
      boolean pairEqual = waitFor(() -> fs.status().inSync());
      fs.close();
      List<String> diff = TreeDiff.compare(primaryRoot, work.resolve("secondary"));
      out.printf("  the pair holds /projects again, secondary equal to primary: %s%n", pairEqual && diff.isEmpty());
      return same == files.size() && pairEqual && diff.isEmpty();
    }
  }

  private static boolean appliedBefore(DelayedFollower undo, Instant mistake) throws IOException {
    return undo.log(Instant.EPOCH, 10_000).stream()
        .filter(c -> c.received().toEpochMilli() < mistake.toEpochMilli())
        .allMatch(DelayedFollower.LoggedChange::applied);
  }

  private interface Check {
    boolean holds() throws IOException;
  }

  private static boolean waitFor(Check condition) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      try {
        if (condition.holds()) {
          return true;
        }
      } catch (IOException e) {
        // not there yet
      }
      Thread.sleep(20);
    }
    return false;
  }
}
