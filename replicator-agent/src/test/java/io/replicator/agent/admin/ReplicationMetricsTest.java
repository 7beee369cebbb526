package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.replicator.LatencyHistogram;
import io.replicator.NodeState;
import io.replicator.WriteStatistics;
import io.replicator.ReplicationStatus;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The gauges follow the supplied status, and the agent's own meters render as Prometheus expects. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ReplicationMetricsTest {
  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final AtomicReference<ReplicationStatus> status = new AtomicReference<>(Statuses.primaryInSync());
  private final ApplicationLatency latency = new ApplicationLatency();
  private final ReplicationMetrics metrics = new ReplicationMetrics(registry, status::get, latency);

  @AfterEach
  void close() {
    registry.close();
  }

  @Test
  void gaugesFollowTheStatusAfterRefresh() {
    metrics.refresh();
    String before = registry.scrape();
    assertThat(value(before, "replicator_state{state=\"PRIMARY\"}")).isEqualTo(1.0);
    assertThat(value(before, "replicator_state{state=\"SYNC_SOURCE\"}")).isEqualTo(0.0);
    assertThat(value(before, "replicator_peer_connected")).isEqualTo(1.0);
    assertThat(value(before, "replicator_in_sync")).isEqualTo(1.0);
    assertThat(value(before, "replicator_resync_total_bytes")).isEqualTo(0.0);

    status.set(Statuses.syncSource(250, 1000, 750));
    metrics.refresh();
    String after = registry.scrape();

    for (NodeState state : NodeState.values()) {
      assertThat(value(after, "replicator_state{state=\"" + state + "\"}"))
          .as(state.name()).isEqualTo(state == NodeState.SYNC_SOURCE ? 1.0 : 0.0);
    }
    assertThat(value(after, "replicator_dirty_bytes")).isEqualTo(750.0);
    assertThat(value(after, "replicator_resync_done_bytes")).isEqualTo(250.0);
    assertThat(value(after, "replicator_resync_total_bytes")).isEqualTo(1000.0);
    assertThat(value(after, "replicator_in_flight_changes")).isEqualTo(3.0);
    assertThat(value(after, "replicator_in_flight_bytes")).isEqualTo(12288.0);
    assertThat(value(after, "replicator_peer_out_of_date")).isEqualTo(1.0);
    assertThat(value(after, "replicator_in_sync")).isEqualTo(0.0);
  }

  @Test
  void theApplicationsLatencyHistogramsAndTheCountersRenderAndMove() {
    String before = registry.scrape();
    assertThat(before).contains("# TYPE replicator_write_latency_seconds histogram");
    assertThat(value(before, "replicator_write_latency_seconds_count")).isEqualTo(0.0);
    assertThat(value(before, "replicator_replicated_bytes_total")).isEqualTo(0.0);
    assertThat(value(before, "replicator_failovers_total")).isEqualTo(0.0);

    latency.report(oneWrite(300_000, 4096));
    metrics.failovers().increment();
    metrics.refused("UNAUTHORIZED");
    metrics.refused("SPLIT_BRAIN");
    metrics.refused("SPLIT_BRAIN");
    String text = registry.scrape();

    assertThat(value(text, "replicator_write_latency_seconds_bucket{le=\"1.0E-4\"}")).isEqualTo(0.0);
    assertThat(value(text, "replicator_write_latency_seconds_bucket{le=\"5.0E-4\"}")).isEqualTo(1.0);
    assertThat(value(text, "replicator_write_latency_seconds_bucket{le=\"+Inf\"}")).isEqualTo(1.0);
    assertThat(value(text, "replicator_write_latency_seconds_count")).isEqualTo(1.0);
    assertThat(value(text, "replicator_write_latency_seconds_sum")).isEqualTo(3.0E-4);
    assertThat(value(text, "replicator_force_latency_seconds_count")).isEqualTo(1.0);
    assertThat(value(text, "replicator_replicated_bytes_total")).isEqualTo(4096.0);
    assertThat(value(text, "replicator_failovers_total")).isEqualTo(1.0);
    assertThat(value(text, "replicator_refused_operations_total{code=\"UNAUTHORIZED\"}")).isEqualTo(1.0);
    assertThat(value(text, "replicator_refused_operations_total{code=\"SPLIT_BRAIN\"}")).isEqualTo(2.0);

    // the application restarted: its new file system counts from zero, the export keeps counting up
    latency.newSource();
    latency.report(oneWrite(3_000_000, 100));
    String after = registry.scrape();
    assertThat(value(after, "replicator_write_latency_seconds_count")).isEqualTo(2.0);
    assertThat(value(after, "replicator_write_latency_seconds_bucket{le=\"0.005\"}")).isEqualTo(2.0);
    assertThat(value(after, "replicator_replicated_bytes_total")).isEqualTo(4196.0);
  }

  @Test
  void roleAndResyncRateFollowTheState() {
    metrics.refresh();
    String primary = registry.scrape();
    assertThat(value(primary, "replicator_role{role=\"primary\"}")).isEqualTo(1.0);
    assertThat(value(primary, "replicator_role{role=\"secondary\"}")).isEqualTo(0.0);
    assertThat(value(primary, "replicator_resync_rate_bytes_per_second")).isEqualTo(0.0);

    status.set(Statuses.syncSource(250, 1000, 750));
    metrics.refresh();
    assertThat(value(registry.scrape(), "replicator_resync_rate_bytes_per_second")).isPositive();

    status.set(new ReplicationStatus(NodeState.SECONDARY, io.replicator.ReplicationMode.SYNC,
        java.util.Optional.empty(), true, false, java.util.Optional.empty(), 1, 0, 0, 0, 0, 0, java.util.Optional.empty()));
    metrics.refresh();
    String secondary = registry.scrape();
    assertThat(value(secondary, "replicator_role{role=\"primary\"}")).isEqualTo(0.0);
    assertThat(value(secondary, "replicator_role{role=\"secondary\"}")).isEqualTo(1.0);
  }

  /** Write statistics of one write of {@code bytes} that took {@code nanos}, and one force as long. */
  static WriteStatistics oneWrite(long nanos, long bytes) {
    long[] counts = new long[LatencyHistogram.upperBounds().size() + 1];
    int i = 0;
    while (i < LatencyHistogram.upperBounds().size() && LatencyHistogram.upperBounds().get(i).toNanos() < nanos) {
      i++;
    }
    counts[i] = 1;
    LatencyHistogram h = LatencyHistogram.of(counts, nanos);
    return new WriteStatistics(h, h, bytes);
  }

  @Test
  void aFailingStatusSupplierDoesNotFailTheScrape() {
    PrometheusMeterRegistry other = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    try {
      ReplicationMetrics broken = new ReplicationMetrics(other, () -> {
        throw new IllegalStateException("closed");
      });
      broken.refresh();
      broken.failovers().increment();

      String text = other.scrape();

      assertThat(value(text, "replicator_dirty_bytes")).isNaN();
      assertThat(value(text, "replicator_failovers_total")).isEqualTo(1.0);
    } finally {
      other.close();
    }
  }

  /** The value of the sample line starting with {@code series} (name and labels exactly). */
  static double value(String scrape, String series) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(scrape);
    assertThat(m.find()).as("series %s in:%n%s", series, scrape).isTrue();
    return Double.parseDouble(m.group(1));
  }
}
