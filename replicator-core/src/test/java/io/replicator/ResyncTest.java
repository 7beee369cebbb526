package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A secondary that was away comes back by receiving only what changed, measured on the wire. */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ResyncTest {
  private static final int BLOCK = 4096;
  /** Frame headers, manifest requests, handshakes and heartbeats: generous, but far below the data. */
  private static final long PROTOCOL_OVERHEAD = 256 * 1024;

  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  private static void writeDataSet(ReplicatedFileSystem fs, int files, int mibEach, long seed) throws IOException {
    Random rnd = new Random(seed);
    byte[] mib = new byte[1 << 20];
    Files.createDirectories(fs.getPath("/data"));
    for (int f = 0; f < files; f++) {
      try (FileChannel ch = FileChannel.open(fs.getPath("/data/file-" + f), StandardOpenOption.CREATE,
          StandardOpenOption.WRITE)) {
        for (int m = 0; m < mibEach; m++) {
          rnd.nextBytes(mib);
          ch.write(ByteBuffer.wrap(mib));
        }
      }
    }
  }

  /** Rewrites about 1% of the data set's blocks, scattered; returns the bytes changed. */
  private static long changeOnePercent(ReplicatedFileSystem fs, int files, int mibEach, long seed) throws IOException {
    Random rnd = new Random(seed);
    long blocks = (long) files * mibEach * (1 << 20) / BLOCK;
    long changed = 0;
    byte[] block = new byte[BLOCK];
    java.util.Set<Long> picked = new java.util.HashSet<>();
    while (picked.size() < blocks / 100) {
      picked.add((long) rnd.nextInt((int) blocks));
    }
    for (long b : picked) {
      long perFile = (long) mibEach * (1 << 20) / BLOCK;
      rnd.nextBytes(block);
      try (FileChannel ch = FileChannel.open(fs.getPath("/data/file-" + (b / perFile)), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(block), (b % perFile) * BLOCK);
      }
      changed += BLOCK;
    }
    return changed;
  }

  @Test
  void secondaryAwayAndBackReceivesOnlyTheChangedBlocksAndNamespace() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeDataSet(fs, 8, 8, 1);
    assertThat(fs.status().inSync()).isTrue();

    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    long dirty = changeOnePercent(fs, 8, 8, 2);
    // namespace changes while alone, with small files so their bytes are part of the budget
    Files.write(fs.getPath("/data/new-file"), new byte[10_000]);
    dirty += 10_000;
    Files.createDirectories(fs.getPath("/data/new-dir/inner"));
    Files.write(fs.getPath("/data/new-dir/inner/leaf"), "leaf".getBytes());
    dirty += 4;
    Files.write(fs.getPath("/data/small"), "small file renamed while away".getBytes());
    Files.move(fs.getPath("/data/small"), fs.getPath("/data/small-renamed"));
    dirty += 29;
    Files.setPosixFilePermissions(fs.getPath("/data/file-3"), PosixFilePermissions.fromString("rw-------"));
    try (FileChannel ch = FileChannel.open(fs.getPath("/data/file-7"), StandardOpenOption.WRITE)) {
      ch.truncate(5L << 20);
    }
    Files.delete(fs.getPath("/data/file-6"));
    assertThat(fs.status().dirtyBytes()).as("the bitmap counts the scattered blocks").isGreaterThan(0);

    long before = pair.proxy().upstreamBytes();
    pair.startReplica();
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    long onTheWire = pair.proxy().upstreamBytes() - before;

    assertThat(pair.differences()).as(pair.describe()).isEmpty();
    assertThat(onTheWire).as("bytes that crossed the wire for %d dirty bytes", dirty)
        .isLessThanOrEqualTo((long) (dirty * 1.1) + PROTOCOL_OVERHEAD);
  }

  @Test
  void resyncRunsOnlineWhileTheApplicationWrites() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeDataSet(fs, 4, 8, 3);
    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    changeOnePercent(fs, 4, 8, 4);
    for (int i = 0; i < 50; i++) {
      Files.write(fs.getPath("/data/alone-" + i), new byte[20_000]);
    }
    pair.proxy().delay(2); // slow the link so the resync is still running while the workload writes
    pair.startReplica();
    long seed = System.nanoTime();
    // the workload starts while the resync is under way, and rewrites blocks the resync sends
    Thread rewriter = new Thread(() -> {
      try {
        changeOnePercent(fs, 4, 8, 5);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    rewriter.start();
    RandomWorkload.run(fs, 4, 200, seed);
    rewriter.join(60_000);
    pair.proxy().delay(0);
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("seed %d\n%s", seed, pair.describe()).isEmpty();
  }

  @Test
  void splitBrainIsRefusedNotMergedAndAnExplicitDiscardConverges() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/common"), "both have this".getBytes());
    fs.close();
    pair.stopReplica();

    // the old secondary is promoted and writes
    try (ReplicatedFileSystem promoted = Replicator.primary(pair.replicaRoot)
        .peer(new java.net.InetSocketAddress("127.0.0.1", 1)).nodeId("promoted")
        .connectTimeout(Duration.ofMillis(200)).open()) {
      Files.write(promoted.getPath("/written-by-promoted"), "B".getBytes());
    }
    // the old primary also writes, alone
    try (ReplicatedFileSystem alone = Replicator.primary(pair.primaryRoot)
        .peer(new java.net.InetSocketAddress("127.0.0.1", 1)).nodeId("test-primary")
        .connectTimeout(Duration.ofMillis(200)).open()) {
      Files.write(alone.getPath("/written-by-old-primary"), "A".getBytes());
    }

    pair.startReplica();
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC, b -> b.connectTimeout(Duration.ofSeconds(2)));
    await().atMost(Duration.ofSeconds(10)).until(() -> again.status().problem().isPresent());
    assertThat(again.status().problem().get()).contains("split brain");
    assertThat(again.status().peerConnected()).isFalse();
    assertThat(pair.replica().status().problem()).hasValueSatisfying(p -> assertThat(p).contains("split brain"));
    assertThat(Files.exists(pair.replicaRoot.resolve("written-by-old-primary"))).as("nothing merged").isFalse();

    // the operator discards the secondary's side
    pair.stopReplica();
    pair.startReplica(b -> b.discardLocalChanges());
    await().atMost(Duration.ofSeconds(30)).until(() -> again.status().inSync());
    assertThat(pair.differences()).isEmpty();
    assertThat(Files.exists(pair.replicaRoot.resolve("written-by-promoted"))).isFalse();
    assertThat(Files.readString(pair.replicaRoot.resolve("written-by-old-primary"))).isEqualTo("A");
  }

  @Test
  void promotedSecondaryResyncsTheOldPrimaryIncrementally() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeDataSet(fs, 2, 4, 6);
    fs.close();
    pair.stopReplica();
    // failover: the secondary becomes primary, the old primary comes back as its secondary
    Path newPrimaryRoot = pair.replicaRoot;
    Path newReplicaRoot = pair.primaryRoot;
    try (ReplicaServer back = Replicator.replica(newReplicaRoot).listen(new java.net.InetSocketAddress("127.0.0.1", 0))
            .nodeId("old-primary").start();
        io.replicator.testing.TcpProxy proxy = new io.replicator.testing.TcpProxy(back.localAddress())) {
      proxy.refuse(true);
      try (ReplicatedFileSystem promoted = Replicator.primary(newPrimaryRoot).peer(proxy.address())
          .nodeId("promoted").connectTimeout(Duration.ofMillis(200)).open()) {
        long dirty = changeOnePercent(promoted, 2, 4, 7);
        long before = proxy.upstreamBytes();
        proxy.refuse(false);
        await().atMost(Duration.ofSeconds(30)).until(() -> promoted.status().inSync());
        assertThat(proxy.upstreamBytes() - before).isLessThanOrEqualTo((long) (dirty * 1.1) + PROTOCOL_OVERHEAD);
      }
      assertThat(io.replicator.tools.TreeDiff.compare(newPrimaryRoot, newReplicaRoot)).isEmpty();
    }
  }

  private static void flipBitsInMetadata(Path root) throws IOException {
    for (String slot : new String[] {"node-meta.0", "node-meta.1"}) {
      Path p = root.resolve(".replicator").resolve(slot);
      if (Files.exists(p)) {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
          f.seek(f.length() / 2);
          int b = f.read();
          f.seek(f.length() / 2);
          f.write(b ^ 0x10);
        }
      }
    }
  }

  @Test
  void corruptSecondaryMetadataLeadsToAFullChecksumResync() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeDataSet(fs, 2, 4, 8);
    pair.stopReplica();
    flipBitsInMetadata(pair.replicaRoot);
    // and the secondary's copy silently differs in one block
    try (FileChannel ch = FileChannel.open(pair.replicaRoot.resolve("data/file-1"), StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(new byte[BLOCK]), 3 * BLOCK);
    }
    long before = pair.proxy().upstreamBytes();
    pair.startReplica();
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).isEmpty();
    assertThat(pair.proxy().upstreamBytes() - before).as("only the differing block travels")
        .isLessThanOrEqualTo(BLOCK + PROTOCOL_OVERHEAD);
  }

  @Test
  void corruptPrimaryMetadataIsRefusedUntilTheSecondaryIsDiscarded() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeDataSet(fs, 2, 4, 11);
    fs.close();
    flipBitsInMetadata(pair.primaryRoot);
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC, b -> b.connectTimeout(Duration.ofSeconds(2)));
    // without its history the primary cannot prove it is newer: never a silent overwrite
    await().atMost(Duration.ofSeconds(10)).until(() -> again.status().problem().isPresent()
        && again.status().problem().get().contains("newer data"));
    assertThat(again.status().inSync()).isFalse();
    pair.stopReplica();
    pair.startReplica(b -> b.discardLocalChanges());
    await().atMost(Duration.ofSeconds(60)).until(() -> again.status().inSync());
    assertThat(pair.differences()).isEmpty();
  }

  @Test
  void fullResyncOfAnOlderCopySendsOnlyTheDifferingBlocks() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeDataSet(fs, 1, 32, 9);
    fs.close();
    pair.stopReplica();
    // the replica is a new node holding an older copy: its metadata is gone
    try (var s = Files.walk(pair.replicaRoot.resolve(".replicator"))) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
    ReplicatedFileSystem primary = Replicator.primary(pair.primaryRoot).peer(new java.net.InetSocketAddress("127.0.0.1", 1))
        .nodeId("test-primary").connectTimeout(Duration.ofMillis(200)).open();
    long dirty = changeOnePercent(primary, 1, 32, 10);
    primary.close();
    // the primary also lost its metadata: nothing tells which blocks differ but the checksums
    try (var s = Files.walk(pair.primaryRoot.resolve(".replicator"))) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
    pair.startReplica();
    long before = pair.proxy().upstreamBytes();
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC);
    await().atMost(Duration.ofSeconds(60)).until(() -> again.status().inSync());
    assertThat(pair.differences()).isEmpty();
    assertThat(pair.proxy().upstreamBytes() - before).as("bytes on the wire for %d differing bytes", dirty)
        .isLessThanOrEqualTo((long) (dirty * 1.1) + PROTOCOL_OVERHEAD);
  }

  @Test
  void resyncShowsProgressAndResumesWhereItStoppedWhenTheLinkDrops() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.resyncRate(1L << 20));
    writeDataSet(fs, 4, 8, 12);
    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    // 12% of the blocks: a resync of a few seconds at the 1 MiB/s ceiling
    long dirty = 0;
    for (int i = 0; i < 12; i++) {
      dirty += changeOnePercent(fs, 4, 8, 100 + i);
    }
    long before = pair.proxy().upstreamBytes();
    pair.startReplica();
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().resync()
        .map(r -> r.bytesDone() > 0 && r.bytesDone() < r.bytesTotal()).orElse(false));
    ReplicationStatus.ResyncProgress mid = fs.status().resync().orElseThrow();
    assertThat(fs.status().state()).isEqualTo(NodeState.SYNC_SOURCE);
    assertThat(mid.bytesTotal()).isGreaterThanOrEqualTo(dirty / 2);
    assertThat(mid.bytesPerSecond()).isPositive();
    assertThat(pair.replica().status().state()).isEqualTo(NodeState.SYNC_TARGET);

    pair.proxy().cut();
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    long onTheWire = pair.proxy().upstreamBytes() - before;
    assertThat(pair.differences()).isEmpty();
    assertThat(onTheWire).as("both attempts together, for %d dirty bytes", dirty)
        .isLessThanOrEqualTo((long) (dirty * 1.1) + 2 * PROTOCOL_OVERHEAD + (4L << 20));
  }
}
