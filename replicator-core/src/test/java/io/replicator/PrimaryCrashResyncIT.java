package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.PrimaryWriterProcess;
import io.replicator.testing.TcpProxy;
import io.replicator.tools.TreeDiff;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The primary process is killed with kill -9 mid-write; the secondary takes over through the
 * library API and writes; the old primary rejoins as its secondary and receives only its own hot
 * extents and the new primary's changes, not the data set.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class PrimaryCrashResyncIT {
  private static final int DATA_MIB = 48;

  @TempDir Path base;

  @Test
  void crashedPrimaryRejoinsAsSecondaryWithOnlyItsHotExtentsAndTheNewChanges() throws Exception {
    Path oldPrimaryRoot = base.resolve("a");
    Path oldReplicaRoot = base.resolve("b");
    long storm;
    try (ReplicaServer replica = Replicator.replica(oldReplicaRoot)
        .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("node-b").start()) {
      // a data set, replicated and cleanly closed
      try (ReplicatedFileSystem fs = Replicator.primary(oldPrimaryRoot).peer(replica.localAddress())
          .nodeId("crash-primary").open()) {
        Random rnd = new Random(1);
        byte[] mib = new byte[1 << 20];
        for (int f = 0; f < 4; f++) {
          try (FileChannel ch = FileChannel.open(fs.getPath("/set-" + f), StandardOpenOption.CREATE,
              StandardOpenOption.WRITE)) {
            for (int m = 0; m < DATA_MIB / 4; m++) {
              rnd.nextBytes(mib);
              ch.write(ByteBuffer.wrap(mib));
            }
          }
        }
      }
      storm = stormAndKill(oldPrimaryRoot, replica.localAddress().getPort());
    }
    assertThat(storm).as("acknowledged writes in the storm").isGreaterThanOrEqualTo(1500);

    // the old primary comes back as secondary; the link to it is down for now
    try (ReplicaServer rejoined = Replicator.replica(oldPrimaryRoot)
            .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("crash-primary").start();
        TcpProxy link = new TcpProxy(rejoined.localAddress())) {
      link.refuse(true);
      // failover: the old secondary is promoted and writes while its peer is away
      try (ReplicatedFileSystem promoted = Replicator.primary(oldReplicaRoot).peer(link.address())
          .nodeId("node-b").connectTimeout(Duration.ofMillis(300)).open()) {
        long changed = 0;
        Random rnd = new Random(2);
        for (int i = 0; i < 100; i++) {
          byte[] block = new byte[4096];
          rnd.nextBytes(block);
          try (FileChannel ch = FileChannel.open(promoted.getPath("/set-" + (i % 4)), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(block), (long) rnd.nextInt(DATA_MIB / 4 * 256) * 4096);
          }
          changed += 4096;
        }
        long before = link.upstreamBytes();
        link.refuse(false);
        await().atMost(Duration.ofSeconds(60)).until(() -> promoted.status().inSync());
        long sent = link.upstreamBytes() - before;
        // the storm files were written in sequential 4 KiB blocks: their hot extents cover at most
        // the storm's own bytes rounded up to whole 4 MiB extents per file
        long hotBound = 4 * (((storm * 4096 / 4) / (4 << 20)) + 1) * (4L << 20);
        assertThat(sent).as("bytes resynced (changed %d, hot-extent bound %d)", changed, hotBound)
            .isLessThanOrEqualTo((long) ((changed + hotBound) * 1.1) + (512 << 10))
            .isLessThan((long) DATA_MIB << 20);
      }
      assertThat(TreeDiff.compare(oldReplicaRoot, oldPrimaryRoot)).isEmpty();
    }
  }

  /** Runs the storm in its own process against the replica and kills it; returns the acks seen. */
  private long stormAndKill(Path root, int port) throws Exception {
    Process p = PrimaryWriterProcess.start(root, port);
    long acks = 0;
    try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      boolean killed = false;
      while ((line = in.readLine()) != null) {
        if (line.startsWith("ACK ") && line.endsWith(" END")) {
          acks++;
        }
        if (!killed && acks >= 2000) {
          new ProcessBuilder("kill", "-9", Long.toString(p.pid())).start().waitFor(10, TimeUnit.SECONDS);
          killed = true;
        }
      }
    } finally {
      p.destroyForcibly();
      p.waitFor(30, TimeUnit.SECONDS);
    }
    assertThat(Files.exists(root.resolve(".replicator"))).isTrue();
    return acks;
  }
}
