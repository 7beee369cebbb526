package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.PrimaryWriterProcess;
import io.replicator.tools.TreeDiff;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The primary process is killed with kill -9 during a write storm: every write it acknowledged is on
 * the secondary, and a primary that returns brings the secondary level with what it had written.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PrimaryKilledMidWriteIT {
  @TempDir Path base;

  @Test
  void primaryKilledMidWriteLosesNoAcknowledgedWrite() throws Exception {
    Path replicaRoot = base.resolve("replica");
    try (ReplicaServer replica = Replicator.replica(replicaRoot)
        .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("crash-replica").start()) {
      List<String[]> acks = stormAndKill(replica.localAddress(), "blocks", 8000);
      assertThat(missingOnReplica(replicaRoot, acks)).as("acknowledged writes missing on the replica, of %d",
          acks.size()).isZero();
    }
  }

  /**
   * Files created in a directory share one activity-log record (the directory's entries): a crash
   * must still leave every file created in flight to the returning primary's resync.
   */
  @Test
  void primaryKilledWhileCreatingFilesComesBackAndLeavesItsSecondaryIdentical() throws Exception {
    Path replicaRoot = base.resolve("replica");
    Path primaryRoot = base.resolve("primary");
    try (ReplicaServer replica = Replicator.replica(replicaRoot)
        .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("crash-replica").start()) {
      // the directories exist, replicated, before the storm: their own creation is settled and
      // cold, so only the files' records can tell the returning primary where to look
      try (ReplicatedFileSystem fs = Replicator.primary(primaryRoot).peer(replica.localAddress())
          .nodeId("crash-primary").open()) {
        for (int t = 0; t < 4; t++) {
          Files.createDirectories(fs.getPath("/dir-" + t));
        }
      }
      List<String[]> acks = stormAndKill(replica.localAddress(), "files", 3000);
      assertThat(missingOnReplica(replicaRoot, acks)).as("acknowledged files missing on the replica, of %d",
          acks.size()).isZero();
      // the files the kill caught in flight are on the primary's disk (a process crash keeps the
      // page cache) and perhaps not on the replica: the primary's activity log must say where
      try (ReplicatedFileSystem fs = Replicator.primary(primaryRoot).peer(replica.localAddress())
          .nodeId("crash-primary").open()) {
        await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
      }
      assertThat(TreeDiff.compare(primaryRoot, replicaRoot)).isEmpty();
    }
  }

  /** Runs {@link PrimaryWriterProcess} in {@code mode} until {@code acks} writes returned, then kills it. */
  private List<String[]> stormAndKill(InetSocketAddress addr, String mode, int wanted) throws Exception {
    Process primary = PrimaryWriterProcess.start(base.resolve("primary"), addr.getPort(), mode);
    List<String[]> acks = new ArrayList<>();
    try (BufferedReader in = new BufferedReader(new InputStreamReader(primary.getInputStream(),
        StandardCharsets.UTF_8))) {
      long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
      String line;
      boolean killed = false;
      while ((line = in.readLine()) != null) {
        String[] parts = line.split(" ");
        // a line cut by the kill lacks its END marker and was never fully acknowledged
        if (parts.length == 6 && parts[0].equals("ACK") && parts[5].equals("END")) {
          acks.add(parts);
        }
        if (!killed && (acks.size() >= wanted || System.nanoTime() > deadline)) {
          // kill -9 itself, not a polite destroy: no shutdown hooks, no flush, no goodbye
          new ProcessBuilder("kill", "-9", Long.toString(primary.pid())).start().waitFor(10, TimeUnit.SECONDS);
          killed = true;
        }
      }
    } finally {
      primary.destroyForcibly();
      primary.waitFor(30, TimeUnit.SECONDS);
    }
    assertThat(primary.exitValue()).as("the primary died of SIGKILL").isEqualTo(137);
    assertThat(acks.size()).as("the storm ran").isGreaterThanOrEqualTo(wanted);
    return acks;
  }

  private static int missingOnReplica(Path replicaRoot, List<String[]> acks) throws IOException {
    int missing = 0;
    for (String[] ack : acks) {
      if (!onReplica(replicaRoot.resolve(ack[1]), Long.parseLong(ack[2]), Integer.parseInt(ack[3]),
          Long.parseLong(ack[4]))) {
        missing++;
      }
    }
    return missing;
  }

  private static boolean onReplica(Path file, long pos, int length, long crc) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocate(length);
      while (b.hasRemaining()) {
        if (ch.read(b, pos + b.position()) < 0) {
          return false;
        }
      }
      CRC32C c = new CRC32C();
      c.update(b.array());
      return c.getValue() == crc;
    } catch (java.nio.file.NoSuchFileException e) {
      return false;
    }
  }
}
