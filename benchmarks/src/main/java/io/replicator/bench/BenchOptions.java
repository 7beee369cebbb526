package io.replicator.bench;

import io.replicator.ReplicationMode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** The end-to-end comparison's command line: sizes, repetitions, what to run and where. */
final class BenchOptions {
  static final List<String> ALL_CASES = List.of("latency", "threads", "seq", "files", "resync", "failover");
  /** The default cases and the WAN follower, which runs only when asked for (it takes about a minute). */
  static final List<String> KNOWN_CASES = List.of("latency", "threads", "seq", "files", "resync", "failover", "wan");

  boolean quick;
  long seqBytes = 2L << 30;
  long resyncBytes = 2L << 30;
  int files = 20_000;
  int samples = 5_000;
  int threads = 16;
  /** Apply threads of the secondaries; 0 for the library's default. */
  int applyThreads;
  double threadSeconds = 3;
  int rounds = 3;
  /** SYNC variants with 1..followers ASYNC followers, for the per-follower cost. */
  int followers = 2;
  List<ReplicationMode> modes = List.of(ReplicationMode.SYNC, ReplicationMode.MEMORY, ReplicationMode.ASYNC);
  List<String> cases = ALL_CASES;
  List<String> failoverTimers = List.of("default", "tuned");
  Path dir;
  Path json;
  boolean help;

  static String usage() {
    return String.join("\n",
        "usage: replicator bench [options]",
        "",
        "Runs each case on local files (the baseline), on the floor (local files mirrored over plain",
        "blocking sockets to a thread that does pwrite and fdatasync: the least a synchronous mirror",
        "can do) and through a replicated file system in each mode, with the secondary on loopback, in",
        "one process; prints a table of medians with ratios to local and to the floor, and writes the",
        "figures as JSON.",
        "",
        "  --quick               smaller sizes and one round (about a minute)",
        "  --rounds N            times each case runs; medians are quoted (default 3, quick 1)",
        "  --cases LIST          of latency,threads,seq,files,resync,failover (default all), and wan (a follower",
        "                        behind a 10 Mbit/s, 50 ms link: compression, lag, the pair's latency)",
        "  --modes LIST          of SYNC,MEMORY,ASYNC (default all; local and the floor always run)",
        "  --samples N           4 KiB write+force samples per round and variant (default 5000, quick 1000)",
        "  --threads N           writer threads of the concurrent case (default 16)",
        "  --apply-threads N     apply threads (lanes) of each secondary (default: the library's)",
        "  --followers N         also run SYNC with 1..N ASYNC followers in the latency and threads",
        "                        cases, for the cost of each follower (default 2, 0 for none)",
        "  --thread-seconds S    measured seconds of the concurrent case (default 3, quick 1)",
        "  --seq-size SIZE       bytes of the 1 MiB sequential case, e.g. 2g, 512m (default 2g, quick 256m)",
        "  --files N             4 KiB files created per round (default 20000, quick 2000)",
        "  --resync-size SIZE    data set of the resync case (default 2g, quick 256m)",
        "  --failover-timers L   of default,tuned (default both)",
        "  --dir DIR             where temporary trees go (default: a new directory under java.io.tmpdir)",
        "  --json FILE           where the JSON goes (default benchmarks/results/latest.json)",
        "");
  }

  static BenchOptions parse(String[] args, Path defaultJson) {
    BenchOptions o = new BenchOptions();
    Map<String, String> given = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--quick")) {
        o.quick = true;
      } else if (a.equals("--help") || a.equals("-h")) {
        o.help = true;
      } else if (a.startsWith("--")) {
        String key = a;
        String value;
        int eq = a.indexOf('=');
        if (eq > 0) {
          key = a.substring(0, eq);
          value = a.substring(eq + 1);
        } else {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException(a + " needs a value");
          }
          value = args[++i];
        }
        given.put(key, value);
      } else {
        throw new IllegalArgumentException("unexpected argument '" + a + "'");
      }
    }
    if (o.quick) {
      o.seqBytes = 256L << 20;
      o.resyncBytes = 256L << 20;
      o.files = 2_000;
      o.samples = 1_000;
      o.threadSeconds = 1;
      o.rounds = 1;
    }
    o.json = defaultJson;
    for (Map.Entry<String, String> e : given.entrySet()) {
      String v = e.getValue();
      switch (e.getKey()) {
        case "--rounds" -> o.rounds = positiveInt(e.getKey(), v);
        case "--samples" -> o.samples = positiveInt(e.getKey(), v);
        case "--threads" -> o.threads = positiveInt(e.getKey(), v);
        case "--apply-threads" -> o.applyThreads = positiveInt(e.getKey(), v);
        case "--followers" -> o.followers = nonNegativeInt(e.getKey(), v);
        case "--thread-seconds" -> o.threadSeconds = Double.parseDouble(v);
        case "--seq-size" -> o.seqBytes = size(e.getKey(), v);
        case "--resync-size" -> o.resyncBytes = size(e.getKey(), v);
        case "--files" -> o.files = positiveInt(e.getKey(), v);
        case "--dir" -> o.dir = Path.of(v);
        case "--json" -> o.json = Path.of(v);
        case "--modes" -> o.modes = modes(v);
        case "--cases" -> o.cases = subset(e.getKey(), v, Set.copyOf(KNOWN_CASES));
        case "--failover-timers" -> o.failoverTimers = subset(e.getKey(), v, Set.of("default", "tuned"));
        default -> throw new IllegalArgumentException("unknown option " + e.getKey());
      }
    }
    if (o.seqBytes < 1 << 20 || o.resyncBytes < 8L << 20) {
      throw new IllegalArgumentException("--seq-size must be at least 1m and --resync-size at least 8m");
    }
    if (o.threadSeconds <= 0) {
      throw new IllegalArgumentException("--thread-seconds must be positive");
    }
    return o;
  }

  boolean runs(String name) {
    return cases.contains(name);
  }

  /** The options as the JSON records them. */
  Map<String, Object> describe() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("quick", quick);
    m.put("rounds", rounds);
    m.put("cases", cases);
    m.put("modes", modes.stream().map(Enum::name).toList());
    m.put("followers", followers);
    m.put("samples", samples);
    m.put("threads", threads);
    m.put("applyThreads", applyThreads);
    m.put("threadSeconds", threadSeconds);
    m.put("seqBytes", seqBytes);
    m.put("files", files);
    m.put("resyncBytes", resyncBytes);
    m.put("failoverTimers", failoverTimers);
    return m;
  }

  static long size(String key, String text) {
    String s = text.trim().toLowerCase(Locale.ROOT);
    long unit = 1;
    char last = s.isEmpty() ? ' ' : s.charAt(s.length() - 1);
    switch (last) {
      case 'k' -> unit = 1L << 10;
      case 'm' -> unit = 1L << 20;
      case 'g' -> unit = 1L << 30;
      default -> { }
    }
    String digits = unit == 1 ? s : s.substring(0, s.length() - 1);
    try {
      long v = Long.parseLong(digits);
      if (v <= 0) {
        throw new NumberFormatException();
      }
      return Math.multiplyExact(v, unit);
    } catch (NumberFormatException | ArithmeticException ex) {
      throw new IllegalArgumentException("bad size '" + text + "' for " + key + " (e.g. 2g, 512m, 4096)");
    }
  }

  private static int positiveInt(String key, String v) {
    try {
      int n = Integer.parseInt(v.trim());
      if (n > 0) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new IllegalArgumentException(key + " needs a positive number, not '" + v + "'");
  }

  private static int nonNegativeInt(String key, String v) {
    try {
      int n = Integer.parseInt(v.trim());
      if (n >= 0 && n <= 8) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new IllegalArgumentException(key + " needs a number from 0 to 8, not '" + v + "'");
  }

  private static List<ReplicationMode> modes(String v) {
    List<ReplicationMode> out = new ArrayList<>();
    for (String s : v.split(",")) {
      if (s.isBlank() || s.trim().equalsIgnoreCase("local")) {
        continue;
      }
      out.add(ReplicationMode.valueOf(s.trim().toUpperCase(Locale.ROOT)));
    }
    return List.copyOf(out);
  }

  private static List<String> subset(String key, String v, Set<String> known) {
    List<String> out = new ArrayList<>();
    for (String s : v.split(",")) {
      String t = s.trim().toLowerCase(Locale.ROOT);
      if (t.isEmpty()) {
        continue;
      }
      if (!known.contains(t)) {
        throw new IllegalArgumentException("unknown value '" + t + "' for " + key + " (known: " + known + ")");
      }
      out.add(t);
    }
    return List.copyOf(out);
  }
}
