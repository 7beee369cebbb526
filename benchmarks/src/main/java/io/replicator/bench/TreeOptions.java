package io.replicator.bench;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Options of {@code replicator bench tree}: parsed once, refused with a usage line when wrong. */
final class TreeOptions {
  static final List<String> ALL_CASES = List.of("verify", "stall", "incremental", "rename");
  /** Accepted in --cases: the initial sync always runs (the other cases start from it). */
  static final String INITIAL = "initial";

  int files = 100_000;
  int dirs = -1;
  int rounds = 1;
  int changedPercent = 1;
  /** The secondary's apply lanes; 0 for its default. */
  int applyThreads = 0;
  double stallBaselineSeconds = 10;
  List<String> cases = ALL_CASES;
  Path dir;
  Path json;
  boolean help;

  static String usage() {
    return String.join("\n",
        "usage: replicator bench tree [options]",
        "Builds a tree of 4 KiB files and measures, against rsync in the same run: the initial full sync",
        "into an empty secondary (always), then the cases below in this order.",
        "  --files N             files in the tree (default 100000; long form 1000000)",
        "  --dirs N              directories they are spread over (default files / 1000, at least 1)",
        "  --rounds N            rounds; medians are quoted (default 1)",
        "  --cases LIST          of initial,verify,stall,incremental,rename (default all; initial always runs)",
        "  --changed-percent P   files changed for the incremental case (default 1)",
        "  --apply-threads N     the secondary's apply lanes (default: its own default)",
        "  --dir DIR             where the temporary trees go (default java.io.tmpdir)",
        "  --json FILE           where the figures go (default benchmarks/results/tree.json)",
        "");
  }

  static TreeOptions parse(String[] args, Path defaultJson) {
    TreeOptions o = new TreeOptions();
    o.json = defaultJson;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--help") || a.equals("-h")) {
        o.help = true;
        continue;
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException("unknown option or missing value: " + a);
      }
      String v = args[++i];
      switch (a) {
        case "--files" -> o.files = positive(a, v);
        case "--dirs" -> o.dirs = positive(a, v);
        case "--rounds" -> o.rounds = positive(a, v);
        case "--changed-percent" -> {
          o.changedPercent = positive(a, v);
          if (o.changedPercent > 100) {
            throw new IllegalArgumentException("--changed-percent must be at most 100: " + v);
          }
        }
        case "--cases" -> {
          List<String> c = List.of(v.split(","));
          for (String name : c) {
            if (!Set.copyOf(ALL_CASES).contains(name) && !name.equals(INITIAL)) {
              throw new IllegalArgumentException("--cases: unknown case '" + name + "' (of " + ALL_CASES + ")");
            }
          }
          o.cases = c;
        }
        case "--apply-threads" -> o.applyThreads = positive(a, v);
        case "--dir" -> o.dir = Path.of(v);
        case "--json" -> o.json = Path.of(v);
        default -> throw new IllegalArgumentException("unknown option: " + a);
      }
    }
    if (o.dirs < 0) {
      o.dirs = Math.max(1, o.files / 1000);
    }
    return o;
  }

  boolean runs(String name) {
    return cases.contains(name);
  }

  Map<String, Object> describe() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("files", files);
    m.put("dirs", dirs);
    m.put("rounds", rounds);
    m.put("changedPercent", changedPercent);
    m.put("cases", cases);
    m.put("applyThreads", applyThreads);
    return m;
  }

  private static int positive(String name, String v) {
    try {
      int n = Integer.parseInt(v.replace("_", ""));
      if (n > 0) {
        return n;
      }
    } catch (NumberFormatException e) {
      // fall through
    }
    throw new IllegalArgumentException(name + " must be a positive integer: " + v);
  }
}
