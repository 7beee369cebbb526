package io.replicator.agent.admin;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.replicator.NodeState;
import io.replicator.ReplicationStatus;
import java.time.Duration;
import java.util.Objects;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Binds a node's {@link ReplicationStatus} to Micrometer gauges and owns the meters the agent
 * updates itself: the write latency timer and the replicated-bytes and failover counters.
 *
 * <p>Prometheus names: {@code replicator_state{state="..."}} (1 for the current state, 0 for the
 * others), {@code replicator_peer_connected}, {@code replicator_peer_out_of_date},
 * {@code replicator_in_sync}, {@code replicator_dirty_bytes}, {@code replicator_resync_done_bytes},
 * {@code replicator_resync_total_bytes}, {@code replicator_in_flight_changes},
 * {@code replicator_in_flight_bytes}, {@code replicator_write_latency_seconds} (a histogram),
 * {@code replicator_replicated_bytes_total} and {@code replicator_failovers_total}.
 */
public final class ReplicationMetrics {
  private static final Logger log = LoggerFactory.getLogger(ReplicationMetrics.class);
  /**
   * How long one snapshot serves the gauges when nobody calls {@link #refresh()}: long enough for
   * all gauges of one scrape to read the same snapshot, short against any scrape interval.
   */
  private static final long MAX_SNAPSHOT_AGE_NANOS = Duration.ofMillis(250).toNanos();
  /** Write latency buckets: loopback fsync is ~0.2 ms, a slow disk or network tens of ms. */
  private static final Duration[] WRITE_LATENCY_BUCKETS = {
      Duration.ofNanos(100_000), Duration.ofNanos(250_000), Duration.ofNanos(500_000),
      Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10),
      Duration.ofMillis(25), Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250),
      Duration.ofMillis(500), Duration.ofSeconds(1), Duration.ofSeconds(5)};

  private final Supplier<ReplicationStatus> source;
  private final Timer writeLatency;
  private final Counter replicatedBytes;
  private final Counter failovers;
  private volatile Snapshot snapshot;

  /** A status and when it was taken, published together so gauges never mix two snapshots. */
  private record Snapshot(ReplicationStatus status, long takenAtNanos) {}

  /**
   * Registers the meters in {@code registry}; the gauges read {@code status} lazily, at most once
   * per scrape when the scraper calls {@link #refresh()} first.
   */
  public ReplicationMetrics(MeterRegistry registry, Supplier<ReplicationStatus> status) {
    Objects.requireNonNull(registry, "registry");
    this.source = Objects.requireNonNull(status, "status");
    for (NodeState state : NodeState.values()) {
      gauge(registry, "replicator.state", "1 for the node's current state, 0 for the others",
          s -> s.state() == state ? 1 : 0, "state", state.name());
    }
    gauge(registry, "replicator.peer.connected", "1 while a peer connection is up", s -> bit(s.peerConnected()));
    gauge(registry, "replicator.peer.out.of.date", "1 while the peer needs a resync", s -> bit(s.peerOutOfDate()));
    gauge(registry, "replicator.in.sync", "1 while the peer holds everything this node has", s -> bit(s.inSync()));
    gauge(registry, "replicator.dirty.bytes", "Bytes known to differ from the peer", s -> s.dirtyBytes());
    gauge(registry, "replicator.resync.done.bytes", "Bytes resynced so far by the running resync",
        s -> s.resync().map(ReplicationStatus.ResyncProgress::bytesDone).orElse(0L));
    gauge(registry, "replicator.resync.total.bytes", "Bytes the running resync copies in all",
        s -> s.resync().map(ReplicationStatus.ResyncProgress::bytesTotal).orElse(0L));
    gauge(registry, "replicator.in.flight.changes", "Changes sent and not yet acknowledged", s -> s.inFlightChanges());
    gauge(registry, "replicator.in.flight.bytes", "Payload bytes sent and not yet acknowledged", s -> s.inFlightBytes());
    writeLatency = Timer.builder("replicator.write.latency")
        .description("Time from a replicated write's start until the replication mode lets it return")
        .serviceLevelObjectives(WRITE_LATENCY_BUCKETS)
        .register(registry);
    // "bytes" as a base unit makes Prometheus name it replicator_replicated_bytes_total.
    replicatedBytes = Counter.builder("replicator.replicated")
        .baseUnit("bytes")
        .description("Payload bytes sent to the peer")
        .register(registry);
    failovers = Counter.builder("replicator.failovers")
        .description("Times this node took over as primary")
        .register(registry);
  }

  /** Write latency; the agent records one sample per replicated write. */
  public Timer writeLatency() {
    return writeLatency;
  }

  /** Payload bytes replicated; the agent increments it. */
  public Counter replicatedBytes() {
    return replicatedBytes;
  }

  /** Failovers; the agent increments it when this node takes over. */
  public Counter failovers() {
    return failovers;
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

  private void gauge(MeterRegistry registry, String name, String description,
      ToDoubleFunction<ReplicationStatus> value, String... tags) {
    ToDoubleFunction<ReplicationMetrics> read = metrics -> {
      ReplicationStatus status = metrics.current();
      return status == null ? Double.NaN : value.applyAsDouble(status);
    };
    // Strong reference: Micrometer holds gauge objects weakly, and nothing else may hold this one.
    Gauge.builder(name, this, read).description(description).tags(tags).strongReference(true).register(registry);
  }

  private static double bit(boolean b) {
    return b ? 1 : 0;
  }
}
