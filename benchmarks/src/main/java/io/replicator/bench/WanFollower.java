package io.replicator.bench;

import io.replicator.LinkCompression;
import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.Replicator;
import io.replicator.testing.TcpProxy;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;

/**
 * The WAN case: a SYNC pair on loopback, alone and with an ASYNC follower behind the fault proxy
 * set to a 10 Mbit/s link with 50 ms round trips; text-like data (log lines). Reports the pair's
 * write+force latency in both, the compression ratio on the follower's link, and the follower's lag
 * after a burst.
 */
final class WanFollower {
  static final long LINK_BYTES_PER_SECOND = 1_250_000; // 10 Mbit/s
  static final long ONE_WAY_DELAY_MILLIS = 25;          // 50 ms round trip

  private final Results results;
  private final PrintStream progress;
  private final int samples;
  private final long burstBytes;

  WanFollower(Results results, PrintStream progress, int samples, long burstBytes) {
    this.results = results;
    this.progress = progress;
    this.samples = samples;
    this.burstBytes = burstBytes;
  }

  void run(Path dir, int rounds) throws Exception {
    results.note("wan", String.format("follower behind the fault proxy: %,d bytes/s (10 Mbit/s), %d ms each way; "
        + "LZ4 forced on its link (it is loopback here); text-like data (log lines); burst of %,d bytes in 64 KiB "
        + "writes, lag = from the burst's last write returning to the follower in sync", LINK_BYTES_PER_SECOND,
        ONE_WAY_DELAY_MILLIS, burstBytes));
    for (int round = 1; round <= rounds; round++) {
      progress.printf("round %d: WAN follower%n", round);
      once(dir.resolve("round-" + round), round);
      TempTrees.delete(dir.resolve("round-" + round));
    }
  }

  private void once(Path dir, int round) throws Exception {
    try (ReplicaServer secondary = Replicator.replica(dir.resolve("secondary"))
            .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("bench-wan-secondary").start();
        ReplicaServer follower = Replicator.replica(dir.resolve("follower"))
            .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("bench-wan-follower")
            .asFollower().compression(LinkCompression.LZ4).start();
        TcpProxy wan = new TcpProxy(follower.localAddress())) {
      wan.bandwidth(LINK_BYTES_PER_SECOND);
      wan.delay(ONE_WAY_DELAY_MILLIS);
      try (ReplicatedFileSystem alone = Replicator.primary(dir.resolve("alone"))
          .peer(secondary.localAddress()).nodeId("bench-wan-alone").mode(ReplicationMode.SYNC).open()) {
        latency(alone, "SYNC alone", round);
      }
      secondary.close();
      try (ReplicaServer secondary2 = Replicator.replica(dir.resolve("secondary2"))
              .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("bench-wan-secondary2").start();
          ReplicatedFileSystem fs = Replicator.primary(dir.resolve("with-follower"))
              .peer(secondary2.localAddress()).nodeId("bench-wan-primary").mode(ReplicationMode.SYNC)
              .follower("site-b", wan.address(), ReplicationMode.ASYNC, 0, LinkCompression.LZ4).open()) {
        waitFor(() -> fs.followers().get("site-b").inSync(), 60);
        latency(fs, "SYNC + WAN follower", round);
        waitFor(() -> fs.followers().get("site-b").inSync(), 120);
        long wire0 = wan.upstreamBytes();
        byte[] text = text(burstBytes, round);
        long t0 = System.nanoTime();
        try (FileChannel ch = FileChannel.open(fs.getPath("/burst.log"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE)) {
          for (int off = 0; off < text.length; off += 64 * 1024) {
            ch.write(ByteBuffer.wrap(text, off, Math.min(64 * 1024, text.length - off)));
          }
          ch.force(false);
        }
        long written = System.nanoTime();
        waitFor(() -> fs.followers().get("site-b").inSync(), 300);
        long caughtUp = System.nanoTime();
        long wire = wan.upstreamBytes() - wire0;
        results.add("wan", "SYNC + WAN follower", "burst write", "s", (written - t0) / 1e9);
        results.add("wan", "SYNC + WAN follower", "follower lag", "s", (caughtUp - written) / 1e9);
        results.add("wan", "SYNC + WAN follower", "compression", "x", (double) text.length / wire);
      }
    }
  }

  private void latency(ReplicatedFileSystem fs, String variant, int round) throws IOException {
    byte[] block = Arrays.copyOf(text(8192, 77 + round), 4096);
    long[] ns = new long[samples];
    try (FileChannel ch = FileChannel.open(fs.getPath("/latency.log"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      for (int i = -200; i < samples; i++) {
        long t0 = System.nanoTime();
        ch.write(ByteBuffer.wrap(block), (long) Math.floorMod(i, 256) * 4096);
        ch.force(false);
        if (i >= 0) {
          ns[i] = System.nanoTime() - t0;
        }
      }
    }
    Arrays.sort(ns);
    results.add("wan", variant, "p50", "ms", ns[ns.length / 2] / 1e6);
    results.add("wan", variant, "p99", "ms", ns[(int) Math.min(ns.length - 1, ns.length * 0.99)] / 1e6);
  }

  /** Log lines with varying numbers: compressible as real logs are, not as zeros are. */
  static byte[] text(long bytes, long seed) {
    Random r = new Random(seed);
    String[] levels = {"INFO ", "INFO ", "INFO ", "WARN ", "DEBUG"};
    String[] verbs = {"accepted", "shipped", "billed", "cancelled", "refunded"};
    StringBuilder s = new StringBuilder((int) bytes + 256);
    while (s.length() < bytes) {
      s.append(String.format("2026-12-03T%02d:%02d:%02d.%03dZ %s [worker-%d] order %d %s for customer %d amount "
              + "%d.%02d EUR%n", r.nextInt(24), r.nextInt(60), r.nextInt(60), r.nextInt(1000),
          levels[r.nextInt(levels.length)], r.nextInt(16), 100_000 + r.nextInt(900_000), verbs[r.nextInt(verbs.length)],
          r.nextInt(100_000), r.nextInt(500), r.nextInt(100)));
    }
    return Arrays.copyOf(s.toString().getBytes(StandardCharsets.US_ASCII), (int) bytes);
  }

  private interface Condition {
    boolean holds();
  }

  private static void waitFor(Condition c, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + seconds * 1_000_000_000L;
    while (!c.holds()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the WAN follower did not catch up within " + seconds + " s");
      }
      Thread.sleep(20);
    }
  }
}
