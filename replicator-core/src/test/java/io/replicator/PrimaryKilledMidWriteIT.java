package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.testing.PrimaryWriterProcess;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
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

/** The primary process is killed with kill -9 during a write storm: every write it acknowledged is on the secondary. */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PrimaryKilledMidWriteIT {
  @TempDir Path base;

  @Test
  void primaryKilledMidWriteLosesNoAcknowledgedWrite() throws Exception {
    Path replicaRoot = base.resolve("replica");
    try (ReplicaServer replica = Replicator.replica(replicaRoot)
        .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("crash-replica").start()) {
      InetSocketAddress addr = replica.localAddress();
      List<String> command = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-cp", System.getProperty("java.class.path"), "-Xmx256m", "--enable-native-access=ALL-UNNAMED"));
      if (Runtime.version().feature() >= 24) {
        command.add("--sun-misc-unsafe-memory-access=allow");
      }
      command.addAll(List.of(PrimaryWriterProcess.class.getName(),
          base.resolve("primary").toString(), "127.0.0.1:" + addr.getPort(), "4"));
      Process primary = new ProcessBuilder(command)
          .redirectError(ProcessBuilder.Redirect.INHERIT)
          .start();
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
          if (!killed && (acks.size() >= 8000 || System.nanoTime() > deadline)) {
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
      assertThat(acks.size()).as("the storm ran").isGreaterThanOrEqualTo(8000);

      int missing = 0;
      for (String[] ack : acks) {
        if (!onReplica(replicaRoot.resolve(ack[1]), Long.parseLong(ack[2]), Integer.parseInt(ack[3]),
            Long.parseLong(ack[4]))) {
          missing++;
        }
      }
      assertThat(missing).as("acknowledged writes missing on the replica, of %d", acks.size()).isZero();
    }
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
