package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The example Grafana dashboard asks only for metrics the agent exports, and shows every one of
 * them: its queries are checked against the names of a real scrape.
 */
class GrafanaDashboardTest {
  private static final Path DASHBOARD = Path.of("..", "examples", "grafana-dashboard.json");
  private static final Pattern METRIC = Pattern.compile("\\breplicator_[a-z_]+\\b");
  private static final Pattern TYPE = Pattern.compile("(?m)^# TYPE (\\S+) (\\S+)$");

  @Test
  void everyQueryNamesAnExportedMetricAndEveryMetricIsShown() throws Exception {
    Struct.Builder dashboard = Struct.newBuilder();
    JsonFormat.parser().merge(Files.readString(DASHBOARD), dashboard);
    List<String> expressions = new ArrayList<>();
    collect(Value.newBuilder().setStructValue(dashboard).build(), expressions);
    assertThat(expressions).as("queries in the dashboard").hasSizeGreaterThan(10);

    Set<String> exported = new TreeSet<>();
    Set<String> families = new TreeSet<>();
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    try {
      ReplicationMetrics metrics = new ReplicationMetrics(registry, Statuses::primaryInSync);
      metrics.refused("UNAUTHORIZED");
      metrics.refresh();
      Matcher m = TYPE.matcher(registry.scrape());
      while (m.find()) {
        String name = m.group(1);
        families.add(name);
        exported.add(name);
        if (m.group(2).equals("histogram")) {
          exported.addAll(List.of(name + "_bucket", name + "_count", name + "_sum"));
        }
      }
    } finally {
      registry.close();
    }

    Set<String> used = new TreeSet<>();
    for (String expression : expressions) {
      Matcher m = METRIC.matcher(expression);
      while (m.find()) {
        used.add(m.group());
      }
    }
    assertThat(exported).as("metrics the dashboard asks for").containsAll(used);
    for (String family : families) {
      assertThat(used).as("a panel for %s", family)
          .anyMatch(name -> name.equals(family) || name.startsWith(family + "_"));
    }
  }

  /** Every {@code expr} and templating {@code query} string anywhere in the document. */
  private static void collect(Value value, List<String> out) {
    switch (value.getKindCase()) {
      case STRUCT_VALUE -> value.getStructValue().getFieldsMap().forEach((key, v) -> {
        if ((key.equals("expr") || key.equals("query")) && v.hasStringValue()) {
          out.add(v.getStringValue());
        } else {
          collect(v, out);
        }
      });
      case LIST_VALUE -> value.getListValue().getValuesList().forEach(v -> collect(v, out));
      default -> { }
    }
  }
}
