package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.cluster.LoopbackPorts;
import io.replicator.testing.LogCapture;
import io.replicator.testing.ReplicaPair;
import io.replicator.testing.TcpProxy;
import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A pair with followers, in one JVM over real sockets: every follower converges byte for byte,
 * one that was away or slow catches up with what it missed only, it never holds the pair's writes,
 * and after a failover it follows the new primary without a full copy.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FollowersTest {
  private static final Duration CONVERGE = Duration.ofSeconds(60);
  private static final int BIG = 16 << 20;

  @TempDir Path base;
  /** This test's own cluster: a node of another test reaching a reused port is refused at the handshake. */
  private final String cluster = "followers-" + java.util.UUID.randomUUID();
  private ReplicaPair pair;
  private ReplicaServer follower;
  private TcpProxy proxy;
  private ReplicatedFileSystem promoted;

  @AfterEach
  void close() throws IOException {
    try {
      if (promoted != null) {
        promoted.close();
      }
      if (pair != null) {
        pair.close();
      }
    } finally {
      if (proxy != null) {
        proxy.close();
      }
      if (follower != null) {
        follower.close();
      }
    }
  }

  private Path followerRoot() {
    return base.resolve("follower");
  }

  private InetSocketAddress startFollower(boolean viaProxy) throws IOException {
    follower = Replicator.replica(followerRoot())
        .clusterName(cluster)
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("test-follower")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
        .asFollower()
        .start();
    if (!viaProxy) {
      return follower.localAddress();
    }
    proxy = new TcpProxy(follower.localAddress());
    return proxy.address();
  }

  private void awaitFollowerHolds(ReplicatedFileSystem fs, Path source) {
    await().atMost(CONVERGE).pollInterval(Duration.ofMillis(50)).untilAsserted(() -> {
      assertThat(fs.followers().get("dr").inSync()).as("%s", fs.followers()).isTrue();
      assertThat(TreeDiff.compare(source, followerRoot())).isEmpty();
    });
  }

  @Test
  void asyncFollowerConvergesByteForByteUnderTheTortureWorkload() throws Exception {
    InetSocketAddress dr = startFollower(false);
    pair = ReplicaPair.start(base, false, cluster);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.follower("dr", dr, ReplicationMode.ASYNC));

    RandomWorkload.run(fs, 4, 300, 11);

    assertThat(pair.differences()).as(pair.describe()).isEmpty();
    awaitFollowerHolds(fs, pair.primaryRoot);
    assertThat(fs.status().inSync()).isTrue();
  }

  @Test
  void syncFollowerHoldsEveryAcknowledgedWriteWhenItReturns() throws Exception {
    InetSocketAddress dr = startFollower(false);
    pair = ReplicaPair.start(base, false, cluster);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.follower("dr", dr, ReplicationMode.SYNC));
    Random rnd = new Random(3);
    try (FileChannel ch = FileChannel.open(fs.getPath("/both.dat"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      for (int i = 0; i < 200; i++) {
        byte[] data = new byte[1 + rnd.nextInt(8192)];
        rnd.nextBytes(data);
        long pos = rnd.nextInt(1 << 20);
        ch.write(ByteBuffer.wrap(data), pos);
        // no waiting: a SYNC follower counts before the write returns
        assertThat(read(followerRoot().resolve("both.dat"), pos, data.length)).as("write %d", i).isEqualTo(data);
      }
    }
  }

  @Test
  void followerThatWasAwayGetsOnlyWhatItMissedAndNeverHeldWrites() throws Exception {
    InetSocketAddress dr = startFollower(true);
    pair = ReplicaPair.start(base, false, cluster);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.follower("dr", dr, ReplicationMode.ASYNC));
    Path big = fs.getPath("/big.dat");
    writeRandom(big, BIG, 1);
    awaitFollowerHolds(fs, pair.primaryRoot);

    proxy.refuse(true);
    await().atMost(CONVERGE).until(() -> !fs.followers().get("dr").peerConnected());
    Random rnd = new Random(2);
    try (FileChannel ch = FileChannel.open(big, StandardOpenOption.WRITE)) {
      for (int i = 0; i < 16; i++) {
        byte[] block = new byte[4096];
        rnd.nextBytes(block);
        ch.write(ByteBuffer.wrap(block), (long) rnd.nextInt(BIG / 4096) * 4096);
        ch.force(false); // a force waits for the secondary only
      }
    }
    Files.writeString(fs.getPath("/while-away.txt"), "made while the follower was away");
    assertThat(pair.differences()).isEmpty();
    assertThat(fs.status().inSync()).as("the pair never waited for the follower").isTrue();
    ReplicationStatus away = fs.followers().get("dr");
    assertThat(away.peerOutOfDate()).isTrue();
    assertThat(away.dirtyBytes()).isPositive().isLessThan(1 << 20);

    long before = proxy.upstreamBytes();
    proxy.refuse(false);
    awaitFollowerHolds(fs, pair.primaryRoot);
    long sent = proxy.upstreamBytes() - before;
    assertThat(sent).as("bytes sent to catch up, of a %d-byte tree", BIG).isLessThan(2L << 20);
  }

  @Test
  void slowAsyncFollowerFallsBackToItsBitmapInsteadOfHoldingWrites() throws Exception {
    InetSocketAddress dr = startFollower(true);
    proxy.bandwidth(128 * 1024);
    pair = ReplicaPair.start(base, false, cluster);
    // no spill: a full window falls back at once
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
        b -> b.window(1 << 20, 256).followerSpill(0).follower("dr", dr, ReplicationMode.ASYNC));
    long total = 8L << 20;
    writeBurst(fs, total, 4);
    // had the follower's window held the writes, nearly all of them would have crossed the capped
    // link before the last one returned
    assertThat(proxy.upstreamBytes()).as("bytes the follower got while the writes ran").isLessThan(total * 3 / 4);
    assertThat(pair.differences()).isEmpty();

    proxy.heal();
    awaitFollowerHolds(fs, pair.primaryRoot);
  }

  @Test
  void burstOnASlowLinkIsAbsorbedByTheSpillAndTheFollowerConvergesWithoutAResync() throws Exception {
    try (LogCapture logs = LogCapture.start()) {
      InetSocketAddress dr = startFollower(true);
      pair = ReplicaPair.start(base, false, cluster);
      ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
          b -> b.window(1 << 20, 256).followerSpill(64L << 20).follower("dr", dr, ReplicationMode.ASYNC));
      Files.writeString(fs.getPath("/before.txt"), "before the burst");
      awaitFollowerHolds(fs, pair.primaryRoot);
      long generation = fs.followers().get("dr").generation();

      proxy.bandwidth(2L << 20);
      long before = proxy.upstreamBytes();
      long total = 8L << 20;
      writeBurst(fs, total, 6);
      Files.writeString(fs.getPath("/after.txt"), "after the burst");
      // the writes did not wait for the capped link: most of the burst was still to cross it
      assertThat(proxy.upstreamBytes() - before).as("bytes the follower got while the writes ran")
          .isLessThan(total * 3 / 4);
      assertThat(fs.followers().get("dr").inSync()).as("%s", fs.followers().get("dr")).isFalse();

      awaitFollowerHolds(fs, pair.primaryRoot);
      ReplicationStatus dr2 = fs.followers().get("dr");
      assertThat(dr2.peerOutOfDate()).isFalse();
      assertThat(dr2.generation()).as("no new generation: the follower never missed a change").isEqualTo(generation);
      assertThat(dr2.problem()).isEmpty();
      assertThat(logs.lines()).anyMatch(l -> l.contains("spilling its changes"));
      assertThat(logs.lines()).noneMatch(l -> l.contains("falls back to its dirty bitmap"));
      assertThat(logs.lines().stream().filter(l -> l.contains("connected to peer test-follower")).count())
          .as("connections to the follower (a second one would be a resync)").isEqualTo(1);
      assertThat(proxy.upstreamBytes() - before).as("bytes sent for the burst").isLessThan(total + (1L << 20));
      assertThat(pair.differences()).isEmpty();
    }
  }

  @Test
  void burstLargerThanTheSpillStillFallsBackToTheBitmapAndConverges() throws Exception {
    try (LogCapture logs = LogCapture.start()) {
      InetSocketAddress dr = startFollower(true);
      proxy.bandwidth(128 * 1024);
      pair = ReplicaPair.start(base, false, cluster);
      ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
          b -> b.window(1 << 20, 256).followerSpill(2L << 20).follower("dr", dr, ReplicationMode.ASYNC));
      long total = 8L << 20;
      writeBurst(fs, total, 7);
      assertThat(proxy.upstreamBytes()).as("bytes the follower got while the writes ran").isLessThan(total * 3 / 4);
      assertThat(pair.differences()).isEmpty();
      assertThat(logs.lines()).anyMatch(l -> l.contains("spill of 2097152 bytes is full"));

      proxy.heal();
      awaitFollowerHolds(fs, pair.primaryRoot);
      try (var files = Files.list(pair.primaryRoot.resolve(".replicator/followers/dr/spill"))) {
        assertThat(files.count()).as("spill files left").isLessThanOrEqualTo(1);
      }
    }
  }

  private static void writeBurst(ReplicatedFileSystem fs, long total, long seed) throws IOException {
    Random rnd = new Random(seed);
    try (FileChannel ch = FileChannel.open(fs.getPath("/burst.dat"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      byte[] chunk = new byte[64 * 1024];
      for (long pos = 0; pos < total; pos += chunk.length) {
        rnd.nextBytes(chunk);
        ch.write(ByteBuffer.wrap(chunk), pos);
      }
      ch.force(false);
    }
  }

  @Test
  void afterFailoverTheFollowerContinuesFromTheNewPrimaryWithAnIncrementalResyncOnly() throws Exception {
    InetSocketAddress dr = startFollower(true);
    pair = ReplicaPair.start(base, false, cluster);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.follower("dr", dr, ReplicationMode.ASYNC));
    writeRandom(fs.getPath("/big.dat"), BIG, 5);
    Files.createDirectories(fs.getPath("/docs"));
    for (int i = 0; i < 50; i++) {
      Files.writeString(fs.getPath("/docs/" + i + ".txt"), "document " + i);
    }
    awaitFollowerHolds(fs, pair.primaryRoot);
    assertThat(pair.differences()).isEmpty();

    // the primary hands over (its last marks say where every copy stands), the secondary takes over
    fs.close();
    awaitRecordsCanAnswer();
    pair.stopReplica();
    long before = proxy.upstreamBytes();
    try (LogCapture log = LogCapture.start()) {
      promoted = promote(dr);
      try (FileChannel ch = FileChannel.open(promoted.getPath("/big.dat"), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(new byte[4096]), 4096 * 100);
      }
      Files.delete(promoted.getPath("/docs/7.txt"));

      awaitFollowerHolds(promoted, pair.replicaRoot);
      // the generation ids and the secondary's record decide: the bitmap, never a comparison of everything
      assertThat(log.lines()).anyMatch(l -> l.contains("incremental resync to test-follower started"));
      assertThat(log.lines()).noneMatch(l -> l.contains("full resync to test-follower"));
    }
    long sent = proxy.upstreamBytes() - before;
    assertThat(sent).as("bytes the new primary sent the follower, of a %d-byte tree", BIG).isLessThan(256L << 10);
  }

  @Test
  void followerThatReceivedWritesTheSecondaryNeverGotIsBroughtBackToTheNewPrimary() throws Exception {
    InetSocketAddress dr = startFollower(false);
    pair = ReplicaPair.start(base, true, cluster);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.follower("dr", dr, ReplicationMode.ASYNC));
    Files.createDirectories(fs.getPath("/docs"));
    for (int i = 0; i < 20; i++) {
      Files.writeString(fs.getPath("/docs/" + i + ".txt"), "document " + i);
    }
    awaitFollowerHolds(fs, pair.primaryRoot);
    // both replicas learned where the other stands from the primary's marks
    awaitRecordsCanAnswer();

    // the secondary stops hearing the primary, which goes on alone: only the follower gets these
    pair.proxy().partition(true);
    Files.writeString(fs.getPath("/docs/3.txt"), "written after the secondary was cut off");
    Files.writeString(fs.getPath("/only-on-the-old-primary.txt"), "never acknowledged by the secondary");
    await().atMost(CONVERGE).untilAsserted(() ->
        assertThat(followerRoot().resolve("only-on-the-old-primary.txt")).exists());
    fs.close();
    pair.stopReplica();
    pair.proxy().partition(false);

    // the secondary is made primary (by hand: it is behind): the follower must end as its copy
    try (LogCapture log = LogCapture.start()) {
      promoted = promote(dr);
      awaitFollowerHolds(promoted, pair.replicaRoot);
      assertThat(Files.readString(followerRoot().resolve("docs/3.txt"))).isEqualTo("document 3");
      assertThat(followerRoot().resolve("only-on-the-old-primary.txt")).doesNotExist();
      assertThat(log.lines()).anyMatch(l -> l.contains("incremental resync to test-follower started"));
    }
  }

  @Test
  void followerPromotedByHandServesWhatItHoldsAndAReturningPairNodeIsRefusedUntilItDiscards() throws Exception {
    InetSocketAddress dr = startFollower(false);
    try (ReplicaServer second = Replicator.replica(base.resolve("follower2"))
        .clusterName(cluster)
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("test-follower2")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
        .asFollower()
        .start()) {
      pair = ReplicaPair.start(base, false, cluster);
      ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b
          .follower("dr", dr, ReplicationMode.ASYNC)
          .follower("dr2", second.localAddress(), ReplicationMode.ASYNC));
      Files.createDirectories(fs.getPath("/docs"));
      for (int i = 0; i < 20; i++) {
        Files.writeString(fs.getPath("/docs/" + i + ".txt"), "document " + i);
      }
      awaitFollowerHolds(fs, pair.primaryRoot);
      await().atMost(CONVERGE).untilAsserted(() -> {
        assertThat(fs.followers().get("dr2").inSync()).isTrue();
        assertThat(TreeDiff.compare(pair.primaryRoot, base.resolve("follower2"))).isEmpty();
      });

      // both pair nodes are gone; the operator stops the follower and opens its tree as primary
      fs.close();
      pair.stopReplica();
      follower.close();
      follower = null;
      pair.startReplica();
      Files.writeString(pair.replicaRoot.resolve("docs/0.txt"), "the old secondary's own change");
      try (LogCapture log = LogCapture.start()) {
        promoted = Replicator.primary(followerRoot())
            .clusterName(cluster)
            .peer(pair.replica().localAddress())
            .nodeId("test-follower")
            .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
            .connectTimeout(Duration.ofMillis(500))
            .follower("dr2", second.localAddress(), ReplicationMode.ASYNC)
            .open();
        Files.writeString(promoted.getPath("/docs/after.txt"), "written after the promotion");

        // its generation ids share no history with the old pair's: refused, nothing overwritten
        await().atMost(CONVERGE).untilAsserted(() ->
            assertThat(promoted.status().problem()).hasValueSatisfying(p -> assertThat(p).contains("unrelated")));
        assertThat(Files.readString(pair.replicaRoot.resolve("docs/0.txt"))).isEqualTo("the old secondary's own change");
        // the other follower follows it, by checksum: its report is of what the secondary lacked
        await().atMost(CONVERGE).untilAsserted(() -> {
          assertThat(promoted.followers().get("dr2").inSync()).isTrue();
          assertThat(TreeDiff.compare(followerRoot(), base.resolve("follower2"))).isEmpty();
        });
        assertThat(log.lines()).noneMatch(l -> l.contains("incremental resync to test-follower2"));
      }

      // the operator discards the old secondary's data: it becomes a copy of the promoted follower
      pair.stopReplica();
      pair.startReplica(b -> b.discardLocalChanges());
      await().atMost(CONVERGE).untilAsserted(() -> {
        assertThat(promoted.status().inSync()).isTrue();
        assertThat(TreeDiff.compare(followerRoot(), pair.replicaRoot)).isEmpty();
      });
    }
  }

  /**
   * Until both replicas processed what the primary sent last: its final marks may still be on their
   * way (through the proxy, or queued behind the replica's applier) when the test moves on.
   */
  private void awaitRecordsCanAnswer() {
    await().atMost(CONVERGE).untilAsserted(() -> {
      io.replicator.replica.ReplicaNode secondary = (io.replicator.replica.ReplicaNode) pair.replica();
      io.replicator.replica.ReplicaNode dr = (io.replicator.replica.ReplicaNode) follower;
      assertThat(secondary.copiesItCanAnswerFor()).as("the secondary's %s", secondary.describeRecord()).contains("dr");
      assertThat(dr.copiesItCanAnswerFor()).as("the follower's %s", dr.describeRecord()).contains("");
    });
  }

  private ReplicatedFileSystem promote(InetSocketAddress dr) throws IOException {
    int gone = LoopbackPorts.reserve();
    return Replicator.primary(pair.replicaRoot)
        .clusterName(cluster)
        .peer(new InetSocketAddress("127.0.0.1", gone))
        .nodeId("test-replica")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
        .connectTimeout(Duration.ofMillis(200))
        .follower("dr", dr, ReplicationMode.ASYNC)
        .open();
  }

  @Test
  void secondaryDeclaredAsFollowerIsRefusedNotOverwritten() throws Exception {
    pair = ReplicaPair.start(base, false, cluster);
    try (ReplicaServer notAFollower = Replicator.replica(base.resolve("other"))
        .clusterName(cluster)
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("other-secondary")
        .start()) {
      Files.createDirectories(base.resolve("other"));
      Files.writeString(base.resolve("other/keep.txt"), "not to be overwritten");
      ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
          b -> b.follower("dr", notAFollower.localAddress(), ReplicationMode.ASYNC));
      Files.writeString(fs.getPath("/a.txt"), "a");
      await().atMost(CONVERGE).untilAsserted(() ->
          assertThat(fs.followers().get("dr").problem()).hasValueSatisfying(p -> assertThat(p).contains("follower")));
      assertThat(fs.followers().get("dr").peerConnected()).isFalse();
      assertThat(Files.readString(base.resolve("other/keep.txt"))).isEqualTo("not to be overwritten");
      assertThat(Files.exists(base.resolve("other/a.txt"))).isFalse();
      assertThat(fs.status().inSync()).isTrue();
    }
  }

  private static void writeRandom(Path file, int bytes, long seed) throws IOException {
    Random rnd = new Random(seed);
    byte[] chunk = new byte[1 << 20];
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int done = 0; done < bytes; done += chunk.length) {
        rnd.nextBytes(chunk);
        ch.write(ByteBuffer.wrap(chunk));
      }
    }
  }

  private static byte[] read(Path file, long pos, int length) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocate(length);
      while (b.hasRemaining() && ch.read(b, pos + b.position()) > 0) {
        // read to the end of the range
      }
      return b.array();
    }
  }
}
