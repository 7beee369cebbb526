package io.replicator.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The figures of one run: per case, variant and metric the value of each round; tables of medians
 * with ratios to the case's baselines; the targets; and the JSON form of all of it.
 */
final class Results {

  /** One metric of one variant of one case, a value per round. */
  static final class Series {
    final String caseId;
    final String variant;
    final String metric;
    final String unit;
    final List<Double> values = new ArrayList<>();

    Series(String caseId, String variant, String metric, String unit) {
      this.caseId = caseId;
      this.variant = variant;
      this.metric = metric;
      this.unit = unit;
    }

    double median() {
      return Results.median(values);
    }
  }

  /** A speed target: {@code met} is empty when it could not be measured in this run. */
  record Target(String name, String goal, String measured, Optional<Boolean> met) {}

  private final Map<String, String> titles = new LinkedHashMap<>();
  private final Map<String, List<String>> baselines = new LinkedHashMap<>();
  private final Map<String, List<String>> notes = new LinkedHashMap<>();
  private final List<Series> series = new ArrayList<>();
  private final List<Target> targets = new ArrayList<>();

  /** Declares a case, in the order tables are printed; ratios are taken against {@code baselines}. */
  void defineCase(String caseId, String title, String... baselineVariants) {
    titles.put(caseId, title);
    baselines.put(caseId, List.of(baselineVariants));
  }

  void add(String caseId, String variant, String metric, String unit, double value) {
    Series s = find(caseId, variant, metric).orElse(null);
    if (s == null) {
      s = new Series(caseId, variant, metric, unit);
      series.add(s);
    }
    s.values.add(value);
  }

  void note(String caseId, String text) {
    notes.computeIfAbsent(caseId, k -> new ArrayList<>()).add(text);
  }

  Optional<Double> median(String caseId, String variant, String metric) {
    return find(caseId, variant, metric).map(Series::median);
  }

  /** {@code median(variant) / median(baseline)} of one metric, when both were measured. */
  Optional<Double> ratio(String caseId, String variant, String baseline, String metric) {
    Optional<Double> v = median(caseId, variant, metric);
    Optional<Double> b = median(caseId, baseline, metric);
    if (v.isEmpty() || b.isEmpty() || b.get() == 0) {
      return Optional.empty();
    }
    return Optional.of(v.get() / b.get());
  }

  void target(String name, String goal, Optional<Double> measured, String measuredFormat, boolean atMost,
      double bound) {
    if (measured.isEmpty()) {
      // the case did not run (left out with --cases or --modes), or could not be compared (no rsync)
      targets.add(new Target(name, goal, "not measured", Optional.empty()));
      return;
    }
    double m = measured.get();
    boolean met = atMost ? m <= bound : m >= bound;
    targets.add(new Target(name, goal, String.format(Locale.ROOT, measuredFormat, m), Optional.of(met)));
  }

  void print(PrintStream out) {
    for (String caseId : titles.keySet()) {
      List<Series> rows = series.stream().filter(s -> s.caseId.equals(caseId)).toList();
      if (rows.isEmpty()) {
        continue;
      }
      Set<String> variants = new LinkedHashSet<>();
      Set<String> metrics = new LinkedHashSet<>();
      Map<String, String> units = new LinkedHashMap<>();
      int rounds = 0;
      for (Series s : rows) {
        variants.add(s.variant);
        metrics.add(s.metric);
        units.put(s.metric, s.unit);
        rounds = Math.max(rounds, s.values.size());
      }
      List<String> ratioColumns = new ArrayList<>();
      List<String[]> ratioKeys = new ArrayList<>();
      for (String b : baselines.get(caseId)) {
        if (!variants.contains(b)) {
          continue;
        }
        for (String m : metrics) {
          ratioColumns.add(m + " / " + b);
          ratioKeys.add(new String[] {m, b});
        }
      }
      out.println();
      out.printf("%s  (median of %d round%s)%n", titles.get(caseId), rounds, rounds == 1 ? "" : "s");
      int w0 = Math.max(8, variants.stream().mapToInt(String::length).max().orElse(8));
      List<String> header = new ArrayList<>();
      header.add(pad("", w0));
      for (String m : metrics) {
        header.add(leftPad(m + " (" + units.get(m) + ")", width(m + " (" + units.get(m) + ")")));
      }
      for (String r : ratioColumns) {
        header.add(leftPad(r, width(r)));
      }
      out.println("  " + String.join("  ", header));
      for (String v : variants) {
        List<String> cells = new ArrayList<>();
        cells.add(pad(v, w0));
        for (String m : metrics) {
          String h = m + " (" + units.get(m) + ")";
          cells.add(leftPad(median(caseId, v, m).map(Results::format).orElse("-"), width(h)));
        }
        for (int i = 0; i < ratioKeys.size(); i++) {
          String[] k = ratioKeys.get(i);
          Optional<Double> r = ratio(caseId, v, k[1], k[0]);
          cells.add(leftPad(r.map(x -> String.format(Locale.ROOT, "%.3fx", x)).orElse("-"),
              width(ratioColumns.get(i))));
        }
        out.println("  " + String.join("  ", cells));
      }
      for (String n : notes.getOrDefault(caseId, List.of())) {
        out.println("  note: " + n);
      }
    }
    if (!targets.isEmpty()) {
      out.println();
      out.println("Targets (ratios of medians measured side by side in this run)");
      int w = targets.stream().mapToInt(t -> t.name().length()).max().orElse(10);
      for (Target t : targets) {
        String verdict = t.met().map(m -> m ? "met" : "NOT MET").orElse("not measured");
        out.printf("  %-" + w + "s  goal %-22s measured %-24s %s%n", t.name(), t.goal(), t.measured(), verdict);
      }
    }
  }

  void writeJson(Path file, Map<String, Object> header) throws IOException {
    Map<String, Object> root = new LinkedHashMap<>(header);
    List<Object> cases = new ArrayList<>();
    for (String caseId : titles.keySet()) {
      List<Object> rows = new ArrayList<>();
      for (Series s : series) {
        if (!s.caseId.equals(caseId)) {
          continue;
        }
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("variant", s.variant);
        row.put("metric", s.metric);
        row.put("unit", s.unit);
        row.put("values", s.values);
        row.put("median", s.median());
        Map<String, Object> ratios = new LinkedHashMap<>();
        for (String b : baselines.get(caseId)) {
          ratio(caseId, s.variant, b, s.metric).ifPresent(r -> ratios.put(b, r));
        }
        row.put("ratioTo", ratios);
        rows.add(row);
      }
      if (rows.isEmpty()) {
        continue;
      }
      Map<String, Object> c = new LinkedHashMap<>();
      c.put("id", caseId);
      c.put("title", titles.get(caseId));
      c.put("series", rows);
      c.put("notes", notes.getOrDefault(caseId, List.of()));
      cases.add(c);
    }
    root.put("cases", cases);
    List<Object> ts = new ArrayList<>();
    for (Target t : targets) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", t.name());
      m.put("goal", t.goal());
      m.put("measured", t.measured());
      m.put("met", t.met().orElse(null));
      ts.add(m);
    }
    root.put("targets", ts);
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    StringBuilder sb = new StringBuilder();
    Json.write(sb, root, 0);
    sb.append('\n');
    Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
  }

  private Optional<Series> find(String caseId, String variant, String metric) {
    return series.stream()
        .filter(s -> s.caseId.equals(caseId) && s.variant.equals(variant) && s.metric.equals(metric))
        .findFirst();
  }

  static double median(List<Double> values) {
    if (values.isEmpty()) {
      return Double.NaN;
    }
    double[] v = values.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(v);
    int n = v.length;
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }

  static String format(double v) {
    double a = Math.abs(v);
    if (a == 0) {
      return "0";
    }
    if (a < 10) {
      return String.format(Locale.ROOT, "%.3f", v);
    }
    if (a < 1000) {
      return String.format(Locale.ROOT, "%.1f", v);
    }
    return String.format(Locale.ROOT, "%,.0f", v);
  }

  private static int width(String header) {
    return Math.max(10, header.length());
  }

  private static String pad(String s, int w) {
    return s.length() >= w ? s : s + " ".repeat(w - s.length());
  }

  private static String leftPad(String s, int w) {
    return s.length() >= w ? s : " ".repeat(w - s.length()) + s;
  }

  /** Just enough JSON for maps, lists, strings, numbers, booleans and null; no library for one file. */
  static final class Json {
    private Json() {}

    static void write(StringBuilder sb, Object v, int indent) {
      if (v == null) {
        sb.append("null");
      } else if (v instanceof String s) {
        string(sb, s);
      } else if (v instanceof Double d) {
        sb.append(d.isNaN() || d.isInfinite() ? "null" : Double.toString(d));
      } else if (v instanceof Float f) {
        write(sb, f.doubleValue(), indent);
      } else if (v instanceof Number || v instanceof Boolean) {
        sb.append(v);
      } else if (v instanceof Map<?, ?> m) {
        sb.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : m.entrySet()) {
          sb.append(first ? "\n" : ",\n").append("  ".repeat(indent + 1));
          first = false;
          string(sb, String.valueOf(e.getKey()));
          sb.append(": ");
          write(sb, e.getValue(), indent + 1);
        }
        if (!first) {
          sb.append('\n').append("  ".repeat(indent));
        }
        sb.append('}');
      } else if (v instanceof List<?> l) {
        boolean scalars = l.stream().noneMatch(x -> x instanceof Map || x instanceof List);
        sb.append('[');
        for (int i = 0; i < l.size(); i++) {
          if (scalars) {
            sb.append(i == 0 ? "" : ", ");
          } else {
            sb.append(i == 0 ? "\n" : ",\n").append("  ".repeat(indent + 1));
          }
          write(sb, l.get(i), indent + 1);
        }
        if (!scalars && !l.isEmpty()) {
          sb.append('\n').append("  ".repeat(indent));
        }
        sb.append(']');
      } else {
        string(sb, v.toString());
      }
    }

    private static void string(StringBuilder sb, String s) {
      sb.append('"');
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        switch (c) {
          case '"' -> sb.append("\\\"");
          case '\\' -> sb.append("\\\\");
          case '\n' -> sb.append("\\n");
          case '\r' -> sb.append("\\r");
          case '\t' -> sb.append("\\t");
          default -> {
            if (c < 0x20) {
              sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
            } else {
              sb.append(c);
            }
          }
        }
      }
      sb.append('"');
    }
  }
}
