package io.replicator.testing;

import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.Replicator;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.zip.CRC32C;

/**
 * A primary in its own process for crash tests: several threads write fresh 4 KiB blocks through
 * a SYNC file system and print {@code ACK file position length crc} the moment each write
 * returns. The test kills it with {@code kill -9} and checks every printed ACK on the replica.
 *
 * <p>Arguments: primary root, replica host:port, threads.
 */
public final class PrimaryWriterProcess {
  private PrimaryWriterProcess() {}

  public static void main(String[] args) throws Exception {
    Path root = Path.of(args[0]);
    int threads = Integer.parseInt(args[2]);
    PrintStream out = new PrintStream(System.out, false, "UTF-8");
    ReplicatedFileSystem fs = Replicator.primary(root)
        .peer(Replicator.parseAddress(args[1]))
        .nodeId("crash-primary")
        .mode(ReplicationMode.SYNC)
        .open();
    if (!fs.status().peerConnected()) {
      System.err.println("not connected: " + fs.status());
      System.exit(3);
    }
    synchronized (out) {
      out.println("READY");
      out.flush();
    }
    for (int t = 0; t < threads; t++) {
      int id = t;
      Thread w = new Thread(() -> {
        Random rnd = new Random(id);
        String name = "storm-" + id + ".dat";
        try (FileChannel ch = FileChannel.open(fs.getPath("/" + name), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE)) {
          for (long block = 0; ; block++) {
            byte[] data = new byte[4096];
            rnd.nextBytes(data);
            ByteBuffer b = ByteBuffer.wrap(data);
            long pos = block * 4096;
            while (b.hasRemaining()) {
              ch.write(b, pos + b.position());
            }
            CRC32C crc = new CRC32C();
            crc.update(data);
            synchronized (out) {
              out.println("ACK " + name + " " + pos + " " + data.length + " " + crc.getValue() + " END");
              out.flush();
            }
          }
        } catch (Exception e) {
          e.printStackTrace();
        }
      }, "storm-" + t);
      w.start();
    }
    Thread.currentThread().join();
  }
}
