package io.replicator.cli;

import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code replicator demo}: a replica server and a primary file system on loopback in a temp dir,
 * a mixed multi-threaded write workload, a check of every acknowledged write on the replica as it
 * returns, latency and throughput local vs replicated, and a byte-for-byte tree comparison.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Run a primary and a replica on loopback, write a mixed workload, and verify the replica.")
final class DemoCommand implements Callable<Integer> {

  @Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--threads", description = "Writer threads (default: ${DEFAULT-VALUE}).", defaultValue = "4")
  int threads;

  @Option(names = "--ops", description = "Operations per thread (default: ${DEFAULT-VALUE}).", defaultValue = "2000")
  int opsPerThread;

  @Option(names = "--seed", description = "Workload seed (default: ${DEFAULT-VALUE}).", defaultValue = "42")
  long seed;

  @Option(names = "--mode", description = "SYNC, MEMORY or ASYNC (default: ${DEFAULT-VALUE}).", defaultValue = "SYNC")
  ReplicationMode mode;

  @Option(names = "--latency-samples", description = "4 KiB write+force samples per side (default: ${DEFAULT-VALUE}).",
      defaultValue = "1000")
  int latencySamples;

  @Option(names = "--throughput-mib", description = "MiB written in 1 MiB writes per side (default: ${DEFAULT-VALUE}).",
      defaultValue = "256")
  int throughputMib;

  @Option(names = "--keep", description = "Keep the temp directory for inspection.")
  boolean keep;

  @Option(names = "--no-cycle", description = "Skip the HA cycle (agents, kill -9, failover, resync, swap, verify).")
  boolean noCycle;

  @Option(names = "--heartbeat", description = "Heartbeat interval of the HA cycle's agents (default: ${DEFAULT-VALUE}).",
      defaultValue = "200ms")
  String heartbeat;

  @Option(names = "--peer-timeout", description = "Peer timeout of the HA cycle's agents (default: ${DEFAULT-VALUE}).",
      defaultValue = "1s")
  String peerTimeout;

  private PrintWriter out;

  @Override
  @SuppressWarnings("try") // the file system is closed inside its try block on purpose: flushed before comparing
  public Integer call() throws Exception {
    out = spec.commandLine().getOut();
    if (threads < 1 || threads > 64) {
      throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--threads must be within 1..64");
    }
    if (opsPerThread < 1 || latencySamples < 10 || throughputMib < 1) {
      throw new picocli.CommandLine.ParameterException(spec.commandLine(),
          "--ops must be >= 1, --latency-samples >= 10, --throughput-mib >= 1");
    }
    for (String t : new String[] {heartbeat, peerTimeout}) {
      if (!t.matches("[1-9][0-9]*(ms|s)")) {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(),
            "--heartbeat and --peer-timeout take a duration like 200ms or 1s, not '" + t + "'");
      }
    }
    Path work = Files.createTempDirectory("replicator-demo-");
    Path primaryRoot = work.resolve("primary");
    Path replicaRoot = work.resolve("replica");
    Path localRoot = work.resolve("local-baseline");
    Files.createDirectories(localRoot);
    boolean ok;
    try (ReplicaServer replica = Replicator.replica(replicaRoot)
            .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("demo-replica").start();
        ReplicatedFileSystem fs = Replicator.primary(primaryRoot)
            .peer(replica.localAddress()).nodeId("demo-primary").mode(mode).open()) {
      out.printf("Replicator demo: primary and replica on loopback, %s mode%n", mode);
      out.printf("  primary root   %s%n", primaryRoot);
      out.printf("  replica        %s -> %s%n", hostPort(replica.localAddress()), replicaRoot);
      out.printf("  state          %s%n%n", describe(fs.status()));
      if (!fs.status().peerConnected()) {
        out.println("FAIL: the primary could not connect to the replica");
        return ReplicatorCommand.EXIT_FAILURE;
      }
      Workload.Result w = new Workload(fs, replicaRoot, threads, opsPerThread, seed, mode).run();
      w.print(out, threads, opsPerThread, seed);

      out.println();
      out.printf("Latency of a 4 KiB write + force, %d samples each, interleaved in blocks of 50%n", latencySamples);
      Latencies[] lat = writeForceLatency(localRoot.resolve("lat.dat"), fs.getPath("/bench/lat.dat"));
      out.printf("  %-22s %12s %12s %12s%n", "", "p50", "p99", "p99.9");
      out.printf("  %-22s %12s %12s %12s%n", "local", Latencies.millis(lat[0].percentile(50)),
          Latencies.millis(lat[0].percentile(99)), Latencies.millis(lat[0].percentile(99.9)));
      out.printf("  %-22s %12s %12s %12s%n", "replicated " + mode, Latencies.millis(lat[1].percentile(50)),
          Latencies.millis(lat[1].percentile(99)), Latencies.millis(lat[1].percentile(99.9)));
      out.printf("  %-22s %11.2fx %11.2fx %11.2fx%n", "ratio", ratio(lat[1].percentile(50), lat[0].percentile(50)),
          ratio(lat[1].percentile(99), lat[0].percentile(99)), ratio(lat[1].percentile(99.9), lat[0].percentile(99.9)));

      out.println();
      out.printf("Throughput of 1 MiB writes, %d MiB each, one force at the end%n", throughputMib);
      double local = throughput(localRoot.resolve("seq.dat"));
      double replicated = throughput(fs.getPath("/bench/seq.dat"));
      out.printf("  local %.0f MB/s   replicated %s %.0f MB/s   ratio %.2f%n", local, mode, replicated,
          replicated / local);
      Files.delete(fs.getPath("/bench/seq.dat"));
      Files.delete(localRoot.resolve("seq.dat"));

      out.println();
      out.printf("Primary state before close: %s%n", describe(fs.status()));
      fs.close();
      List<String> diff = TreeDiff.compare(primaryRoot, replicaRoot);
      long[] size = TreeDiff.filesAndBytes(primaryRoot);
      out.println();
      out.println("Verification");
      out.printf("  acknowledged writes found on the replica when they returned: %,d of %,d%n",
          w.checkedPresent(), w.checked());
      if (diff.isEmpty()) {
        out.printf("  replica tree equals primary tree byte for byte: %,d files, %s%n", size[0], mib(size[1]));
      } else {
        out.println("  replica tree DIFFERS from primary tree:");
        diff.forEach(d -> out.println("    " + d));
      }
      ok = diff.isEmpty() && w.checkedPresent() == w.checked() && w.errors().isEmpty();
      out.println();
      out.flush();
      boolean undone;
      try {
        undone = new DelayedFollowerDemo(out, Files.createDirectories(work.resolve("undo"))).run();
      } catch (IOException e) {
        out.println("Undo step FAILED: " + e.getMessage());
        undone = false;
      }
      ok &= undone;
      if (!noCycle) {
        out.println();
        out.flush();
        boolean cycle;
        try {
          cycle = new HaCycleDemo(out, Files.createDirectories(work.resolve("ha-cycle")), heartbeat, peerTimeout).run();
        } catch (IOException e) {
          out.println("HA cycle FAILED: " + e.getMessage());
          cycle = false;
        }
        keep |= !cycle; // the agents' and the application's logs are what an operator reads next
        ok &= cycle;
      }
      out.println();
      out.println(ok ? "Result: PASS" : "Result: FAIL");
    } finally {
      if (keep) {
        out.println("kept " + work);
      } else {
        deleteTree(work);
      }
    }
    return ok ? 0 : ReplicatorCommand.EXIT_FAILURE;
  }

  private Latencies[] writeForceLatency(Path local, Path replicated) throws IOException {
    Files.createDirectories(replicated.getParent());
    Latencies l = new Latencies();
    Latencies r = new Latencies();
    ByteBuffer block = ByteBuffer.allocateDirect(4096);
    new Random(seed).ints(4096, 0, 256).forEach(b -> block.put((byte) b));
    try (FileChannel lc = FileChannel.open(local, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileChannel rc = FileChannel.open(replicated, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int warm = 0; warm < 50; warm++) {
        timedWriteForce(lc, block, warm);
        timedWriteForce(rc, block, warm);
      }
      for (int done = 0; done < latencySamples; done += 50) {
        for (int i = 0; i < 50 && done + i < latencySamples; i++) {
          l.add(timedWriteForce(lc, block, done + i));
        }
        for (int i = 0; i < 50 && done + i < latencySamples; i++) {
          r.add(timedWriteForce(rc, block, done + i));
        }
      }
    }
    return new Latencies[] {l, r};
  }

  private static long timedWriteForce(FileChannel ch, ByteBuffer block, int i) throws IOException {
    long t0 = System.nanoTime();
    block.clear();
    long pos = (long) (i % 256) * 4096;
    while (block.hasRemaining()) {
      pos += ch.write(block, pos);
    }
    ch.force(false);
    return System.nanoTime() - t0;
  }

  private double throughput(Path file) throws IOException {
    Files.createDirectories(file.getParent());
    ByteBuffer mib = ByteBuffer.allocateDirect(1 << 20);
    new Random(seed).ints(1 << 20, 0, 256).forEach(b -> mib.put((byte) b));
    long t0 = System.nanoTime();
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      for (int i = 0; i < throughputMib; i++) {
        mib.clear();
        while (mib.hasRemaining()) {
          ch.write(mib);
        }
      }
      ch.force(false);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    return throughputMib * 1.048576 / seconds;
  }

  static double ratio(long a, long b) {
    return b == 0 ? 0 : (double) a / b;
  }

  static String mib(long bytes) {
    return String.format("%.1f MiB", bytes / 1048576.0);
  }

  static String hostPort(InetSocketAddress a) {
    return a.getHostString() + ":" + a.getPort();
  }

  static String describe(ReplicationStatus s) {
    return s.state() + (s.peerConnected() ? ", peer connected" : ", peer not connected")
        + (s.peerOutOfDate() ? ", peer OUT OF DATE (" + s.problem().orElse("") + ")" : "")
        + ", changes sent " + s.lastSequence() + ", applied " + s.appliedSequence()
        + (s.inSync() ? ", in sync" : ", not in sync");
  }

  private static void deleteTree(Path root) {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException ignored) {
          // best effort: a temp dir
        }
      });
    } catch (IOException ignored) {
      // best effort: a temp dir
    }
  }

  /**
   * The mixed workload: each thread owns a directory of files (so each of its writes can be checked
   * on the replica the moment it returns) and all threads overlap on shared files (checked by the
   * final tree comparison).
   */
  static final class Workload {
    private final ReplicatedFileSystem fs;
    private final Path replicaRoot;
    private final int threads;
    private final int ops;
    private final long seed;
    private final ReplicationMode mode;

    Workload(ReplicatedFileSystem fs, Path replicaRoot, int threads, int ops, long seed, ReplicationMode mode) {
      this.fs = fs;
      this.replicaRoot = replicaRoot;
      this.threads = threads;
      this.ops = ops;
      this.seed = seed;
      this.mode = mode;
    }

    record Result(long[] counts, long bytes, long checked, long checkedPresent, Latencies writes,
        double seconds, List<String> errors) {
      static final String[] KINDS = {"positional writes", "shared-file writes", "appends", "truncates",
          "renames", "deletes", "forces", "file creates", "directory creates"};

      void print(PrintWriter out, int threads, int ops, long seed) {
        long total = Arrays.stream(counts).sum();
        out.printf("Mixed workload: %d threads x %,d operations (seed %d) in %.1f s%n", threads, ops, seed, seconds);
        out.printf("  operations     %,d (%,.0f/s)%n", total, total / seconds);
        for (int i = 0; i < KINDS.length; i++) {
          out.printf("    %-20s %,8d%n", KINDS[i], counts[i]);
        }
        out.printf("  bytes written  %s%n", mib(bytes));
        out.printf("  write latency  p50 %s, p99 %s (replicated, as the application saw it)%n",
            Latencies.millis(writes.percentile(50)), Latencies.millis(writes.percentile(99)));
        errors.forEach(e -> out.println("  ERROR " + e));
      }
    }

    Result run() throws Exception {
      Files.createDirectories(fs.getPath("/shared"));
      for (int s = 0; s < 2; s++) {
        Files.write(fs.getPath("/shared/s" + s + ".dat"), new byte[64 * 1024]);
      }
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<Future<Worker>> futures = new ArrayList<>();
      long t0 = System.nanoTime();
      for (int t = 0; t < threads; t++) {
        Worker w = new Worker(t, new Random(seed * 31 + t));
        futures.add(pool.submit(() -> {
          w.run();
          return w;
        }));
      }
      long[] counts = new long[Result.KINDS.length];
      long bytes = 0;
      long checked = 0;
      long present = 0;
      Latencies writes = new Latencies();
      List<String> errors = new ArrayList<>();
      for (Future<Worker> f : futures) {
        Worker w = f.get();
        for (int i = 0; i < counts.length; i++) {
          counts[i] += w.counts[i];
        }
        bytes += w.bytes;
        checked += w.checked;
        present += w.present.get();
        writes.addAll(w.latencies);
        errors.addAll(w.errors);
      }
      pool.shutdown();
      double seconds = (System.nanoTime() - t0) / 1e9;
      return new Result(counts, bytes, checked, present, writes, seconds, errors);
    }

    /** One writer thread. */
    final class Worker {
      final int id;
      final Random rnd;
      final long[] counts = new long[Result.KINDS.length];
      final Latencies latencies = new Latencies();
      final List<String> errors = new ArrayList<>();
      final AtomicLong present = new AtomicLong();
      final List<String> files = new ArrayList<>();
      long bytes;
      long checked;
      int nextName;

      Worker(int id, Random rnd) {
        this.id = id;
        this.rnd = rnd;
      }

      void run() throws IOException {
        Path dir = fs.getPath("/t" + id);
        Files.createDirectories(dir);
        for (int i = 0; i < ops; i++) {
          int dice = rnd.nextInt(100);
          if (files.isEmpty() || dice < 8) {
            create(dir);
          } else if (dice < 40) {
            positionalWrite(dir);
          } else if (dice < 52) {
            sharedWrite();
          } else if (dice < 64) {
            append(dir);
          } else if (dice < 71) {
            truncate(dir);
          } else if (dice < 79) {
            rename(dir);
          } else if (dice < 85) {
            delete(dir);
          } else if (dice < 97) {
            force(dir);
          } else {
            mkdir(dir);
          }
        }
      }

      private String pick() {
        return files.get(rnd.nextInt(files.size()));
      }

      private byte[] randomBytes() {
        byte[] b = new byte[1 + rnd.nextInt(16 * 1024)];
        rnd.nextBytes(b);
        return b;
      }

      private void create(Path dir) throws IOException {
        String name = "f" + (nextName++) + ".dat";
        byte[] data = randomBytes();
        long t0 = System.nanoTime();
        Files.write(dir.resolve(name), data, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        latencies.add(System.nanoTime() - t0);
        files.add(name);
        counts[7]++;
        bytes += data.length;
        check(dir.getFileName() + "/" + name, 0, data);
      }

      private void positionalWrite(Path dir) throws IOException {
        String name = pick();
        byte[] data = randomBytes();
        long pos = rnd.nextInt(256 * 1024);
        try (FileChannel ch = FileChannel.open(dir.resolve(name), StandardOpenOption.WRITE)) {
          long t0 = System.nanoTime();
          writeFully(ch, data, pos);
          latencies.add(System.nanoTime() - t0);
        }
        counts[0]++;
        bytes += data.length;
        check(dir.getFileName() + "/" + name, pos, data);
      }

      private void sharedWrite() throws IOException {
        byte[] data = randomBytes();
        long pos = rnd.nextInt(64 * 1024);
        try (FileChannel ch = FileChannel.open(fs.getPath("/shared/s" + rnd.nextInt(2) + ".dat"),
            StandardOpenOption.WRITE)) {
          long t0 = System.nanoTime();
          writeFully(ch, data, pos);
          latencies.add(System.nanoTime() - t0);
        }
        counts[1]++;
        bytes += data.length;
      }

      private void append(Path dir) throws IOException {
        String name = pick();
        byte[] data = randomBytes();
        Path p = dir.resolve(name);
        long pos = Files.size(p);
        long t0 = System.nanoTime();
        Files.write(p, data, StandardOpenOption.APPEND);
        latencies.add(System.nanoTime() - t0);
        counts[2]++;
        bytes += data.length;
        check(dir.getFileName() + "/" + name, pos, data);
      }

      private void truncate(Path dir) throws IOException {
        String name = pick();
        try (FileChannel ch = FileChannel.open(dir.resolve(name), StandardOpenOption.WRITE)) {
          ch.truncate(ch.size() / 2);
        }
        counts[3]++;
      }

      private void rename(Path dir) throws IOException {
        String name = pick();
        String to = "f" + (nextName++) + ".dat";
        Files.move(dir.resolve(name), dir.resolve(to));
        files.remove(name);
        files.add(to);
        counts[4]++;
      }

      private void delete(Path dir) throws IOException {
        String name = pick();
        Files.delete(dir.resolve(name));
        files.remove(name);
        counts[5]++;
      }

      private void force(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir.resolve(pick()), StandardOpenOption.WRITE)) {
          ch.force(true);
        }
        counts[6]++;
      }

      private void mkdir(Path dir) throws IOException {
        Path sub = dir.resolve("d" + (nextName++));
        try {
          Files.createDirectory(sub);
          Files.write(sub.resolve("inner.dat"), randomBytes());
          Files.move(sub.resolve("inner.dat"), sub.resolve("moved.dat"), StandardCopyOption.REPLACE_EXISTING);
        } catch (FileAlreadyExistsException e) {
          errors.add("unexpected: " + e);
        }
        counts[8]++;
      }

      private void writeFully(FileChannel ch, byte[] data, long pos) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(data);
        while (b.hasRemaining()) {
          pos += ch.write(b, pos);
        }
      }

      /** In SYNC mode, the bytes of a write that returned must already be in the replica's file. */
      private void check(String relative, long pos, byte[] data) {
        if (mode != ReplicationMode.SYNC) {
          return;
        }
        checked++;
        Path file = replicaRoot.resolve(relative);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
          ByteBuffer b = ByteBuffer.allocate(data.length);
          long p = pos;
          while (b.hasRemaining()) {
            int n = ch.read(b, p);
            if (n < 0) {
              break;
            }
            p += n;
          }
          if (!b.hasRemaining() && Arrays.equals(b.array(), data)) {
            present.incrementAndGet();
          } else {
            errors.add("acknowledged write of " + data.length + " bytes at " + pos + " in " + relative
                + " was not on the replica when it returned");
          }
        } catch (NoSuchFileException e) {
          errors.add("acknowledged write to " + relative + ": file missing on the replica");
        } catch (IOException e) {
          errors.add("cannot read " + file + ": " + e);
        }
      }
    }
  }
}
