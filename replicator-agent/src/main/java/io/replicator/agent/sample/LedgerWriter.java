package io.replicator.agent.sample;

import io.replicator.ReplicatedFileSystem;
import io.replicator.Replicator;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.stream.Stream;

/**
 * The sample application of the demo and the failover tests: it embeds the library, registers
 * with its local agent, and appends numbered 32-byte records to ledger files with a force after
 * each. Only after a write returned does it note the record's number in an acknowledgement log
 * outside the replicated tree, so a checker can prove every acknowledged record survived a
 * failover. It continues numbering from the highest record found in the data.
 *
 * <p>Arguments: {@code ROOT ADMIN_HOST:PORT ACK_LOG PID_FILE [PAUSE_MILLIS]}.
 */
public final class LedgerWriter {
  static final int RECORD = 32;
  static final int RECORDS_PER_FILE = 4096;

  private LedgerWriter() {}

  public static void main(String[] args) throws Exception {
    Path root = Path.of(args[0]);
    java.net.InetSocketAddress admin = Replicator.parseAddress(args[1]);
    Path ackLog = Path.of(args[2]);
    Path pidFile = Path.of(args[3]);
    long pause = args.length > 4 ? Long.parseLong(args[4]) : 2;
    ReplicatedFileSystem fs = openThroughAgent(root, admin, pidFile, "ledger writer");
    long next = highestRecord(fs.getPath("/ledger")) + 1;
    Files.createDirectories(fs.getPath("/ledger"));
    try (OutputStream acks = Files.newOutputStream(ackLog, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
      while (true) {
        long n = next;
        Path file = fs.getPath("/ledger", String.format("%08d.log", n / RECORDS_PER_FILE));
        byte[] record = String.format("%019d entry-datum\n", n).getBytes(StandardCharsets.US_ASCII);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
          ch.write(ByteBuffer.wrap(record), (n % RECORDS_PER_FILE) * RECORD);
          ch.force(false);
        } catch (IOException e) {
          // not acknowledged: retry the same number once writes are allowed again
          System.err.println("ledger writer: record " + n + " not written: " + e.getMessage());
          Thread.sleep(100);
          continue;
        }
        acks.write((n + "\n").getBytes(StandardCharsets.US_ASCII));
        acks.flush();
        next++;
        if (pause > 0) {
          Thread.sleep(pause);
        }
      }
    }
  }

  /**
   * What a sample application does first: notes its pid for the agent's process checker, opens
   * the replicated file system through the local agent (exiting with status 1 and the reason when
   * the agent refuses), and closes it on the way out so the agent sees a clean release.
   */
  public static ReplicatedFileSystem openThroughAgent(Path root, java.net.InetSocketAddress admin, Path pidFile,
      String name) throws IOException {
    Files.writeString(pidFile, Long.toString(ProcessHandle.current().pid()));
    ReplicatedFileSystem fs;
    try {
      fs = Replicator.primary(root).agent(admin).open();
    } catch (IOException e) {
      System.err.println(name + ": " + e.getMessage());
      System.exit(1);
      throw e;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        fs.close();
      } catch (IOException e) {
        System.err.println(name + ": close failed: " + e.getMessage());
      }
    }, "application-close"));
    return fs;
  }

  /** The highest record number found in the ledger directory, -1 when none. */
  public static long highestRecord(Path ledger) throws IOException {
    long max = -1;
    for (long n : records(ledger)) {
      max = Math.max(max, n);
    }
    return max;
  }

  /** Record numbers noted in the acknowledgement logs (missing logs count as empty). */
  public static java.util.BitSet acknowledged(java.util.List<Path> ackLogs) throws IOException {
    java.util.BitSet acked = new java.util.BitSet();
    for (Path log : ackLogs) {
      if (Files.exists(log)) {
        for (String line : Files.readAllLines(log, StandardCharsets.US_ASCII)) {
          if (!line.isBlank()) {
            acked.set(Integer.parseInt(line.trim()));
          }
        }
      }
    }
    return acked;
  }

  /** Acknowledged record numbers that are not in the ledger directory. */
  public static java.util.BitSet missing(Path ledger, java.util.List<Path> ackLogs) throws IOException {
    java.util.BitSet missing = acknowledged(ackLogs);
    missing.andNot(recordSet(ledger));
    return missing;
  }

  /** Every record number present in the ledger directory (any file system). */
  public static java.util.BitSet recordSet(Path ledger) throws IOException {
    java.util.BitSet set = new java.util.BitSet();
    for (long n : records(ledger)) {
      set.set((int) n);
    }
    return set;
  }

  private static long[] records(Path ledger) throws IOException {
    if (!Files.isDirectory(ledger)) {
      return new long[0];
    }
    java.util.List<Long> out = new java.util.ArrayList<>();
    try (Stream<Path> files = Files.list(ledger)) {
      for (Path f : (Iterable<Path>) files.sorted()::iterator) {
        byte[] data = Files.readAllBytes(f);
        for (int off = 0; off + RECORD <= data.length; off += RECORD) {
          if (data[off] >= '0' && data[off] <= '9' && data[off + RECORD - 1] == '\n') {
            out.add(Long.parseLong(new String(data, off, 19, StandardCharsets.US_ASCII)));
          }
        }
      }
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }
}
