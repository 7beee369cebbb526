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
 * <p>Arguments: primary root, replica host:port, threads, and optionally {@code files}: then each
 * thread creates 4 KiB files one after another in a directory of its own instead, and prints
 * {@code ACK file 0 4096 crc} for each.
 */
public final class PrimaryWriterProcess {
  private PrimaryWriterProcess() {}

  /**
   * Starts this class in a JVM of its own with 4 writer threads against the replica on 127.0.0.1
   * at {@code port}; {@code mode} as the optional fourth argument. Its standard error is inherited.
   */
  public static Process start(Path root, int port, String... mode) throws java.io.IOException {
    java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), "-Xmx256m", "--enable-native-access=ALL-UNNAMED"));
    if (Runtime.version().feature() >= 24) {
      command.add("--sun-misc-unsafe-memory-access=allow");
    }
    command.addAll(java.util.List.of(PrimaryWriterProcess.class.getName(), root.toString(), "127.0.0.1:" + port, "4"));
    command.addAll(java.util.List.of(mode));
    return new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
  }

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
    boolean files = args.length > 3 && args[3].equals("files");
    for (int t = 0; t < threads; t++) {
      int id = t;
      Thread w = new Thread(files ? () -> createFiles(fs, id, out) : () -> {
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

  private static void createFiles(ReplicatedFileSystem fs, int id, PrintStream out) {
    Random rnd = new Random(id);
    try {
      java.nio.file.Path dir = fs.getPath("/dir-" + id);
      if (!java.nio.file.Files.isDirectory(dir)) {
        java.nio.file.Files.createDirectories(dir); // not when it exists: even a failed create is a change
      }
      for (long n = 0; ; n++) {
        String name = "dir-" + id + "/file-" + n;
        byte[] data = new byte[4096];
        rnd.nextBytes(data);
        java.nio.file.Files.write(fs.getPath("/" + name), data);
        CRC32C crc = new CRC32C();
        crc.update(data);
        synchronized (out) {
          out.println("ACK " + name + " 0 " + data.length + " " + crc.getValue() + " END");
          out.flush();
        }
      }
    } catch (Exception e) {
      e.printStackTrace();
    }
  }
}
