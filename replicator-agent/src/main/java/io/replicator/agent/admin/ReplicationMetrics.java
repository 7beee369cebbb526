package io.replicator.agent.admin;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.prometheus.metrics.model.registry.Collector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.replicator.LatencyHistogram;
import io.replicator.NodeState;
import io.replicator.ReplicationStatus;
import io.replicator.WriteStatistics;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Binds a node's {@link ReplicationStatus} to Micrometer gauges, exports the application's write
 * latency as it reported it with its lease renewals, and owns the counters the agent feeds.
 *
 * <p>Prometheus names: {@code replicator_state{state="..."}} and {@code replicator_role{role="..."}}
 * (1 for the current one, 0 for the others), {@code replicator_peer_connected},
 * {@code replicator_peer_out_of_date}, {@code replicator_in_sync}, {@code replicator_dirty_bytes},
 * {@code replicator_resync_done_bytes}, {@code replicator_resync_total_bytes},
 * {@code replicator_resync_rate_bytes_per_second}, {@code replicator_in_flight_changes},
 * {@code replicator_in_flight_bytes}, the histograms {@code replicator_write_latency_seconds} and
 * {@code replicator_force_latency_seconds}, {@code replicator_replicated_bytes_total},
 * {@code replicator_failovers_total} and {@code replicator_refused_operations_total{code="..."}}.
 */
public final class ReplicationMetrics {
  private static final Logger log = LoggerFactory.getLogger(ReplicationMetrics.class);
  /**
   * How long one snapshot serves the gauges when nobody calls {@link #refresh()}: long enough for
   * all gauges of one scrape to read the same snapshot, short against any scrape interval.
   */
  private static final long MAX_SNAPSHOT_AGE_NANOS = Duration.ofMillis(250).toNanos();
  private static final List<String> ROLES = List.of("primary", "secondary", "none");

  private final MeterRegistry registry;
  private final Supplier<ReplicationStatus> source;
  private final ApplicationLatency latency;
  private final Counter failovers;
  private volatile Snapshot snapshot;

  /** A status and when it was taken, published together so gauges never mix two snapshots. */
  private record Snapshot(ReplicationStatus status, long takenAtNanos) {}

  /** Metrics with no application latency reported (a secondary's, or for tests of the gauges). */
  public ReplicationMetrics(PrometheusMeterRegistry registry, Supplier<ReplicationStatus> status) {
    this(registry, status, new ApplicationLatency());
  }

  /**
   * Registers the meters in {@code registry}; the gauges read {@code status} lazily, at most once
   * per scrape when the scraper calls {@link #refresh()} first, and the latency histograms and the
   * replicated bytes read {@code latency}.
   */
  public ReplicationMetrics(PrometheusMeterRegistry registry, Supplier<ReplicationStatus> status,
      ApplicationLatency latency) {
    this.registry = Objects.requireNonNull(registry, "registry");
    this.source = Objects.requireNonNull(status, "status");
    this.latency = Objects.requireNonNull(latency, "latency");
    for (NodeState state : NodeState.values()) {
      gauge("replicator.state", "1 for the node's current state, 0 for the others",
          s -> s.state() == state ? 1 : 0, "state", state.name());
    }
    for (String role : ROLES) {
      gauge("replicator.role", "1 for the node's current role (primary, secondary, none), 0 for the others",
          s -> role(s.state()).equals(role) ? 1 : 0, "role", role);
    }
    gauge("replicator.peer.connected", "1 while a peer connection is up", s -> bit(s.peerConnected()));
    gauge("replicator.peer.out.of.date", "1 while the peer needs a resync", s -> bit(s.peerOutOfDate()));
    gauge("replicator.in.sync", "1 while the peer holds everything this node has", s -> bit(s.inSync()));
    gauge("replicator.dirty.bytes", "Bytes known to differ from the peer", s -> s.dirtyBytes());
    gauge("replicator.resync.done.bytes", "Bytes resynced so far by the running resync",
        s -> s.resync().map(ReplicationStatus.ResyncProgress::bytesDone).orElse(0L));
    gauge("replicator.resync.total.bytes", "Bytes the running resync copies in all",
        s -> s.resync().map(ReplicationStatus.ResyncProgress::bytesTotal).orElse(0L));
    gauge("replicator.resync.rate.bytes.per.second", "The running resync's rate, 0 when none runs",
        s -> s.resync().map(ReplicationStatus.ResyncProgress::bytesPerSecond).orElse(0L));
    gauge("replicator.in.flight.changes", "Changes sent and not yet acknowledged", s -> s.inFlightChanges());
    gauge("replicator.in.flight.bytes", "Payload bytes sent and not yet acknowledged", s -> s.inFlightBytes());
    registry.getPrometheusRegistry().register(histogram("replicator_write_latency_seconds",
        "Time from a replicated write's call until the replication mode let it return, as the application saw it",
        WriteStatistics::writes));
    registry.getPrometheusRegistry().register(histogram("replicator_force_latency_seconds",
        "Time from a force call until the data was durable on both sides, as the application saw it",
        WriteStatistics::forces));
    // "bytes" as a base unit makes Prometheus name it replicator_replicated_bytes_total.
    FunctionCounter.builder("replicator.replicated", latency, l -> l.totals().bytesWritten())
        .baseUnit("bytes")
        .description("Payload bytes the application wrote through the replicated file system (sent to the peer, "
            + "or marked dirty for the resync while it was absent)")
        .register(registry);
    failovers = Counter.builder("replicator.failovers")
        .description("Times this node took over as primary because the primary was lost")
        .register(registry);
  }

  /** Failovers; the agent increments it when this node takes over. */
  public Counter failovers() {
    return failovers;
  }

  /** Counts one refused operation under {@code code} (UNAUTHORIZED, FORBIDDEN, REFUSED, SPLIT_BRAIN, ...). */
  public void refused(String code) {
    Counter.builder("replicator.refused.operations")
        .description("Admin operations refused, by code: no or wrong token, cross-origin, or refused in the node's state")
        .tag("code", code)
        .register(registry)
        .increment();
  }

  /**
   * The role a script cares about, derived from the state: {@code primary} while this node serves
   * writes, {@code secondary} while it receives them, {@code none} otherwise.
   */
  static String role(NodeState state) {
    return switch (state) {
      case PRIMARY, ALONE, SYNC_SOURCE -> "primary";
      case SECONDARY, SYNC_TARGET -> "secondary";
      case WAIT, STOPPED -> "none";
    };
  }

  /**
   * Takes a fresh status snapshot for the gauges. A scraper calls it once before rendering, so
   * that one scrape shows one consistent state (exactly one {@code replicator_state} is 1).
   */
  public void refresh() {
    try {
      snapshot = new Snapshot(source.get(), System.nanoTime());
    } catch (RuntimeException e) {
      // Gauges must not fail the scrape; they show the last snapshot (or NaN when none).
      log.debug("Status for metrics failed", e);
    }
  }

  private ReplicationStatus current() {
    Snapshot s = snapshot;
    if (s == null || System.nanoTime() - s.takenAtNanos() > MAX_SNAPSHOT_AGE_NANOS) {
      refresh();
      s = snapshot;
    }
    return s == null ? null : s.status();
  }

  private void gauge(String name, String description, ToDoubleFunction<ReplicationStatus> value, String... tags) {
    ToDoubleFunction<ReplicationMetrics> read = metrics -> {
      ReplicationStatus status = metrics.current();
      return status == null ? Double.NaN : value.applyAsDouble(status);
    };
    // Strong reference: Micrometer holds gauge objects weakly, and nothing else may hold this one.
    Gauge.builder(name, this, read).description(description).tags(tags).strongReference(true).register(registry);
  }

  /**
   * A Prometheus histogram of the buckets the application counted: they arrive already counted,
   * so they are exported as they are rather than recorded again into a Micrometer timer.
   */
  private Collector histogram(String name, String help, Function<WriteStatistics, LatencyHistogram> pick) {
    List<Duration> bounds = LatencyHistogram.upperBounds();
    double[] upper = new double[bounds.size() + 1];
    for (int i = 0; i < bounds.size(); i++) {
      upper[i] = bounds.get(i).toNanos() / 1e9;
    }
    upper[bounds.size()] = Double.POSITIVE_INFINITY;
    return new Collector() {
      @Override
      public MetricSnapshot collect() {
        LatencyHistogram h = pick.apply(latency.totals());
        return HistogramSnapshot.builder().name(name).help(help)
            .dataPoint(HistogramSnapshot.HistogramDataPointSnapshot.builder()
                .classicHistogramBuckets(ClassicHistogramBuckets.of(upper, h.bucketCounts()))
                .sum(h.sumNanos() / 1e9)
                .build())
            .build();
      }

      @Override
      public String getPrometheusName() {
        return name;
      }
    };
  }

  private static double bit(boolean b) {
    return b ? 1 : 0;
  }
}
