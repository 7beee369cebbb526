package io.replicator.bench;

import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.Replicator;
import io.replicator.VerifyReport;
import io.replicator.testing.TcpProxy;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Large trees: the initial full sync of a tree of 4 KiB files into an empty secondary, verify of
 * identical trees, the incremental resync after 1% of the files changed while the secondary was
 * away, a rename made meanwhile (bytes on the wire), and the application's 4 KiB write + force
 * latency while a full resync and a verify run. Each is set against rsync on the same trees in the
 * same run; the heap is sampled throughout.
 */
final class TreeBench {
  private static final int FILE_SIZE = 4096;
  private static final String OURS = "replicator";
  private static final String RSYNC = "rsync";

  private final TreeOptions options;
  private final PrintStream out;
  private final PrintStream progress;
  private final Results results = new Results();
  private final HeapSampler heap = new HeapSampler();
  private Path primaryRoot;
  private Path replicaRoot;
  private Path rsyncCopy;
  private String rsync;
  private int replicaPort;

  TreeBench(TreeOptions options, PrintStream out, PrintStream progress) {
    this.options = options;
    this.out = out;
    this.progress = progress;
    String tree = String.format("%,d files of 4 KiB in %,d directories", options.files, options.dirs);
    results.defineCase("initial", "(T1) initial full sync of " + tree + " into an empty secondary", RSYNC);
    results.defineCase("verify", "(T2) verify of identical trees of " + tree, RSYNC);
    results.defineCase("incremental", "(T3) resync after " + options.changedPercent + "% of " + tree
        + " changed while the secondary was away (time from the connection; with the primary's reconnect delay"
        + " after the replica's start too)", RSYNC);
    results.defineCase("rename", "(T4) resync after a directory of " + tree + " was renamed while the secondary"
        + " was away (bytes counted on the wire; time from the connection)", OURS);
    results.defineCase("stall", "(T5) application 4 KiB write + force, one thread, while a full resync or a verify"
        + " of " + tree + " runs", "no resync");
    results.defineCase("heap", "(T6) heap in use after collections (both nodes and the harness in one JVM, -Xmx "
        + mib(Runtime.getRuntime().maxMemory()) + ")", "initial full sync");
  }

  int run() throws Exception {
    Optional<String> found = EndToEnd.which("rsync");
    if (found.isEmpty()) {
      progress.println("replicator bench tree: rsync is not installed (apt-get install -y rsync); it is the baseline");
      return 1;
    }
    rsync = found.get();
    Path base = options.dir != null ? Files.createDirectories(options.dir) : Path.of(System.getProperty("java.io.tmpdir"));
    Path work = Files.createTempDirectory(base, "replicator-tree-");
    Thread cleanup = new Thread(() -> {
      try {
        TempTrees.delete(work);
      } catch (IOException ignored) {
        // best effort on an interrupted run
      }
    });
    Runtime.getRuntime().addShutdownHook(cleanup);
    Instant started = Instant.now();
    primaryRoot = work.resolve("primary");
    replicaRoot = work.resolve("replica");
    rsyncCopy = work.resolve("rsync-copy");
    replicaPort = LoopbackPorts.unused();
    heap.start();
    try {
      progress.printf("replicator bench tree: building %,d files in %s%n", options.files, work);
      long t0 = System.nanoTime();
      buildTree(primaryRoot, options.files, options.dirs);
      progress.printf("  built in %.1f s%n", (System.nanoTime() - t0) / 1e9);
      for (int round = 1; round <= options.rounds; round++) {
        progress.printf("round %d of %d%n", round, options.rounds);
        rounds(round);
      }
    } finally {
      heap.stop();
      TempTrees.delete(work);
      Runtime.getRuntime().removeShutdownHook(cleanup);
    }
    targets();
    out.printf("%nReplicator large-tree comparison, %s, %d cores, Java %s, max heap %s; %d round(s)%n", started,
        Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"),
        mib(Runtime.getRuntime().maxMemory()), options.rounds);
    results.print(out);
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("started", started.toString());
    header.put("seconds", Duration.between(started, Instant.now()).toMillis() / 1000.0);
    header.put("machine", Map.of("cores", Runtime.getRuntime().availableProcessors(),
        "java", System.getProperty("java.version"), "os", System.getProperty("os.name") + " "
            + System.getProperty("os.version"), "maxHeapBytes", Runtime.getRuntime().maxMemory()));
    header.put("options", options.describe());
    results.writeJson(options.json, header);
    out.printf("%nJSON written to %s%n", options.json.toAbsolutePath());
    return 0;
  }

  /** One round: every case on fresh copies; the cases share the trees, so they run in this order. */
  private void rounds(int round) throws Exception {
    TempTrees.delete(rsyncCopy);
    TempTrees.delete(replicaRoot);
    TempTrees.delete(primaryRoot.resolve(Replicator.METADATA_DIRECTORY));
    try {
      initial();
      if (options.runs("verify")) {
        verify();
      }
      if (options.runs("stall")) {
        stall();
      }
      if (options.runs("incremental")) {
        incremental(round);
      }
      if (options.runs("rename")) {
        rename(round);
      }
    } finally {
      closePair();
    }
  }

  /** (T1) rsync first, then ours, both from the same (cached) primary tree into an empty directory. */
  private void initial() throws Exception {
    progress.println("  initial: rsync -a into an empty directory");
    Run rs = rsync(List.of("-a"), primaryRoot, rsyncCopy);
    results.add("initial", RSYNC, "time", "s", rs.seconds());
    results.add("initial", RSYNC, "cpu", "s", rs.cpuSeconds());
    progress.printf("    %.2f s, cpu %.2f s%n", rs.seconds(), rs.cpuSeconds());
    progress.println("  initial: full sync into an empty secondary");
    replica = startReplica();
    heap.reset();
    double cpu0 = processCpuSeconds();
    long t0 = System.nanoTime();
    fs = Replicator.primary(primaryRoot).peer(new InetSocketAddress("127.0.0.1", replicaPort))
        .nodeId("tree-primary").open();
    awaitInSync();
    double ours = (System.nanoTime() - t0) / 1e9;
    double cpu = processCpuSeconds() - cpu0;
    threadCpu(cpu);
    results.add("initial", OURS, "time", "s", ours);
    results.add("initial", OURS, "cpu", "s", cpu);
    results.add("heap", "initial full sync", "max used", "MiB", heap.maxMiB());
    progress.printf("    %.2f s (%.2fx rsync), cpu %.2f s (%.2fx rsync), heap max %.0f MiB%n", ours,
        ours / rs.seconds(), cpu, cpu / rs.cpuSeconds(), heap.maxMiB());
  }

  /** (T2) identical trees: rsync compares every file by checksum, ours verifies every block. */
  private void verify() throws Exception {
    progress.println("  verify: rsync -a --checksum of identical trees");
    Run rv = rsync(List.of("-a", "--checksum"), primaryRoot, rsyncCopy);
    results.add("verify", RSYNC, "time", "s", rv.seconds());
    results.add("verify", RSYNC, "cpu", "s", rv.cpuSeconds());
    progress.printf("    %.2f s, cpu %.2f s%n", rv.seconds(), rv.cpuSeconds());
    heap.reset();
    double cpu0 = processCpuSeconds();
    long v0 = System.nanoTime();
    VerifyReport report = fs.verify();
    double ov = (System.nanoTime() - v0) / 1e9;
    double cpu = processCpuSeconds() - cpu0;
    threadCpu(cpu);
    results.add("verify", OURS, "time", "s", ov);
    results.add("verify", OURS, "cpu", "s", cpu);
    results.add("heap", "verify", "max used", "MiB", heap.maxMiB());
    progress.printf("    ours %.2f s (%.2fx rsync), cpu %.2f s (%.2fx rsync), %s%n", ov, ov / rv.seconds(), cpu,
        cpu / rv.cpuSeconds(), report.identical() ? "identical" : "DIFFERENCES: " + report.examples());
    if (!report.identical()) {
      results.note("verify", "verify reported differences on identical trees: " + report.examples());
    }
  }

  /** (T3) the secondary is away while a share of the files change; then it returns. */
  private void incremental(int round) throws Exception {
    progress.printf("  incremental: %d%% of the files change while the secondary is away%n", options.changedPercent);
    stopReplica();
    int changed = changeFiles(fs, options.files * options.changedPercent / 100, 100 + round);
    heap.reset();
    long i0 = System.nanoTime();
    double cpu0 = processCpuSeconds();
    replica = startReplica();
    long connected = awaitConnectedThenInSync();
    double total = (System.nanoTime() - i0) / 1e9;
    double cpu = processCpuSeconds() - cpu0;
    double oi = (System.nanoTime() - connected) / 1e9;
    Run ri = rsync(List.of("-a"), primaryRoot, rsyncCopy);
    results.add("incremental", RSYNC, "time", "s", ri.seconds());
    results.add("incremental", OURS, "time", "s", oi);
    results.add("incremental", OURS, "with reconnect", "s", total);
    results.add("incremental", OURS, "cpu", "s", cpu);
    results.add("incremental", RSYNC, "cpu", "s", ri.cpuSeconds());
    results.add("heap", "incremental resync", "max used", "MiB", heap.maxMiB());
    progress.printf("    ours %.3f s from the connection (%.3f s from the replica's start, with the primary's reconnect"
        + " delay; cpu %.3f s), rsync -a %.3f s (%.3fx; cpu %.3f s) for %,d changed files%n", oi, total, cpu,
        ri.seconds(), oi / ri.seconds(), ri.cpuSeconds(), changed);
  }

  /** (T4) a directory renamed while the secondary is away; the link runs through a byte-counting proxy. */
  private void rename(int round) throws Exception {
    progress.println("  rename: one directory renamed while the secondary is away");
    stopReplica();
    fs.close();
    fs = null;
    try (TcpProxy proxy = new TcpProxy(new InetSocketAddress("127.0.0.1", replicaPort))) {
      fs = Replicator.primary(primaryRoot).peer(proxy.address()).nodeId("tree-primary").open();
      String from = "/" + dirName(round % options.dirs);
      String to = from + "-renamed-" + round;
      long renamedBytes = treeBytes(primaryRoot.resolve(from.substring(1)));
      Files.move(fs.getPath(from), fs.getPath(to));
      long up = proxy.upstreamBytes();
      replica = startReplica();
      long connected = awaitConnectedThenInSync();
      double seconds = (System.nanoTime() - connected) / 1e9;
      long sent = proxy.upstreamBytes() - up;
      results.add("rename", OURS, "time", "s", seconds);
      results.add("rename", OURS, "bytes sent", "bytes", sent);
      results.add("rename", OURS, "renamed file data", "bytes", renamedBytes);
      progress.printf("    %.3f s, %,d bytes sent for a directory of %,d bytes%n", seconds, sent, renamedBytes);
      closePair();
    }
    // the rsync copy follows, so a later round starts from identical trees
    rsyncSeconds(List.of("-a", "--delete"), primaryRoot, rsyncCopy);
  }

  private ReplicaServer replica;
  private ReplicatedFileSystem fs;

  private void awaitInSync() throws InterruptedException {
    ReplicatedFileSystem f = fs;
    waitUntil(() -> f.status().inSync(), 3600);
  }

  /** Waits for the primary to connect, then for it to be in sync; returns when it connected (nanoTime). */
  private long awaitConnectedThenInSync() throws InterruptedException {
    ReplicatedFileSystem f = fs;
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(60);
    while (!f.status().peerConnected()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the primary did not reconnect");
      }
      Thread.sleep(1);
    }
    long connected = System.nanoTime();
    awaitInSync();
    return connected;
  }

  private void stopReplica() throws InterruptedException {
    replica.close();
    replica = null;
    ReplicatedFileSystem f = fs;
    waitUntil(() -> !f.status().peerConnected(), 60);
  }

  private void closePair() throws IOException {
    try {
      if (fs != null) {
        fs.close();
      }
    } finally {
      fs = null;
      if (replica != null) {
        replica.close();
      }
      replica = null;
    }
  }

  /**
   * The application's 4 KiB write + force on its own file: first with the pair in sync (the
   * baseline), then while the secondary, emptied, receives a full resync, then while a verify runs.
   */
  private void stall() throws Exception {
    // the control: the same writes to a plain local file on the same disk while rsync copies the
    // tree, to see what the disk alone does to a 4 KiB write + fsync when a tree is being written
    Path rsyncScratch = primaryRoot.resolveSibling("rsync-scratch");
    TempTrees.delete(rsyncScratch);
    try (AppWriter local = new AppWriter(primaryRoot.resolveSibling("local-app.dat"))) {
      progress.println("  stall: local writes (no replication) while rsync -a copies the tree");
      local.startRecording();
      rsyncSeconds(List.of("-a"), primaryRoot, rsyncScratch);
      local.stopRecording();
      results.add("stall", "local, during rsync -a", "p50", "ms", local.percentileMillis(50));
      results.add("stall", "local, during rsync -a", "p99", "ms", local.percentileMillis(99));
      results.add("stall", "local, during rsync -a", "max", "ms", local.maxMillis());
      results.add("stall", "local, during rsync -a", "writes", "n", local.count());
      progress.printf("    p50 %.3f ms, p99 %.3f ms, max %.1f ms%n", local.percentileMillis(50),
          local.percentileMillis(99), local.maxMillis());
    } finally {
      TempTrees.delete(rsyncScratch);
    }
    Path appFile = fs.getPath("/app-" + System.nanoTime() + ".dat");
    try (AppWriter writer = new AppWriter(appFile)) {
      progress.println("  stall: application writes with the pair in sync");
      writer.measure(options.stallBaselineSeconds);
      results.add("stall", "no resync", "p50", "ms", writer.percentileMillis(50));
      results.add("stall", "no resync", "p99", "ms", writer.percentileMillis(99));
      results.add("stall", "no resync", "max", "ms", writer.maxMillis());
      progress.printf("    p50 %.3f ms, p99 %.3f ms, max %.1f ms%n", writer.percentileMillis(50),
          writer.percentileMillis(99), writer.maxMillis());

      progress.println("  stall: application writes during a full resync into an emptied secondary");
      stopReplica();
      TempTrees.delete(replicaRoot);
      writer.startRecording();
      long t0 = System.nanoTime();
      replica = startReplica();
      awaitInSync();
      writer.stopRecording();
      double seconds = (System.nanoTime() - t0) / 1e9;
      results.add("stall", "during full resync", "p50", "ms", writer.percentileMillis(50));
      results.add("stall", "during full resync", "p99", "ms", writer.percentileMillis(99));
      results.add("stall", "during full resync", "max", "ms", writer.maxMillis());
      results.add("stall", "during full resync", "writes", "n", writer.count());
      progress.printf("    resync %.2f s: %,d writes, p50 %.3f ms, p99 %.3f ms, max %.1f ms%n", seconds,
          writer.count(), writer.percentileMillis(50), writer.percentileMillis(99), writer.maxMillis());

      progress.println("  stall: application writes during a verify");
      writer.startRecording();
      long v0 = System.nanoTime();
      VerifyReport report = fs.verify();
      writer.stopRecording();
      double vs = (System.nanoTime() - v0) / 1e9;
      results.add("stall", "during verify", "p50", "ms", writer.percentileMillis(50));
      results.add("stall", "during verify", "p99", "ms", writer.percentileMillis(99));
      results.add("stall", "during verify", "max", "ms", writer.maxMillis());
      results.add("stall", "during verify", "writes", "n", writer.count());
      progress.printf("    verify %.2f s (%s): %,d writes, p50 %.3f ms, p99 %.3f ms, max %.1f ms%n", vs,
          report.identical() ? "identical" : "DIFFERENCES " + report.examples(), writer.count(),
          writer.percentileMillis(50), writer.percentileMillis(99), writer.maxMillis());
      if (!report.identical()) {
        results.note("stall", "verify under writes reported differences: " + report.examples());
      }
    }
    // the application file stays: it is part of the tree from now on, on both sides
  }

  private void targets() {
    results.target("initial full sync / rsync -a", "<= 1.0x rsync", results.ratio("initial", OURS, RSYNC, "time"),
        "%.2fx", true, 1.0);
    results.target("verify / rsync -a --checksum", "<= 1.0x rsync", results.ratio("verify", OURS, RSYNC, "time"),
        "%.2fx", true, 1.0);
    results.target("incremental resync / rsync -a", "<= 0.05x rsync",
        results.ratio("incremental", OURS, RSYNC, "time"), "%.3fx", true, 0.05);
    results.target("rename: bytes sent / renamed data", "<= 0.01x", results.median("rename", OURS, "bytes sent")
        .flatMap(sent -> results.median("rename", OURS, "renamed file data").map(data -> sent / data)),
        "%.4fx", true, 0.01);
    for (String during : List.of("during full resync", "during verify")) {
      results.target("longest write " + during, "<= 100 ms", results.median("stall", during, "max"), "%.1f ms",
          true, 100);
      results.target("p99 " + during + " / no resync", "<= 3.0x",
          results.ratio("stall", during, "no resync", "p99"), "%.2fx", true, 3.0);
    }
    results.target("heap max used, initial sync", "<= 256 MiB", results.median("heap", "initial full sync", "max used"),
        "%.0f MiB", true, 256);
  }

  // ---------------------------------------------------------------- trees

  private static String dirName(int d) {
    return String.format("d%05d", d);
  }

  /** {@code files} files of 4 KiB of distinct random bytes, spread over {@code dirs} directories. */
  static void buildTree(Path root, int files, int dirs) throws IOException {
    Files.createDirectories(root);
    SplittableRandom random = new SplittableRandom(42);
    ByteBuffer data = ByteBuffer.allocateDirect(FILE_SIZE);
    for (int d = 0; d < dirs; d++) {
      Files.createDirectories(root.resolve(dirName(d)));
    }
    for (int i = 0; i < files; i++) {
      data.clear();
      while (data.hasRemaining()) {
        data.putLong(random.nextLong());
      }
      data.flip();
      Path p = root.resolve(dirName(i % dirs)).resolve(String.format("f%08d", i));
      try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        while (data.hasRemaining()) {
          ch.write(data);
        }
      }
    }
  }

  /** Rewrites the one block of {@code count} files picked at random, through the replicated file system. */
  private int changeFiles(ReplicatedFileSystem fs, int count, long seed) throws IOException {
    SplittableRandom random = new SplittableRandom(seed);
    BitSet picked = new BitSet(options.files);
    while (picked.cardinality() < count) {
      picked.set(random.nextInt(options.files));
    }
    ByteBuffer data = ByteBuffer.allocate(FILE_SIZE);
    for (int i = picked.nextSetBit(0); i >= 0; i = picked.nextSetBit(i + 1)) {
      data.clear();
      while (data.hasRemaining()) {
        data.putLong(random.nextLong());
      }
      data.flip();
      Path p = fs.getPath("/" + dirName(i % options.dirs), String.format("f%08d", i));
      if (!Files.exists(p)) {
        continue; // renamed away in an earlier round
      }
      try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
        while (data.hasRemaining()) {
          ch.write(data, data.position());
        }
      }
    }
    return count;
  }

  private static long treeBytes(Path dir) throws IOException {
    try (var s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).mapToLong(p -> {
        try {
          return Files.size(p);
        } catch (IOException e) {
          return 0;
        }
      }).sum();
    }
  }

  // ---------------------------------------------------------------- rsync and the replica

  /** Seconds and CPU seconds (user + system, of rsync and the processes it starts) of one rsync run. */
  private record Run(double seconds, double cpuSeconds) {}

  private double rsyncSeconds(List<String> flags, Path from, Path to) throws Exception {
    return rsync(flags, from, to).seconds();
  }

  private Run rsync(List<String> flags, Path from, Path to) throws Exception {
    List<String> cmd = new ArrayList<>();
    // through bash, whose `times` reports the CPU its children (rsync and its helpers) used
    cmd.add("bash");
    cmd.add("-c");
    cmd.add("\"$@\" && times");
    cmd.add("rsync");
    cmd.add(rsync);
    cmd.addAll(flags);
    cmd.add("--exclude=/" + Replicator.METADATA_DIRECTORY);
    cmd.add(from + "/");
    cmd.add(to + "/");
    long t0 = System.nanoTime();
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String output;
    try (InputStream in = p.getInputStream()) {
      output = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    if (!p.waitFor(60, TimeUnit.MINUTES) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException("rsync failed: " + output);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    String[] lines = output.strip().split("\n");
    double cpu = Double.NaN;
    if (lines.length >= 1) {
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)m([\\d.]+)s\\s+(\\d+)m([\\d.]+)s")
          .matcher(lines[lines.length - 1]);
      if (m.find()) {
        cpu = Integer.parseInt(m.group(1)) * 60 + Double.parseDouble(m.group(2))
            + Integer.parseInt(m.group(3)) * 60 + Double.parseDouble(m.group(4));
      }
    }
    return new Run(seconds, cpu);
  }

  private final Map<Long, Long> lastThreadCpu = new java.util.HashMap<>();

  /** With {@code REPLICATOR_BENCH_THREADS} set: the CPU each live thread used, to see where it went. */
  private void threadCpu(double processCpu) {
    if (System.getenv("REPLICATOR_BENCH_THREADS") == null) {
      return;
    }
    var threads = ManagementFactory.getThreadMXBean();
    Map<String, Double> byName = new java.util.TreeMap<>();
    double sum = 0;
    for (long id : threads.getAllThreadIds()) {
      var info = threads.getThreadInfo(id);
      long ns = threads.getThreadCpuTime(id);
      if (info == null || ns <= 0) {
        continue;
      }
      double delta = (ns - lastThreadCpu.getOrDefault(id, 0L)) / 1e9;
      lastThreadCpu.put(id, ns);
      String name = info.getThreadName().replaceAll("-\\d+$", "-N");
      byName.merge(name, delta, Double::sum);
      sum += delta;
    }
    progress.printf("    cpu by thread (since the last report), process delta %.2f s, live threads %.2f s:%n", processCpu,
        sum);
    byName.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue().reversed()).limit(15)
        .forEach(e -> progress.printf("      %-40s %.2f s%n", e.getKey(), e.getValue()));
    long gcMillis = 0;
    for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      gcMillis += gc.getCollectionTime();
    }
    progress.printf("      gc (since start) %.2f s, jit (since start) %.2f s%n", gcMillis / 1e3,
        ManagementFactory.getCompilationMXBean().getTotalCompilationTime() / 1e3);
  }

  /** CPU seconds this process (both nodes, the harness) used so far. */
  private static double processCpuSeconds() {
    var os = ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return sun.getProcessCpuTime() / 1e9;
    }
    return Double.NaN;
  }

  private ReplicaServer startReplica() throws IOException {
    Replicator.ReplicaBuilder b = Replicator.replica(replicaRoot)
        .listen(new InetSocketAddress("127.0.0.1", replicaPort)).nodeId("tree-replica");
    if (options.applyThreads > 0) {
      b.applyThreads(options.applyThreads);
    }
    return b.start();
  }

  private static void waitUntil(BooleanSupplier condition, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("condition not reached within " + seconds + " s");
      }
      Thread.sleep(10); // coarse enough to leave the CPU to the nodes
    }
  }

  private static String mib(long bytes) {
    return String.format(Locale.ROOT, "%,d MiB", bytes >> 20);
  }

  // ---------------------------------------------------------------- helpers

  /**
   * The heap that stays in use: after every collection, the heap used is recorded (garbage not
   * yet collected does not count); the maximum since the last reset.
   */
  private static final class HeapSampler {
    private volatile long max;
    private final List<javax.management.NotificationEmitter> emitters = new ArrayList<>();
    private final javax.management.NotificationListener listener = (n, handback) -> {
      if (!n.getType().equals(com.sun.management.GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION)) {
        return;
      }
      var info = com.sun.management.GarbageCollectionNotificationInfo.from(
          (javax.management.openmbean.CompositeData) n.getUserData());
      long used = 0;
      for (var usage : info.getGcInfo().getMemoryUsageAfterGc().values()) {
        used += usage.getUsed();
      }
      synchronized (this) {
        max = Math.max(max, used);
      }
    };

    void start() {
      for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) {
        if (gc instanceof javax.management.NotificationEmitter e) {
          e.addNotificationListener(listener, null, null);
          emitters.add(e);
        }
      }
    }

    void reset() {
      System.gc();
      synchronized (this) {
        max = 0;
      }
    }

    /** The largest heap in use after a collection since the reset (a collection is forced first). */
    double maxMiB() {
      System.gc();
      return max / (double) (1 << 20);
    }

    void stop() {
      for (var e : emitters) {
        try {
          e.removeNotificationListener(listener);
        } catch (javax.management.ListenerNotFoundException ignored) {
          // already gone
        }
      }
    }
  }

  /** One application thread: 4 KiB positional write + force over 256 blocks of its own file, in a loop. */
  private static final class AppWriter implements AutoCloseable {
    private final FileChannel channel;
    private final Thread thread;
    private final ByteBuffer block = ByteBuffer.allocateDirect(FILE_SIZE);
    private volatile boolean running = true;
    private volatile boolean recording;
    private long[] samples = new long[1 << 16];
    private int count;
    private IOException failure;

    AppWriter(Path file) throws IOException {
      this.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      SplittableRandom r = new SplittableRandom(3);
      while (block.hasRemaining()) {
        block.putLong(r.nextLong());
      }
      this.thread = new Thread(this::loop, "app-writer");
      thread.setDaemon(true);
      thread.start();
    }

    private void loop() {
      long i = 0;
      try {
        while (running) {
          block.clear();
          long t0 = System.nanoTime();
          channel.write(block, (i++ % 256) * FILE_SIZE);
          channel.force(false);
          long t = System.nanoTime() - t0;
          if (recording) {
            synchronized (this) {
              if (count == samples.length) {
                samples = java.util.Arrays.copyOf(samples, count * 2);
              }
              samples[count++] = t;
            }
          }
        }
      } catch (IOException e) {
        synchronized (this) {
          failure = e;
        }
      }
    }

    synchronized void startRecording() throws IOException {
      if (failure != null) {
        throw failure;
      }
      count = 0;
      recording = true;
    }

    synchronized void stopRecording() throws IOException {
      recording = false;
      if (failure != null) {
        throw failure;
      }
    }

    void measure(double seconds) throws Exception {
      startRecording();
      Thread.sleep((long) (seconds * 1000));
      stopRecording();
    }

    synchronized int count() {
      return count;
    }

    synchronized double percentileMillis(double p) {
      if (count == 0) {
        return Double.NaN;
      }
      long[] sorted = java.util.Arrays.copyOf(samples, count);
      java.util.Arrays.sort(sorted);
      int i = (int) Math.ceil(p / 100 * sorted.length) - 1;
      return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }

    synchronized double maxMillis() {
      long m = 0;
      for (int i = 0; i < count; i++) {
        m = Math.max(m, samples[i]);
      }
      return m / 1e6;
    }

    @Override
    public void close() throws Exception {
      running = false;
      thread.join(10_000);
      channel.close();
    }
  }
}
