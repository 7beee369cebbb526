package io.replicator.bench;

import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.testing.TcpProxy;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The end-to-end comparison: every case on plain local files, on the floor ({@link Floor}: the least
 * a synchronous mirror can do here) and through a replicated file system in each mode (secondary on
 * loopback), in one process and one run, a few rounds each; then a table of medians with ratios to
 * local and to the floor, the targets, and a JSON file.
 */
final class EndToEnd {
  private static final int BLOCK = 4096;
  private static final int MIB = 1 << 20;
  private static final String LOCAL = "local";
  private static final String LOCAL_TWICE = "local, written twice";
  private static final String FLOOR = "floor";
  private static final String INCREMENTAL = "incremental resync";
  private static final String FULL = "full checksum resync";
  private static final String FULL_EMPTY = "full resync, empty secondary";
  private static final String RSYNC = "rsync";

  private final BenchOptions options;
  private final PrintStream out;
  private final PrintStream progress;
  private final Results results = new Results();
  private final Random random = new Random(7);

  EndToEnd(BenchOptions options, PrintStream out, PrintStream progress) {
    this.options = options;
    this.out = out;
    this.progress = progress;
    results.defineCase("latency", "(1) 4 KiB write + force, 1 thread: latency", LOCAL, FLOOR);
    results.defineCase("threads", "(2) 4 KiB write + force, " + options.threads + " threads, one file each: throughput",
        LOCAL, FLOOR);
    results.defineCase("seq", "(3) 1 MiB sequential writes, " + mib(options.seqBytes)
        + ", one force at the end: throughput", LOCAL, LOCAL_TWICE, FLOOR);
    results.defineCase("files", "(4) create " + String.format("%,d", options.files) + " files of 4 KiB: rate", LOCAL,
        FLOOR);
    results.defineCase("resync", "(5) resync after 1% of " + mib(options.resyncBytes)
        + " changed in scattered 4 KiB blocks (SYNC, bytes counted on the wire, time from the moment the"
        + " secondary listens)", RSYNC);
    results.defineCase("failover", "(6) failover, library-level: secondary notices a silent primary by heartbeat"
        + " timeout, then opens as primary and completes a 4 KiB write + force", "default timers");
    results.defineCase("wan", "(7) an ASYNC follower over a 10 Mbit/s, 50 ms link: the pair's 4 KiB write + force,"
        + " compression and the follower's lag", "SYNC alone");
  }

  /** Runs everything; returns the process exit status. */
  int run() throws Exception {
    Path base = options.dir != null ? Files.createDirectories(options.dir) : Path.of(System.getProperty("java.io.tmpdir"));
    Path work = Files.createTempDirectory(base, "replicator-bench-");
    Thread cleanup = new Thread(() -> {
      try {
        TempTrees.delete(work);
      } catch (IOException ignored) {
        // best effort on an interrupted run
      }
    });
    Runtime.getRuntime().addShutdownHook(cleanup);
    Instant started = Instant.now();
    progress.printf("replicator bench: work directory %s%n", work);
    try {
      if (options.runs("latency") || options.runs("threads") || options.runs("seq") || options.runs("files")) {
        dataPath(work.resolve("data-path"));
      }
      if (options.runs("resync")) {
        resync(work.resolve("resync"));
      }
      if (options.runs("failover")) {
        failover(work.resolve("failover"));
      }
      if (options.runs("wan")) {
        new WanFollower(results, progress, Math.min(options.samples, 2000), options.quick ? 2L << 20 : 8L << 20)
            .run(work.resolve("wan"), options.rounds);
      }
    } finally {
      TempTrees.delete(work);
      Runtime.getRuntime().removeShutdownHook(cleanup);
    }
    targets();
    out.printf("%nReplicator end-to-end comparison, %s, %d cores, Java %s; %d round(s) per case%n", started,
        Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), options.rounds);
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

  // ---------------------------------------------------------------- cases 1-4: the data path

  private void dataPath(Path dir) throws Exception {
    List<Target> targets = new ArrayList<>();
    try {
      targets.add(Target.local(dir.resolve("local")));
      targets.add(Target.floor(dir.resolve("floor")));
      for (ReplicationMode mode : options.modes) {
        targets.add(Target.replicated(mode, dir.resolve(mode.name().toLowerCase()), options.applyThreads));
      }
      for (int n = 1; n <= options.followers; n++) {
        targets.add(Target.withFollowers(n, dir.resolve("followers-" + n), options.applyThreads));
      }
      for (int round = 1; round <= options.rounds; round++) {
        // Rotate the order so that no variant is always the first to run after a heavy case.
        List<Target> order = new ArrayList<>(targets);
        java.util.Collections.rotate(order, -(round - 1));
        for (Target t : order) {
          if (options.runs("latency")) {
            latency(t, round);
          }
        }
        for (Target t : order) {
          if (options.runs("threads")) {
            threads(t, round);
          }
        }
        for (Target t : order) {
          if (options.runs("seq") && t.followers == 0) {
            sequential(t, round);
            if (t.variant.equals(LOCAL)) {
              sequentialTwice(t, round);
            }
          }
        }
        for (Target t : order) {
          if (options.runs("files") && t.followers == 0) {
            files(t, round);
          }
        }
      }
    } finally {
      for (Target t : targets) {
        t.close();
      }
    }
  }

  private void latency(Target t, int round) throws IOException {
    progress.printf("round %d: 4 KiB write+force latency, %s%n", round, t.variant);
    long[] ns = new long[options.samples];
    ByteBuffer block = randomDirect(BLOCK);
    int slots = 256;
    try (BenchFile ch = t.open("latency.dat", false)) {
      // Allocate the blocks first: the samples then measure overwrites, not file growth.
      for (int i = 0; i < slots; i++) {
        ch.write(block.clear(), (long) i * BLOCK);
      }
      ch.force(true);
      int warmup = Math.min(500, options.samples);
      long cpu0 = 0;
      for (int i = -warmup; i < ns.length; i++) {
        if (i == 0) {
          cpu0 = PrimaryCpu.nanos();
        }
        block.clear();
        long t0 = System.nanoTime();
        ch.write(block, (long) Math.floorMod(i, slots) * BLOCK);
        ch.force(false);
        long d = System.nanoTime() - t0;
        if (i >= 0) {
          ns[i] = d;
        }
      }
      long cpu1 = PrimaryCpu.nanos();
      if (cpu0 >= 0 && cpu1 >= 0) {
        results.add("latency", t.variant, "primary cpu/op", "us", (cpu1 - cpu0) / 1e3 / ns.length);
      }
    }
    Arrays.sort(ns);
    results.add("latency", t.variant, "p50", "ms", percentile(ns, 50) / 1e6);
    results.add("latency", t.variant, "p99", "ms", percentile(ns, 99) / 1e6);
    results.add("latency", t.variant, "p99.9", "ms", percentile(ns, 99.9) / 1e6);
    t.awaitDrained();
  }

  private void threads(Target t, int round) throws Exception {
    progress.printf("round %d: %d threads of 4 KiB write+force, %s%n", round, options.threads, t.variant);
    int n = options.threads;
    AtomicBoolean measuring = new AtomicBoolean();
    AtomicBoolean stop = new AtomicBoolean();
    LongAdder ops = new LongAdder();
    CountDownLatch ready = new CountDownLatch(n);
    List<CompletableFuture<Void>> writers = new ArrayList<>();
    t.createDirectories("threads");
    for (int i = 0; i < n; i++) {
      String file = "threads/t-" + i + ".dat";
      writers.add(CompletableFuture.runAsync(() -> {
        try (BenchFile ch = t.open(file, false)) {
          ByteBuffer block = randomDirect(BLOCK);
          int slots = 64;
          for (int s = 0; s < slots; s++) {
            ch.write(block.clear(), (long) s * BLOCK);
          }
          ch.force(true);
          ready.countDown();
          for (long k = 0; !stop.get(); k++) {
            ch.write(block.clear(), (k % slots) * BLOCK);
            ch.force(false);
            if (measuring.get()) {
              ops.increment();
            }
          }
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }, runnable -> {
        Thread th = new Thread(runnable, "bench-writer");
        th.setDaemon(true);
        th.start();
      }));
    }
    try {
      if (!ready.await(60, TimeUnit.SECONDS)) {
        throw new IllegalStateException("writers did not start");
      }
      Thread.sleep(Math.max(200, (long) (options.threadSeconds * 200))); // warm-up, not counted
      long cpu0 = PrimaryCpu.nanos();
      measuring.set(true);
      long t0 = System.nanoTime();
      Thread.sleep((long) (options.threadSeconds * 1000));
      measuring.set(false);
      double seconds = (System.nanoTime() - t0) / 1e9;
      long cpu1 = PrimaryCpu.nanos();
      long done = ops.sum();
      results.add("threads", t.variant, "ops/s", "ops/s", done / seconds);
      if (cpu0 >= 0 && cpu1 >= 0 && done > 0) {
        results.add("threads", t.variant, "primary cpu/op", "us", (cpu1 - cpu0) / 1e3 / done);
      }
    } finally {
      stop.set(true);
      CompletableFuture.allOf(writers.toArray(CompletableFuture[]::new)).get(120, TimeUnit.SECONDS);
    }
    t.awaitDrained();
  }

  private void sequential(Target t, int round) throws IOException {
    progress.printf("round %d: 1 MiB sequential writes, %s, %s%n", round, mib(options.seqBytes), t.variant);
    ByteBuffer[] chunks = chunks();
    long t0 = System.nanoTime();
    try (BenchFile ch = t.open("seq.dat", true)) {
      long written = 0;
      for (int i = 0; written < options.seqBytes; i++) {
        ByteBuffer c = chunks[i % chunks.length].clear();
        c.limit((int) Math.min(MIB, options.seqBytes - written));
        while (c.hasRemaining()) {
          written += ch.write(c);
        }
      }
      ch.force(false);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    results.add("seq", t.variant, "throughput", "MB/s", options.seqBytes / 1e6 / seconds);
    t.delete("seq.dat");
    t.awaitDrained();
  }

  /** The physical work of a mirror on one disk: every chunk written to two files, both forced at the end. */
  private void sequentialTwice(Target t, int round) throws Exception {
    progress.printf("round %d: 1 MiB sequential writes, %s, %s%n", round, mib(options.seqBytes), LOCAL_TWICE);
    ByteBuffer[] chunks = chunks();
    long t0 = System.nanoTime();
    try (BenchFile ca = t.open("seq-a.dat", true); BenchFile cb = t.open("seq-b.dat", true)) {
      long written = 0;
      for (int i = 0; written < options.seqBytes; i++) {
        int n = (int) Math.min(MIB, options.seqBytes - written);
        ByteBuffer c = chunks[i % chunks.length];
        c.clear().limit(n);
        while (c.hasRemaining()) {
          ca.write(c);
        }
        c.clear().limit(n);
        while (c.hasRemaining()) {
          cb.write(c);
        }
        written += n;
      }
      // both fsyncs at once, as the primary overlaps its own with the secondary's
      CompletableFuture<Void> other = CompletableFuture.runAsync(() -> {
        try {
          cb.force(false);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      ca.force(false);
      other.get();
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    results.add("seq", LOCAL_TWICE, "throughput", "MB/s", options.seqBytes / 1e6 / seconds);
    t.delete("seq-a.dat");
    t.delete("seq-b.dat");
  }

  private void files(Target t, int round) throws IOException {
    progress.printf("round %d: create %,d files of 4 KiB, %s%n", round, options.files, t.variant);
    byte[] data = new byte[BLOCK];
    random.nextBytes(data);
    int perDir = 1000;
    int dirs = (options.files + perDir - 1) / perDir;
    String top = "files-" + round;
    for (int d = 0; d < dirs; d++) {
      t.createDirectories(String.format("%s/d%03d", top, d));
    }
    t.awaitDrained();
    long t0 = System.nanoTime();
    for (int i = 0; i < options.files; i++) {
      t.writeFile(String.format("%s/d%03d/f%05d", top, i / perDir, i), data);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    results.add("files", t.variant, "rate", "files/s", options.files / seconds);
    t.awaitDrained();
  }

  // ---------------------------------------------------------------- case 5: resync

  private void resync(Path dir) throws Exception {
    Path primaryRoot = dir.resolve("primary");
    Path replicaRoot = dir.resolve("replica");
    Path rsyncCopy = dir.resolve("rsync-copy");
    int filesInSet = 8;
    long perFile = options.resyncBytes / filesInSet / BLOCK * BLOCK;
    Optional<String> rsync = which("rsync");
    if (rsync.isEmpty()) {
      progress.println("rsync not installed: the resync case runs without the rsync comparison");
      results.note("resync", "rsync not installed: no rsync comparison in this run");
    }
    ReplicaServer replica = startReplica(replicaRoot, 0);
    int port = replica.localAddress().getPort();
    try (TcpProxy proxy = new TcpProxy(new InetSocketAddress("127.0.0.1", port))) {
      ReplicatedFileSystem fs = Replicator.primary(primaryRoot).peer(proxy.address()).nodeId("bench-primary")
          .mode(ReplicationMode.SYNC).open();
      try {
        progress.printf("resync: writing the %s data set through a SYNC primary%n", mib(perFile * filesInSet));
        ByteBuffer[] chunks = chunks();
        Files.createDirectories(fs.getPath("/set"));
        for (int f = 0; f < filesInSet; f++) {
          try (FileChannel ch = FileChannel.open(fs.getPath("/set/file-" + f), StandardOpenOption.CREATE,
              StandardOpenOption.WRITE)) {
            for (long w = 0; w < perFile; w += MIB) {
              ByteBuffer c = chunks[(int) ((f + w / MIB) % chunks.length)].clear();
              c.limit((int) Math.min(MIB, perFile - w));
              while (c.hasRemaining()) {
                ch.write(c);
              }
            }
            ch.force(false);
          }
        }
        if (rsync.isPresent()) {
          copyTree(primaryRoot.resolve("set"), rsyncCopy.resolve("set"));
        }
        results.note("resync", String.format("%,d-byte data set in %d files; every case changes 1%% of its blocks"
            + " (%,d blocks); both trees are in the page cache for every variant, and dirty pages are written back"
            + " (sync) before each", perFile * filesInSet, filesInSet,
            perFile * filesInSet / BLOCK / 100));
        for (int round = 1; round <= options.rounds; round++) {
          // incremental: the secondary was away while 1% changed; it comes back with its metadata
          progress.printf("round %d: incremental resync%n", round);
          replica.close();
          waitUntil(() -> !fs.status().peerConnected(), 30);
          long dirty = changeOnePercent(fs, filesInSet, perFile, 1000 + round);
          replica = timedResync(INCREMENTAL, proxy, fs, replicaRoot, port, dirty, false);
          if (rsync.isPresent()) {
            timedRsync(rsync.get(), primaryRoot, rsyncCopy, dirty);
          }

          // full by checksums: the secondary lost its metadata while 1% changed
          progress.printf("round %d: full checksum resync%n", round);
          replica.close();
          waitUntil(() -> !fs.status().peerConnected(), 30);
          dirty = changeOnePercent(fs, filesInSet, perFile, 2000 + round);
          TempTrees.delete(replicaRoot.resolve(Replicator.METADATA_DIRECTORY));
          replica = timedResync(FULL, proxy, fs, replicaRoot, port, dirty, true);
          if (rsync.isPresent()) {
            timedRsync(rsync.get(), primaryRoot, rsyncCopy, dirty);
          }
        }
        // once: a new, empty secondary receives everything
        progress.println("full resync of an empty secondary");
        replica.close();
        waitUntil(() -> !fs.status().peerConnected(), 30);
        TempTrees.delete(replicaRoot);
        replica = timedResync(FULL_EMPTY, proxy, fs, replicaRoot, port, perFile * filesInSet, true);
      } finally {
        fs.close();
      }
    } finally {
      replica.close();
    }
  }

  private ReplicaServer timedResync(String variant, TcpProxy proxy, ReplicatedFileSystem fs, Path replicaRoot,
      int port, long changedBytes, boolean full) throws Exception {
    settleWriteback();
    long up = proxy.upstreamBytes();
    long down = proxy.downstreamBytes();
    ReplicaServer replica = startReplica(replicaRoot, port);
    // counted from the moment the peer is reachable (its server listens): the primary's reconnect,
    // the handshake, the generation exchange and the data
    long t0 = System.nanoTime();
    waitUntil(() -> fs.status().inSync(), 1800, 1);
    double seconds = (System.nanoTime() - t0) / 1e9;
    long sent = proxy.upstreamBytes() - up;
    results.add("resync", variant, "time", "s", seconds);
    results.add("resync", variant, "bytes sent", "bytes", sent);
    results.add("resync", variant, "bytes back", "bytes", proxy.downstreamBytes() - down);
    results.add("resync", variant, "sent / changed", "x", (double) sent / changedBytes);
    return replica;
  }

  /**
   * Writes the dirty pages of the set-up back (sync(1)) before a timed variant, so that neither the
   * resync nor rsync pays for the kernel writing back gigabytes the set-up left behind; the trees
   * stay in the page cache.
   */
  private static void settleWriteback() throws Exception {
    Optional<String> sync = which("sync");
    if (sync.isEmpty()) {
      return;
    }
    Process p = new ProcessBuilder(sync.get()).redirectErrorStream(true).start();
    p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
    if (!p.waitFor(10, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new IOException("sync did not finish within 10 minutes");
    }
  }

  private static final Pattern RSYNC_SENT = Pattern.compile("Total bytes sent: ([\\d,]+)");
  private static final Pattern RSYNC_RECEIVED = Pattern.compile("Total bytes received: ([\\d,]+)");

  /** rsync's delta transfer of the same change between two local trees (sender and receiver over a pipe). */
  private void timedRsync(String rsync, Path from, Path to, long changedBytes) throws Exception {
    // --ignore-times: rsync's quick check compares whole seconds, and the change is often made within the
    // second of the previous sync; every file of the set did change, so this only makes rsync look at them.
    List<String> cmd = List.of(rsync, "-a", "--inplace", "--no-whole-file", "--ignore-times", "--stats",
        "--exclude=/" + Replicator.METADATA_DIRECTORY, from + "/", to + "/");
    settleWriteback();
    long t0 = System.nanoTime();
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String output;
    try (InputStream in = p.getInputStream()) {
      output = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException("rsync failed: " + output);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    long sent = number(RSYNC_SENT, output);
    results.add("resync", RSYNC, "time", "s", seconds);
    results.add("resync", RSYNC, "bytes sent", "bytes", sent);
    results.add("resync", RSYNC, "bytes back", "bytes", number(RSYNC_RECEIVED, output));
    results.add("resync", RSYNC, "sent / changed", "x", (double) sent / changedBytes);
  }

  private static long number(Pattern p, String text) {
    Matcher m = p.matcher(text);
    return m.find() ? Long.parseLong(m.group(1).replace(",", "")) : -1;
  }

  private static long changeOnePercent(ReplicatedFileSystem fs, int files, long perFile, long seed)
      throws IOException {
    Random rnd = new Random(seed);
    long blocksPerFile = perFile / BLOCK;
    long blocks = blocksPerFile * files;
    BitSet picked = new BitSet();
    while (picked.cardinality() < blocks / 100) {
      picked.set((int) (Math.floorMod(rnd.nextLong(), blocks)));
    }
    byte[] data = new byte[BLOCK];
    FileChannel[] channels = new FileChannel[files];
    try {
      for (int f = 0; f < files; f++) {
        channels[f] = FileChannel.open(fs.getPath("/set/file-" + f), StandardOpenOption.WRITE);
      }
      for (int b = picked.nextSetBit(0); b >= 0; b = picked.nextSetBit(b + 1)) {
        rnd.nextBytes(data);
        channels[(int) (b / blocksPerFile)].write(ByteBuffer.wrap(data), (b % blocksPerFile) * BLOCK);
      }
      for (FileChannel ch : channels) {
        ch.force(false);
      }
    } finally {
      for (FileChannel ch : channels) {
        if (ch != null) {
          ch.close();
        }
      }
    }
    return (long) picked.cardinality() * BLOCK;
  }

  // ---------------------------------------------------------------- case 6: failover

  private void failover(Path dir) throws Exception {
    for (String timers : options.failoverTimers) {
      Duration interval = timers.equals("tuned") ? Duration.ofMillis(100) : Duration.ofMillis(500);
      Duration timeout = timers.equals("tuned") ? Duration.ofMillis(500) : Duration.ofSeconds(3);
      String variant = timers + " timers";
      results.note("failover", String.format("%s: heartbeat every %d ms, peer lost after %d ms of silence", variant,
          interval.toMillis(), timeout.toMillis()));
      for (int round = 1; round <= options.rounds; round++) {
        progress.printf("round %d: failover with %s%n", round, variant);
        Path base = dir.resolve(timers + "-" + round);
        failoverOnce(base, variant, interval, timeout);
        TempTrees.delete(base);
      }
    }
    results.note("failover", "the primary is silenced (a proxy swallows its bytes, as after a power loss or a cut"
        + " link); the agent that runs the application is not part of this figure");
  }

  private void failoverOnce(Path base, String variant, Duration interval, Duration timeout) throws Exception {
    ReplicaServer replica = Replicator.replica(base.resolve("b")).listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("bench-b").heartbeat(interval, timeout).start();
    ReplicatedFileSystem promoted = null;
    try (TcpProxy proxy = new TcpProxy(replica.localAddress())) {
      ReplicatedFileSystem old = Replicator.primary(base.resolve("a")).peer(proxy.address()).nodeId("bench-a")
          .heartbeat(interval, timeout).open();
      try {
        try (FileChannel ch = FileChannel.open(old.getPath("/app.dat"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE)) {
          ch.write(randomDirect(MIB));
          ch.force(false);
        }
        waitUntil(() -> replica.status().peerConnected(), 30);
        Thread.sleep(interval.toMillis() * 2); // heartbeats flowing in both directions
        long t0 = System.nanoTime();
        proxy.partition(true);
        while (replica.status().peerConnected()) {
          if (System.nanoTime() - t0 > TimeUnit.SECONDS.toNanos(60)) {
            throw new IllegalStateException("the secondary never noticed the silent primary");
          }
          Thread.sleep(1);
        }
        long detected = System.nanoTime();
        replica.close();
        promoted = Replicator.primary(base.resolve("b")).peer(new InetSocketAddress("127.0.0.1",
            LoopbackPorts.unused())).nodeId("bench-b").heartbeat(interval, timeout)
            .connectTimeout(Duration.ofSeconds(1)).open();
        try (FileChannel ch = FileChannel.open(promoted.getPath("/app.dat"), StandardOpenOption.WRITE)) {
          ch.write(randomDirect(BLOCK), 0);
          ch.force(false);
        }
        long done = System.nanoTime();
        results.add("failover", variant, "detection", "ms", (detected - t0) / 1e6);
        results.add("failover", variant, "promotion", "ms", (done - detected) / 1e6);
        results.add("failover", variant, "total", "ms", (done - t0) / 1e6);
      } finally {
        proxy.cut();
        old.close();
      }
    } finally {
      replica.close();
      if (promoted != null) {
        promoted.close();
      }
    }
  }

  // ---------------------------------------------------------------- targets

  private void targets() {
    results.target("4 KiB write+force p50, SYNC", "<= 1.25x floor", results.ratio("latency", "SYNC", FLOOR, "p50"),
        "%.2fx floor", true, 1.25);
    results.target("4 KiB write+force p99, SYNC", "<= 2x floor", results.ratio("latency", "SYNC", FLOOR, "p99"),
        "%.2fx floor", true, 2.0);
    results.target(options.threads + " threads, SYNC", ">= 0.8x floor ops/s",
        results.ratio("threads", "SYNC", FLOOR, "ops/s"), "%.2fx floor", false, 0.8);
    results.target(String.format("%,d files, SYNC", options.files), ">= 0.8x floor files/s",
        results.ratio("files", "SYNC", FLOOR, "rate"), "%.2fx floor", false, 0.8);
    results.target("1 MiB sequential, SYNC", ">= 0.9x local twice",
        results.ratio("seq", "SYNC", LOCAL_TWICE, "throughput"), "%.2fx local twice", false, 0.9);
    Optional<Double> vsRsync = results.ratio("resync", INCREMENTAL, RSYNC, "time");
    results.target("resync of 1% changed, time", "<= 1/20 of rsync", vsRsync, "%.3fx rsync", true, 0.05);
    results.target("resync of 1% changed, bytes", "<= 1.1x dirty", results.median("resync", INCREMENTAL,
        "sent / changed"), "%.3fx dirty", true, 1.1);
    // MEMORY and ASYNC promise less than SYNC, so they must never cost more: a time at most SYNC's,
    // a rate at least SYNC's, in every case
    for (String mode : List.of("MEMORY", "ASYNC")) {
      results.target(mode + " p50 not above SYNC's", "<= 1x SYNC", results.ratio("latency", mode, "SYNC", "p50"),
          "%.2fx SYNC", true, 1.0);
      results.target(mode + " p99 not above SYNC's", "<= 1x SYNC", results.ratio("latency", mode, "SYNC", "p99"),
          "%.2fx SYNC", true, 1.0);
      results.target(mode + " threads not below SYNC's", ">= 1x SYNC", results.ratio("threads", mode, "SYNC",
          "ops/s"), "%.2fx SYNC", false, 1.0);
      results.target(mode + " sequential not below SYNC's", ">= 1x SYNC", results.ratio("seq", mode, "SYNC",
          "throughput"), "%.2fx SYNC", false, 1.0);
      results.target(mode + " files not below SYNC's", ">= 1x SYNC", results.ratio("files", mode, "SYNC", "rate"),
          "%.2fx SYNC", false, 1.0);
    }
    followerCosts();
    results.target("failover, tuned timers (library-level)", "<= 1 s",
        results.median("failover", "tuned timers", "total").map(ms -> ms / 1000), "%.3f s", true, 1.0);
  }

  static String followersVariant(int n) {
    return "SYNC+" + n + "f";
  }

  /** What each ASYNC follower adds to the primary: latency, throughput and CPU per write, against SYNC alone. */
  private void followerCosts() {
    for (int n = 1; n <= options.followers; n++) {
      String v = followersVariant(n);
      Optional<Double> p50 = results.ratio("latency", v, "SYNC", "p50");
      Optional<Double> ops = results.ratio("threads", v, "SYNC", "ops/s");
      Optional<Double> cpu = results.median("latency", v, "primary cpu/op");
      Optional<Double> cpuSync = results.median("latency", "SYNC", "primary cpu/op");
      Optional<Double> cpuThreads = results.median("threads", v, "primary cpu/op");
      Optional<Double> cpuThreadsSync = results.median("threads", "SYNC", "primary cpu/op");
      results.note("threads", String.format("per-follower cost, %d ASYNC follower(s): write+force p50 %s SYNC alone; %d threads %s SYNC"
          + " alone; primary CPU per write %s (1 thread), %s (%d threads)", n, ratioText(p50), options.threads,
          ratioText(ops), perFollower(cpu, cpuSync, n), perFollower(cpuThreads, cpuThreadsSync, n), options.threads));
    }
  }

  private static String ratioText(Optional<Double> r) {
    return r.map(x -> String.format("%.2fx", x)).orElse("n/a");
  }

  private static String perFollower(Optional<Double> with, Optional<Double> without, int n) {
    if (with.isEmpty() || without.isEmpty()) {
      return "n/a";
    }
    return String.format("%.1f us vs %.1f us, +%.1f us per follower", with.get(), without.get(),
        (with.get() - without.get()) / n);
  }

  // ---------------------------------------------------------------- helpers

  private static ReplicaServer startReplica(Path root, int port) throws IOException {
    return Replicator.replica(root).listen(new InetSocketAddress("127.0.0.1", port)).nodeId("bench-replica").start();
  }

  private ByteBuffer randomDirect(int size) {
    byte[] b = new byte[size];
    synchronized (random) {
      random.nextBytes(b);
    }
    return ByteBuffer.allocateDirect(size).put(b).flip();
  }

  /** A few distinct random 1 MiB chunks, reused in turn, so data generation stays out of the timing. */
  private ByteBuffer[] chunks() {
    ByteBuffer[] c = new ByteBuffer[8];
    for (int i = 0; i < c.length; i++) {
      c[i] = randomDirect(MIB);
    }
    return c;
  }

  private static long percentile(long[] sorted, double p) {
    int i = (int) Math.ceil(p / 100 * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  private static void waitUntil(BooleanSupplier condition, int seconds) throws InterruptedException {
    waitUntil(condition, seconds, 5);
  }

  private static void waitUntil(BooleanSupplier condition, int seconds, long pollMillis) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("condition not reached within " + seconds + " s");
      }
      Thread.sleep(pollMillis);
    }
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          Files.copy(p, target, StandardCopyOption.COPY_ATTRIBUTES);
        }
      }
    }
  }

  static Optional<String> which(String program) {
    String pathVar = System.getenv("PATH");
    if (pathVar == null) {
      return Optional.empty();
    }
    for (String d : pathVar.split(java.io.File.pathSeparator)) {
      if (d.isEmpty()) {
        continue;
      }
      Path p = Path.of(d, program);
      if (Files.isRegularFile(p) && Files.isExecutable(p)) {
        return Optional.of(p.toString());
      }
    }
    return Optional.empty();
  }

  private static String mib(long bytes) {
    return bytes % (1L << 30) == 0 ? (bytes >> 30) + " GiB" : String.format("%,d MiB", bytes >> 20);
  }

  /** A file a case writes, open for writing on a target. */
  private interface BenchFile extends Closeable {
    int write(ByteBuffer src, long position) throws IOException;

    /** A write at the current position, which then moves past it. */
    int write(ByteBuffer src) throws IOException;

    void force(boolean metadata) throws IOException;
  }

  /**
   * Where a case writes: plain local files, the floor (the least a synchronous mirror can do), or a
   * replicated file system with its secondary on loopback.
   */
  private abstract static class Target implements Closeable {
    final String variant;
    /** ASYNC followers fed besides the secondary; 0 for every other target. */
    int followers;

    Target(String variant) {
      this.variant = variant;
    }

    /** SYNC with its secondary and {@code n} ASYNC followers, every copy on loopback. */
    static Target withFollowers(int n, Path dir, int applyThreads) throws IOException {
      List<ReplicaServer> copies = new ArrayList<>();
      try {
        Replicator.PrimaryBuilder primary = Replicator.primary(dir.resolve("primary")).nodeId("bench-primary-f" + n)
            .mode(ReplicationMode.SYNC);
        for (int i = 0; i <= n; i++) {
          Replicator.ReplicaBuilder b = Replicator.replica(dir.resolve(i == 0 ? "replica" : "follower-" + i))
              .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId(i == 0 ? "bench-replica-f" + n : "bench-follower-" + i);
          if (applyThreads > 0) {
            b.applyThreads(applyThreads);
          }
          if (i > 0) {
            b.asFollower();
          }
          ReplicaServer copy = b.start();
          copies.add(copy);
          if (i == 0) {
            primary.peer(copy.localAddress());
          } else {
            primary.follower("f" + i, copy.localAddress(), ReplicationMode.ASYNC);
          }
        }
        ReplicatedFileSystem fs = primary.open();
        PathTarget t = new PathTarget(followersVariant(n), null, copies.get(0), fs, copies.subList(1, copies.size()));
        t.followers = n;
        if (!fs.status().peerConnected()) {
          t.close();
          throw new IOException("the primary with " + n + " follower(s) could not connect to its secondary");
        }
        return t;
      } catch (IOException | RuntimeException e) {
        for (ReplicaServer c : copies) {
          c.close();
        }
        throw e;
      }
    }

    static Target local(Path root) throws IOException {
      return new PathTarget(LOCAL, Files.createDirectories(root), null, null);
    }

    static Target floor(Path dir) throws IOException {
      return new FloorTarget(dir);
    }

    static Target replicated(ReplicationMode mode, Path dir, int applyThreads) throws IOException {
      Replicator.ReplicaBuilder builder = Replicator.replica(dir.resolve("replica"))
          .listen(new InetSocketAddress("127.0.0.1", 0)).nodeId("bench-replica-" + mode);
      if (applyThreads > 0) {
        builder.applyThreads(applyThreads);
      }
      ReplicaServer replica = builder.start();
      try {
        ReplicatedFileSystem fs = Replicator.primary(dir.resolve("primary")).peer(replica.localAddress())
            .nodeId("bench-primary-" + mode).mode(mode).open();
        if (!fs.status().peerConnected()) {
          fs.close();
          throw new IOException("the " + mode + " primary could not connect to its secondary");
        }
        return new PathTarget(mode.name(), null, replica, fs);
      } catch (IOException | RuntimeException e) {
        replica.close();
        throw e;
      }
    }

    /** Opens for writing, creating the file when missing (and emptying it when {@code truncate}). */
    abstract BenchFile open(String relative, boolean truncate) throws IOException;

    /** What {@code Files.write} does: create or empty the file, write {@code data}, close. */
    abstract void writeFile(String relative, byte[] data) throws IOException;

    abstract void createDirectories(String relative) throws IOException;

    abstract void delete(String relative) throws IOException;

    /** Waits until the secondary applied everything, so that ASYNC's backlog does not spill into the next case. */
    void awaitDrained() {}
  }

  /** Local files or a replicated file system: the cases go through {@code java.nio.file}. */
  private static final class PathTarget extends Target {
    private final Path localRoot;
    private final ReplicaServer replica;
    private final ReplicatedFileSystem fs;

    private final List<ReplicaServer> followerCopies;

    PathTarget(String variant, Path localRoot, ReplicaServer replica, ReplicatedFileSystem fs) {
      this(variant, localRoot, replica, fs, List.of());
    }

    PathTarget(String variant, Path localRoot, ReplicaServer replica, ReplicatedFileSystem fs,
        List<ReplicaServer> followerCopies) {
      super(variant);
      this.localRoot = localRoot;
      this.replica = replica;
      this.fs = fs;
      this.followerCopies = List.copyOf(followerCopies);
    }

    Path path(String relative) {
      return fs == null ? localRoot.resolve(relative) : fs.getPath("/" + relative);
    }

    @Override
    BenchFile open(String relative, boolean truncate) throws IOException {
      FileChannel ch = truncate
          ? FileChannel.open(path(relative), StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.WRITE)
          : FileChannel.open(path(relative), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      return new BenchFile() {
        @Override
        public int write(ByteBuffer src, long position) throws IOException {
          return ch.write(src, position);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
          return ch.write(src);
        }

        @Override
        public void force(boolean metadata) throws IOException {
          ch.force(metadata);
        }

        @Override
        public void close() throws IOException {
          ch.close();
        }
      };
    }

    @Override
    void writeFile(String relative, byte[] data) throws IOException {
      Files.write(path(relative), data);
    }

    @Override
    void createDirectories(String relative) throws IOException {
      Files.createDirectories(path(relative));
    }

    @Override
    void delete(String relative) throws IOException {
      Files.delete(path(relative));
    }

    @Override
    void awaitDrained() {
      if (fs == null) {
        return;
      }
      try {
        waitUntil(() -> fs.status().inSync()
            && replica.status().appliedSequence() >= fs.status().lastSequence()
            && fs.followers().values().stream().allMatch(ReplicationStatus::inSync), 600);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    @Override
    public void close() throws IOException {
      try {
        if (fs != null) {
          fs.close();
        }
      } finally {
        if (replica != null) {
          replica.close();
        }
        for (ReplicaServer f : followerCopies) {
          f.close();
        }
      }
    }
  }

  /** The floor: local files mirrored over plain blocking sockets to a thread per connection. */
  private static final class FloorTarget extends Target {
    private final Floor.Server server;
    private final Floor.Client client;

    FloorTarget(Path dir) throws IOException {
      super(FLOOR);
      this.server = new Floor.Server(dir.resolve("far"));
      try {
        this.client = new Floor.Client(dir.resolve("near"), server.address());
      } catch (IOException | RuntimeException e) {
        server.close();
        throw e;
      }
    }

    @Override
    BenchFile open(String relative, boolean truncate) throws IOException {
      Floor.File f = client.open(relative, truncate);
      return new BenchFile() {
        @Override
        public int write(ByteBuffer src, long position) throws IOException {
          return f.write(src, position);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
          return f.write(src);
        }

        @Override
        public void force(boolean metadata) throws IOException {
          f.force(metadata);
        }

        @Override
        public void close() throws IOException {
          f.close();
        }
      };
    }

    @Override
    void writeFile(String relative, byte[] data) throws IOException {
      try (Floor.File f = client.open(relative, true)) {
        f.write(ByteBuffer.wrap(data), 0);
      }
    }

    @Override
    void createDirectories(String relative) throws IOException {
      client.createDirectories(relative);
    }

    @Override
    void delete(String relative) throws IOException {
      client.delete(relative);
    }

    @Override
    public void close() throws IOException {
      try {
        client.close();
      } finally {
        server.close();
      }
    }
  }
}
