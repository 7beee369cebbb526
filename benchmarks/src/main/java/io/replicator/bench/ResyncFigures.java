package io.replicator.bench;

import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.Replicator;
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
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * Measures resync on a data set of a given size (1 GiB by default): incremental after 1% of the
 * blocks changed, full checksum resync of identical data, full resync of an empty secondary, and
 * the application's 4 KiB write+force latency while a resync runs against without one. Bytes are
 * counted on the wire by a proxy between the nodes.
 *
 * <p>Usage: {@code java -cp ... io.replicator.bench.ResyncFigures [MiB] [work dir]}
 */
public final class ResyncFigures {
  private static final int BLOCK = 4096;
  private static final int FILES = 8;

  private ResyncFigures() {}

  public static void main(String[] args) throws Exception {
    int mib = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
    Path work = Files.createTempDirectory(args.length > 1 ? Path.of(args[1]) : Path.of(System.getProperty("java.io.tmpdir")),
        "replicator-resync-");
    try {
      run(work, mib);
    } finally {
      delete(work);
    }
  }

  private static void run(Path work, int mib) throws Exception {
    Path primaryRoot = work.resolve("primary");
    Path replicaRoot = work.resolve("replica");
    int port;
    ReplicaServer replica = start(replicaRoot, 0);
    port = replica.localAddress().getPort();
    try (TcpProxy proxy = new TcpProxy(new InetSocketAddress("127.0.0.1", port))) {
      ReplicatedFileSystem fs = Replicator.primary(primaryRoot).peer(proxy.address()).nodeId("bench-primary")
          .mode(ReplicationMode.SYNC).open();
      long t0 = System.nanoTime();
      write(fs, mib);
      double loadSeconds = seconds(t0);
      System.out.printf("data set: %d MiB in %d files, written replicated (SYNC) in %.1f s (%.0f MB/s)%n",
          mib, FILES, loadSeconds, mib * 1.048576 / loadSeconds);
      long[] idle = latency(fs, 300);

      // 1. incremental after 1% changed
      replica.close();
      waitUntil(() -> !fs.status().peerConnected(), 20);
      long dirty = changeOnePercent(fs, mib);
      long before = proxy.upstreamBytes();
      t0 = System.nanoTime();
      replica = start(replicaRoot, port);
      waitUntil(() -> fs.status().inSync(), 600);
      report("incremental resync after 1% changed", seconds(t0), proxy.upstreamBytes() - before, dirty);

      // 2. full checksum resync of identical data: the secondary lost its metadata
      replica.close();
      waitUntil(() -> !fs.status().peerConnected(), 20);
      deleteMetadata(replicaRoot);
      before = proxy.upstreamBytes();
      long downBefore = proxy.downstreamBytes();
      t0 = System.nanoTime();
      replica = start(replicaRoot, port);
      waitUntil(() -> fs.status().inSync(), 600);
      double full = seconds(t0);
      System.out.printf("%-42s %8.2f s   %,14d bytes sent, %,d bytes of checksums received%n",
          "full checksum resync of identical data", full, proxy.upstreamBytes() - before,
          proxy.downstreamBytes() - downBefore);
      ReplicatedFileSystem fs2 = fs;

      // 3. full resync of an empty secondary, while the application writes and measures latency
      replica.close();
      waitUntil(() -> !fs2.status().peerConnected(), 20);
      delete(replicaRoot);
      before = proxy.upstreamBytes();
      t0 = System.nanoTime();
      replica = start(replicaRoot, port);
      waitUntil(() -> fs2.status().resync().isPresent() || fs2.status().inSync(), 60);
      long[] during = latencyWhile(fs2, () -> fs2.status().resync().isPresent());
      waitUntil(() -> fs2.status().inSync(), 600);
      report("full resync of an empty secondary", seconds(t0), proxy.upstreamBytes() - before, (long) mib << 20);
      System.out.printf("4 KiB write+force while idle: p50 %.3f ms, p99 %.3f ms; during the full resync "
          + "(%d samples): p50 %.3f ms, p99 %.3f ms (ratio p50 %.2fx)%n", idle[0] / 1e6, idle[1] / 1e6, during[2],
          during[0] / 1e6, during[1] / 1e6, (double) during[0] / idle[0]);
      fs2.close();
      System.out.println("trees identical: " + TreeDiff.compare(primaryRoot, replicaRoot).isEmpty());
    } finally {
      replica.close();
    }
  }

  private static ReplicaServer start(Path root, int port) throws IOException {
    return Replicator.replica(root).listen(new InetSocketAddress("127.0.0.1", port)).nodeId("bench-replica").start();
  }

  private static void report(String what, double seconds, long bytes, long dirty) {
    System.out.printf("%-42s %8.2f s   %,14d bytes sent for %,d bytes changed (%.3fx)%n", what, seconds, bytes, dirty,
        (double) bytes / dirty);
  }

  private static void write(ReplicatedFileSystem fs, int mib) throws IOException {
    Random rnd = new Random(1);
    byte[] chunk = new byte[1 << 20];
    for (int f = 0; f < FILES; f++) {
      try (FileChannel ch = FileChannel.open(fs.getPath("/file-" + f), StandardOpenOption.CREATE,
          StandardOpenOption.WRITE)) {
        for (int m = 0; m < mib / FILES; m++) {
          rnd.nextBytes(chunk);
          ch.write(ByteBuffer.wrap(chunk));
        }
      }
    }
  }

  private static long changeOnePercent(ReplicatedFileSystem fs, int mib) throws IOException {
    Random rnd = new Random(2);
    long perFile = (long) mib / FILES * (1 << 20) / BLOCK;
    long blocks = perFile * FILES;
    java.util.BitSet picked = new java.util.BitSet();
    byte[] block = new byte[BLOCK];
    while (picked.cardinality() < blocks / 100) {
      picked.set(rnd.nextInt((int) blocks));
    }
    for (int b = picked.nextSetBit(0); b >= 0; b = picked.nextSetBit(b + 1)) {
      rnd.nextBytes(block);
      try (FileChannel ch = FileChannel.open(fs.getPath("/file-" + (b / perFile)), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(block), (b % perFile) * BLOCK);
      }
    }
    return (long) picked.cardinality() * BLOCK;
  }

  /** p50 and p99 (ns) and the sample count of 4 KiB write+force, sampled only while {@code running} holds. */
  private static long[] latencyWhile(ReplicatedFileSystem fs, BooleanSupplier running) throws IOException {
    long[] t = new long[100_000];
    int n = 0;
    ByteBuffer block = ByteBuffer.allocateDirect(BLOCK);
    try (FileChannel ch = FileChannel.open(fs.getPath("/latency"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      while (n < t.length && running.getAsBoolean()) {
        block.clear();
        long t0 = System.nanoTime();
        ch.write(block, (long) (n % 64) * BLOCK);
        ch.force(false);
        long d = System.nanoTime() - t0;
        if (running.getAsBoolean()) {
          t[n++] = d;
        }
      }
    }
    if (n == 0) {
      return new long[] {0, 0, 0};
    }
    long[] s = Arrays.copyOf(t, n);
    Arrays.sort(s);
    return new long[] {s[n / 2], s[Math.min(n - 1, n * 99 / 100)], n};
  }

  /** p50 and p99 of 4 KiB write+force, in nanoseconds. */
  private static long[] latency(ReplicatedFileSystem fs, int samples) throws IOException {
    long[] t = new long[samples];
    ByteBuffer block = ByteBuffer.allocateDirect(BLOCK);
    try (FileChannel ch = FileChannel.open(fs.getPath("/latency"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int i = 0; i < samples; i++) {
        block.clear();
        long t0 = System.nanoTime();
        ch.write(block, (long) (i % 64) * BLOCK);
        ch.force(false);
        t[i] = System.nanoTime() - t0;
      }
    }
    Arrays.sort(t);
    return new long[] {t[samples / 2], t[samples * 99 / 100]};
  }

  private static void waitUntil(BooleanSupplier condition, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("condition not reached within " + seconds + " s");
      }
      Thread.sleep(10);
    }
  }

  private static double seconds(long t0) {
    return (System.nanoTime() - t0) / 1e9;
  }

  private static void deleteMetadata(Path root) throws IOException {
    delete(root.resolve(Replicator.METADATA_DIRECTORY));
  }

  private static void delete(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> s = Files.walk(root)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
