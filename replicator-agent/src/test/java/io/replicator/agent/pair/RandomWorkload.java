package io.replicator.agent.pair;

import io.replicator.ReplicatedFileSystem;
import io.replicator.Replicator;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The application of the torture run: a seeded random stream of file operations (writes of every
 * size at random offsets, truncations, deletions, renames across directories) applied one at a
 * time through the replicated file system, each noted in an acknowledgement log only after it
 * returned. Operation {@code n} is a pure function of the seed and {@code n}, and every operation
 * is idempotent, so a writer that restarts on either node carries on from the highest
 * acknowledged number, and {@link Model} can compute the exact tree after any prefix of the stream.
 *
 * <p>Arguments: {@code ROOT ADMIN_HOST:PORT SEED ACK_LOG PID_FILE CONTROL_DIR ACK_LOG...}; the
 * trailing logs are every node's, read once at start. While {@code CONTROL_DIR/pause} exists the
 * writer stops between operations and answers in {@code CONTROL_DIR/paused} with the pause file's
 * token and the number of the operation it will do next.
 */
public final class RandomWorkload {
  static final int DIRECTORIES = 3;
  static final int FILES_PER_DIRECTORY = 6;
  static final int MAX_OFFSET = 256 * 1024;

  private RandomWorkload() {}

  /** What one operation does. */
  enum Kind { WRITE, TRUNCATE, DELETE, RENAME }

  /** One operation of the stream. */
  record Op(long seq, Kind kind, String path, String target, long offset, byte[] data) {
    static Op of(long seed, long seq) {
      SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + seq);
      String path = randomPath(r);
      int k = r.nextInt(100);
      if (k < 75) {
        // mostly small writes, sometimes a bulk one that makes resyncs take a while
        int len = r.nextInt(10) == 0 ? 16 * 1024 + r.nextInt(112 * 1024) : 1 + r.nextInt(8 * 1024);
        byte[] data = new byte[len];
        r.nextBytes(data);
        return new Op(seq, Kind.WRITE, path, null, r.nextInt(MAX_OFFSET), data);
      } else if (k < 85) {
        return new Op(seq, Kind.TRUNCATE, path, null, r.nextInt(MAX_OFFSET), null);
      } else if (k < 90) {
        return new Op(seq, Kind.DELETE, path, null, 0, null);
      } else {
        String target = randomPath(r);
        return target.equals(path) ? new Op(seq, Kind.DELETE, path, null, 0, null)
            : new Op(seq, Kind.RENAME, path, target, 0, null);
      }
    }

    private static String randomPath(SplittableRandom r) {
      return "d" + r.nextInt(DIRECTORIES) + "/f" + r.nextInt(FILES_PER_DIRECTORY);
    }

    /** Applies the operation to a real tree; applying it twice leaves what applying it once does. */
    void applyTo(Path root) throws IOException {
      Path file = root.resolve(path);
      switch (kind) {
        case WRITE -> {
          Files.createDirectories(file.getParent());
          try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(data);
            long at = offset;
            while (b.hasRemaining()) {
              at += ch.write(b, at);
            }
            ch.force(false);
          }
        }
        case TRUNCATE -> {
          if (Files.exists(file)) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
              ch.truncate(offset);
              ch.force(false);
            }
          }
        }
        case DELETE -> Files.deleteIfExists(file);
        case RENAME -> {
          if (Files.exists(file)) {
            Path to = root.resolve(target);
            Files.createDirectories(to.getParent());
            Files.move(file, to, StandardCopyOption.REPLACE_EXISTING);
          }
        }
        default -> throw new AssertionError(kind);
      }
    }

    /** Applies the operation to the model's files. */
    void applyTo(Map<String, byte[]> files) {
      switch (kind) {
        case WRITE -> {
          byte[] old = files.getOrDefault(path, new byte[0]);
          byte[] now = Arrays.copyOf(old, (int) Math.max(old.length, offset + data.length));
          System.arraycopy(data, 0, now, (int) offset, data.length);
          files.put(path, now);
        }
        case TRUNCATE -> {
          byte[] old = files.get(path);
          if (old != null && old.length > offset) {
            files.put(path, Arrays.copyOf(old, (int) offset));
          }
        }
        case DELETE -> files.remove(path);
        case RENAME -> {
          byte[] moved = files.remove(path);
          if (moved != null) {
            files.put(target, moved);
          }
        }
        default -> throw new AssertionError(kind);
      }
    }

    @Override
    public String toString() {
      return seq + " " + kind + " " + path + (target == null ? "" : " -> " + target)
          + (kind == Kind.WRITE ? " @" + offset + "+" + data.length : kind == Kind.TRUNCATE ? " to " + offset : "");
    }
  }

  /** The exact tree after the first operations of the stream, advanced one operation at a time. */
  static final class Model {
    private final long seed;
    private final Map<String, byte[]> files = new TreeMap<>();
    private long applied = -1;

    Model(long seed) {
      this.seed = seed;
    }

    /** Applies operations up to and including {@code seq}; the model never goes back. */
    void advanceTo(long seq) {
      while (applied < seq) {
        applied++;
        Op.of(seed, applied).applyTo(files);
      }
    }

    long seed() {
      return seed;
    }

    long applied() {
      return applied;
    }

    Map<String, byte[]> files() {
      return files;
    }

    /** The tree one operation further, without advancing the model. */
    Map<String, byte[]> peekNext() {
      Map<String, byte[]> copy = new TreeMap<>(files);
      Op.of(seed, applied + 1).applyTo(copy);
      return copy;
    }
  }

  /** The regular files under {@code root} by relative path, the node's metadata directory left out. */
  static Map<String, byte[]> read(Path root) throws IOException {
    Map<String, byte[]> files = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        String rel = root.relativize(p).toString().replace('\\', '/');
        if (rel.startsWith(Replicator.METADATA_DIRECTORY) || !Files.isRegularFile(p)) {
          continue;
        }
        try {
          files.put(rel, Files.readAllBytes(p));
        } catch (NoSuchFileException e) {
          // moved while walking: the caller compares a tree it paused, so this is a real difference
          files.put(rel, null);
        }
      }
    }
    return files;
  }

  /** Each path where two trees differ, with how; empty when they are byte for byte the same. */
  static List<String> differences(Map<String, byte[]> expected, Map<String, byte[]> actual) {
    List<String> found = new java.util.ArrayList<>();
    for (Map.Entry<String, byte[]> e : expected.entrySet()) {
      byte[] a = actual.get(e.getKey());
      if (a == null) {
        found.add(e.getKey() + " missing");
      } else if (!Arrays.equals(e.getValue(), a)) {
        found.add(e.getKey() + " differs at byte " + Arrays.mismatch(e.getValue(), a) + " (expected "
            + e.getValue().length + " bytes, found " + a.length + ")");
      }
    }
    for (String k : actual.keySet()) {
      if (!expected.containsKey(k)) {
        found.add(k + " should not exist");
      }
    }
    return found;
  }

  /** The operation numbers in one acknowledgement log (none when it does not exist). */
  static java.util.BitSet acknowledged(Path log) throws IOException {
    java.util.BitSet set = new java.util.BitSet();
    if (Files.exists(log)) {
      for (String line : Files.readAllLines(log, StandardCharsets.US_ASCII)) {
        try {
          set.set(Integer.parseInt(line.trim()));
        } catch (NumberFormatException torn) {
          // a line cut by kill -9 was never a complete acknowledgement
        }
      }
    }
    return set;
  }

  /** The highest operation number in the acknowledgement logs, -1 when none. */
  static long highestAcknowledged(List<Path> ackLogs) throws IOException {
    long max = -1;
    for (Path log : ackLogs) {
      max = Math.max(max, acknowledged(log).length() - 1);
    }
    return max;
  }

  /** The writer's waits: polled in its own thread, given up (the process exits) after ten minutes. */
  private static org.awaitility.core.ConditionFactory writerWait() {
    return org.awaitility.Awaitility.await().atMost(Duration.ofMinutes(10)).pollDelay(Duration.ZERO)
        .pollInSameThread();
  }

  private static boolean tryApply(Op op, Path top) {
    try {
      op.applyTo(top);
      return true;
    } catch (IOException e) {
      System.err.println("workload: operation " + op + " failed: " + e);
      return false;
    }
  }

  /**
   * The checker's pause requests: while {@code pause} exists the writer stops between operations
   * and answers in {@code paused} with the request's token and the operation it will do next, so a
   * stale answer is never taken; a new token while still paused (resumed and paused again at once)
   * is answered too.
   */
  private static final class PauseControl {
    private final Path control;
    private final Path pause;
    private final Path paused;
    private String answered;

    PauseControl(Path control) {
      this.control = control;
      this.pause = control.resolve("pause");
      this.paused = control.resolve("paused");
    }

    boolean requested() {
      return Files.exists(pause);
    }

    void honour(long next) {
      if (requested()) {
        writerWait().pollInterval(Duration.ofMillis(5)).until(() -> {
          answer(next);
          return !requested();
        });
      }
    }

    private void answer(long next) throws IOException {
      String token = readQuietly(pause);
      if (!token.isEmpty() && !token.equals(answered)) {
        Path tmp = control.resolve("paused.tmp");
        Files.writeString(tmp, token + " " + next);
        Files.move(tmp, paused, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        answered = token;
      }
    }
  }

  private static String readQuietly(Path p) {
    try {
      return Files.readString(p).trim();
    } catch (IOException e) {
      return "";
    }
  }

  public static void main(String[] args) throws Exception {
    Path root = Path.of(args[0]);
    InetSocketAddress admin = Replicator.parseAddress(args[1]);
    long seed = Long.parseLong(args[2]);
    Path ackLog = Path.of(args[3]);
    Path pidFile = Path.of(args[4]);
    Path control = Files.createDirectories(Path.of(args[5]));
    List<Path> ackLogs = Stream.of(args).skip(6).map(Path::of).toList();
    ReplicatedFileSystem fs = io.replicator.agent.sample.LedgerWriter.openThroughAgent(root, admin, pidFile, "workload");
    Path top = fs.getPath("/");
    long seq = highestAcknowledged(ackLogs) + 1;
    System.err.println("workload: starting at operation " + seq);
    PauseControl pauses = new PauseControl(control);
    try (OutputStream acks = Files.newOutputStream(ackLog, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
      while (true) {
        pauses.honour(seq);
        Op op = Op.of(seed, seq);
        // not acknowledged until it returns: the same operation again every 50 ms until writes are
        // allowed, unless the checker asks for a pause meanwhile
        boolean[] applied = {tryApply(op, top)};
        if (!applied[0]) {
          writerWait().pollDelay(Duration.ofMillis(50)).pollInterval(Duration.ofMillis(50))
              .until(() -> (applied[0] = tryApply(op, top)) || pauses.requested());
        }
        if (applied[0]) {
          acks.write((seq + "\n").getBytes(StandardCharsets.US_ASCII));
          acks.flush();
          seq++;
        }
      }
    }
  }
}
