package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.ReplicaPair;
import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A delayed follower beside the pair, in one JVM over real sockets: it holds every change for the
 * delay, keeps it across a restart, lets the operator stop a mistake before it lands and roll the
 * copy forward to just before it, and falls back to the primary's bitmap when its log is full
 * without ever holding the pair's writes.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DelayedFollowerTest {
  private static final Duration CONVERGE = Duration.ofSeconds(60);

  @TempDir Path base;
  private ReplicaPair pair;
  private ReplicaServer delayed;
  private ReplicaServer async;
  private int delayedPort;

  @AfterEach
  void close() throws IOException {
    try {
      if (pair != null) {
        pair.close();
      }
    } finally {
      if (delayed != null) {
        delayed.close();
      }
      if (async != null) {
        async.close();
      }
    }
  }

  private Path delayedRoot() {
    return base.resolve("delayed");
  }

  private InetSocketAddress startDelayed(Duration delay, long logCapacity) throws IOException {
    delayed = Replicator.replica(delayedRoot())
        .listen(new InetSocketAddress("127.0.0.1", delayedPort))
        .nodeId("test-delayed")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
        .delayed(delay, logCapacity)
        .start();
    delayedPort = delayed.localAddress().getPort();
    return delayed.localAddress();
  }

  private DelayedFollower controls() {
    return delayed.delayed().orElseThrow();
  }

  private ReplicatedFileSystem openWithDelayed(Duration delay, long logCapacity) throws IOException {
    InetSocketAddress d = startDelayed(delay, logCapacity);
    pair = ReplicaPair.start(base, false);
    return pair.openPrimary(ReplicationMode.SYNC, b -> b.follower("undo", d, ReplicationMode.ASYNC));
  }

  private static void awaitReceived(ReplicatedFileSystem fs) {
    await().atMost(CONVERGE).pollInterval(Duration.ofMillis(20))
        .until(() -> fs.followers().get("undo").inSync());
  }

  @Test
  void directoryDeletedByMistakeIsRecoveredFromTheDelayedFollower() throws Exception {
    ReplicatedFileSystem fs = openWithDelayed(Duration.ofMinutes(10), 64L << 20);
    Map<String, byte[]> precious = new LinkedHashMap<>();
    Random rnd = new Random(9);
    Path dir = Files.createDirectories(fs.getPath("/precious/sub"));
    for (int i = 0; i < 20; i++) {
      byte[] data = new byte[1 + rnd.nextInt(20_000)];
      rnd.nextBytes(data);
      String name = (i % 2 == 0 ? "precious/" : "precious/sub/") + "f" + i;
      Files.write(fs.getPath("/" + name), data);
      precious.put(name, data);
    }
    Files.writeString(fs.getPath("/other.txt"), "before the mistake");
    awaitReceived(fs);
    assertThat(Files.exists(delayedRoot().resolve("precious"))).as("nothing is applied before the delay").isFalse();

    Instant mistake = nextMillisecond();
    try (Stream<Path> all = Files.walk(dir.getParent())) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
    Files.writeString(fs.getPath("/other.txt"), "after the mistake");
    assertThat(Files.exists(pair.replicaRoot.resolve("precious"))).as("the pair has the mistake").isFalse();

    DelayedFollower undo = controls();
    undo.pause();
    awaitReceived(fs);
    List<DelayedFollower.LoggedChange> since = undo.log(mistake, 1000);
    assertThat(since).as("the log shows the deletes from the mistake on")
        .anySatisfy(c -> {
          assertThat(c.kind()).isEqualTo("delete");
          assertThat(c.path()).isEqualTo("precious");
          assertThat(c.applied()).isFalse();
        });
    undo.applyUntil(mistake);

    await().atMost(CONVERGE).untilAsserted(() -> {
      assertThat(undo.status().appliedUpTo()).isPresent();
      assertThat(undo.log(Instant.EPOCH, 10_000)).filteredOn(c -> c.received().toEpochMilli() < mistake.toEpochMilli())
          .allMatch(DelayedFollower.LoggedChange::applied);
    });
    for (Map.Entry<String, byte[]> e : precious.entrySet()) {
      assertThat(Files.readAllBytes(delayedRoot().resolve(e.getKey()))).as(e.getKey()).isEqualTo(e.getValue());
    }
    assertThat(Files.readString(delayedRoot().resolve("other.txt"))).isEqualTo("before the mistake");
    DelayedFollower.Status held = undo.status();
    assertThat(held.paused()).as("held at the apply-until point").isTrue();
    assertThat(held.backlogChanges()).as("the mistake stays in the log, unapplied").isPositive();
    assertThat(fs.status().inSync()).isTrue();
  }

  /**
   * The start of the next millisecond, once the clock is in it: the log records receive times in
   * milliseconds, so everything received before this point is strictly before it, and everything
   * done after it returns is at or after it.
   */
  private static Instant nextMillisecond() {
    long now = System.currentTimeMillis();
    while (System.currentTimeMillis() <= now) {
      Thread.onSpinWait(); // at most a millisecond
    }
    return Instant.ofEpochMilli(now + 1);
  }

  @Test
  void aChangeIsAppliedOnlyOnceItIsOlderThanTheDelay() throws Exception {
    Duration delay = Duration.ofMillis(1500);
    ReplicatedFileSystem fs = openWithDelayed(delay, 64L << 20);
    Path file = fs.getPath("/v.txt");
    Files.writeString(file, "v1");
    await().atMost(CONVERGE).until(() -> Files.exists(delayedRoot().resolve("v.txt"))
        && Files.readString(delayedRoot().resolve("v.txt")).equals("v1"));

    long written = System.nanoTime();
    Files.writeString(file, "v2");
    await().atMost(CONVERGE).pollInterval(Duration.ofMillis(10))
        .until(() -> Files.readString(delayedRoot().resolve("v.txt")).equals("v2"));
    long seen = System.nanoTime();
    // the follower received the change after it was written, so it may apply it no earlier than
    // the delay after the write; seeing it sooner means it was applied early
    assertThat(Duration.ofNanos(seen - written)).isGreaterThanOrEqualTo(delay);
    assertThat(TreeDiff.compare(pair.primaryRoot, delayedRoot())).isEmpty();
  }

  /**
   * How far the delayed copy may trail "the acknowledged tree as it stood the delay ago". The apply
   * loop ({@code DelayedApply}) sleeps to the exact millisecond a change becomes due ({@code
   * DelaySchedule} WAIT) and is woken by every logged batch, so on an idle machine it trails by a
   * few milliseconds; what remains is the follower's receipt behind the acknowledgement (an ASYNC
   * send, then one fsync per intake batch), the hand-off to the applier thread, and, on a loaded
   * 2-core CI machine, three nodes' threads in one JVM waiting for a core (tens to a few hundred
   * milliseconds). It never excuses applying early: that side is checked exactly.
   */
  private static final Duration TIMELINE_TOLERANCE = Duration.ofMillis(500);
  private static final int TIMELINE_FILES = 3;

  /**
   * Version {@code k} of the timeline is the number {@code k} written in place, at one fixed length,
   * over file {@code k % 3}: one write change each, so a reader sees either the old or the new number.
   */
  private static byte[] version(long k) {
    return String.format("%012d\n", k).getBytes(StandardCharsets.US_ASCII);
  }

  /** The versions the follower's files hold now, or null while one is missing or not whole. */
  private long[] followerVersions() throws IOException {
    long[] v = new long[TIMELINE_FILES];
    for (int i = 0; i < TIMELINE_FILES; i++) {
      byte[] b;
      try {
        b = Files.readAllBytes(delayedRoot().resolve("t" + i));
      } catch (NoSuchFileException e) {
        return null;
      }
      if (b.length != 13 || b[12] != '\n') {
        return null;
      }
      v[i] = Long.parseLong(new String(b, 0, 12, StandardCharsets.US_ASCII));
    }
    return v;
  }

  @Test
  void theDelayedCopyShowsTheAcknowledgedTreeAsItStoodTheDelayAgo() throws Exception {
    Duration delay = Duration.ofSeconds(2);
    long delayMs = delay.toMillis();
    long toleranceMs = TIMELINE_TOLERANCE.toMillis();
    ReplicatedFileSystem fs = openWithDelayed(delay, 64L << 20);
    int max = 20_000;
    // wall times (ms) at which version k's write started and returned (was acknowledged); 0 = not yet
    AtomicLongArray started = new AtomicLongArray(max);
    AtomicLongArray acked = new AtomicLongArray(max);
    AtomicInteger next = new AtomicInteger();
    AtomicReference<Throwable> writerFailed = new AtomicReference<>();
    // versions 0..2 create the files; the timeline is measured from the first in-place write on
    for (int k = 0; k < TIMELINE_FILES; k++) {
      started.set(k, System.currentTimeMillis());
      Files.write(fs.getPath("/t" + k), version(k));
      acked.set(k, System.currentTimeMillis());
      next.set(k + 1);
    }
    await().atMost(CONVERGE).pollInterval(Duration.ofMillis(50)).until(() -> followerVersions() != null);

    ScheduledExecutorService writer = Executors.newSingleThreadScheduledExecutor();
    try {
      writer.scheduleWithFixedDelay(() -> {
        int k = next.get();
        if (k >= max || writerFailed.get() != null) {
          return;
        }
        try {
          started.set(k, System.currentTimeMillis());
          Files.write(fs.getPath("/t" + k % TIMELINE_FILES), version(k), StandardOpenOption.WRITE);
          acked.set(k, System.currentTimeMillis());
          next.set(k + 1);
        } catch (Throwable t) {
          writerFailed.set(t);
        }
      }, 0, 20, TimeUnit.MILLISECONDS);
      // sample once the first in-place version is older than the delay and the tolerance
      await().atMost(CONVERGE).pollInterval(Duration.ofMillis(50)).until(() -> acked.get(TIMELINE_FILES) != 0
          && System.currentTimeMillis() > acked.get(TIMELINE_FILES) + delayMs + toleranceMs);

      List<String> violations = new ArrayList<>();
      List<Long> shown = new ArrayList<>();
      long[] worstLag = {Long.MIN_VALUE};
      await().atMost(CONVERGE).pollInterval(Duration.ofMillis(120)).until(() -> {
        assertThat(writerFailed.get()).as("the writer").isNull();
        long from = System.currentTimeMillis();
        long[] first = followerVersions();
        long[] second = followerVersions();
        long to = System.currentTimeMillis();
        // a file's version only grows, so two equal passes are the tree as it stood at one instant
        // (after the first pass read the last file, before the second pass read the first)
        if (first == null || !Arrays.equals(first, second)) {
          return false;
        }
        int m = (int) Arrays.stream(first).max().orElseThrow();
        for (int i = 0; i < TIMELINE_FILES; i++) {
          if (first[i] != m - Math.floorMod(m - i, TIMELINE_FILES)) {
            violations.add("at " + from + " the follower's files mix versions " + Arrays.toString(first));
          }
        }
        // exact, no tolerance: the delay counts from receipt, which follows the write's start on this same clock
        long startedM = started.get(m);
        if (startedM == 0 || startedM > to - delayMs) {
          violations.add("at " + to + " the follower shows version " + m + " whose write started at " + startedM
              + ", less than " + delay + " before");
        }
        // every version acknowledged by (sample - delay - tolerance) is shown
        long ackedNext = m + 1 < max ? acked.get(m + 1) : 0;
        if (ackedNext != 0) {
          worstLag[0] = Math.max(worstLag[0], from - delayMs - ackedNext);
          if (ackedNext <= from - delayMs - toleranceMs) {
            violations.add("at " + from + " the follower shows version " + m + " though version " + (m + 1)
                + " was acknowledged " + (from - ackedNext) + " ms before");
          }
        }
        shown.add((long) m);
        return shown.size() >= 15;
      });
      assertThat(violations).as("samples of the delayed copy against the acknowledged timeline (worst lag beyond "
          + "the delay %d ms)", worstLag[0]).isEmpty();
      assertThat(shown).as("the copy moves forward with the writes").isSorted();
      assertThat(shown.get(shown.size() - 1)).isGreaterThan(shown.get(0));
    } finally {
      writer.shutdownNow();
      assertThat(writer.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }
  }

  @Test
  void loggedChangesAndAPauseSurviveARestartOfTheFollower() throws Exception {
    Duration delay = Duration.ofSeconds(2);
    ReplicatedFileSystem fs = openWithDelayed(delay, 64L << 20);
    Files.writeString(fs.getPath("/kept.txt"), "logged before the restart");
    awaitReceived(fs);
    controls().pause();
    delayed.close();

    startDelayed(delay, 64L << 20);
    assertThat(controls().status().paused()).as("a pause outlives a restart").isTrue();
    assertThat(controls().status().backlogChanges()).isPositive();
    await().atMost(CONVERGE).until(() -> fs.followers().get("undo").peerConnected());
    Files.writeString(fs.getPath("/after.txt"), "sent after the restart");
    Thread.sleep(delay.toMillis() + 500); // longer than the delay: a paused follower still applies nothing
    assertThat(Files.exists(delayedRoot().resolve("kept.txt"))).isFalse();

    controls().resume();
    await().atMost(CONVERGE).untilAsserted(() ->
        assertThat(TreeDiff.compare(pair.primaryRoot, delayedRoot())).isEmpty());
    assertThat(controls().status().backlogChanges()).isZero();
  }

  @Test
  void fullSpillLogFallsBackToTheBitmapAndNeverHoldsThePair() throws Exception {
    ReplicatedFileSystem fs = openWithDelayed(Duration.ofMinutes(10), 1 << 20);
    Random rnd = new Random(5);
    for (int i = 0; i < 16; i++) {
      byte[] data = new byte[256 * 1024];
      rnd.nextBytes(data);
      Files.write(fs.getPath("/burst-" + i), data);
    }
    assertThat(pair.differences()).isEmpty();
    assertThat(fs.status().inSync()).as("the pair never waited for the follower").isTrue();
    await().atMost(CONVERGE).untilAsserted(() -> {
      assertThat(controls().status().overflowedAt()).isPresent();
      ReplicationStatus follower = fs.followers().get("undo");
      assertThat(follower.peerOutOfDate()).isTrue();
      assertThat(follower.dirtyBytes()).isPositive();
    });
    assertThat(controls().status().logBytes()).isLessThanOrEqualTo(1 << 20);
    Instant overflow = controls().status().overflowedAt().orElseThrow();

    // once what the log holds is applied, the follower takes what it missed from the primary's
    // bitmap at once (current data, not history), and delays changes again after that
    controls().applyUntil(Instant.now());
    await().atMost(CONVERGE).untilAsserted(() ->
        assertThat(TreeDiff.compare(pair.primaryRoot, delayedRoot())).isEmpty());
    await().atMost(CONVERGE).until(() -> fs.followers().get("undo").inSync());
    assertThat(controls().status().overflowedAt()).as("status keeps when it could no longer go back")
        .hasValue(overflow);
    controls().resume();
    Files.writeString(fs.getPath("/later.txt"), "delayed again");
    awaitReceived(fs);
    assertThat(controls().status().backlogChanges()).isPositive();
    assertThat(Files.exists(delayedRoot().resolve("later.txt"))).isFalse();
  }

  @Test
  void asyncAndDelayedFollowersBothConvergeUnderTheTortureWorkload() throws Exception {
    InetSocketAddress d = startDelayed(Duration.ofMillis(500), 256L << 20);
    async = Replicator.replica(base.resolve("async"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("test-async")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
        .asFollower()
        .start();
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b
        .follower("undo", d, ReplicationMode.ASYNC)
        .follower("dr", async.localAddress(), ReplicationMode.ASYNC));

    RandomWorkload.run(fs, 4, 300, 23);

    assertThat(pair.differences()).isEmpty();
    await().atMost(CONVERGE).pollInterval(Duration.ofMillis(100)).untilAsserted(() -> {
      assertThat(TreeDiff.compare(pair.primaryRoot, base.resolve("async"))).isEmpty();
      assertThat(TreeDiff.compare(pair.primaryRoot, delayedRoot())).isEmpty();
    });
    assertThat(fs.followers().values()).allMatch(ReplicationStatus::inSync);
  }

  @Test
  void applyUntilInTheFutureIsRefused() throws Exception {
    openWithDelayed(Duration.ofMinutes(1), 8L << 20);
    assertThatThrownBy(() -> controls().applyUntil(Instant.now().plusSeconds(60)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("future");
  }
}
