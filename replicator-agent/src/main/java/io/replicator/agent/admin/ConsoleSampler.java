package io.replicator.agent.admin;

import com.google.protobuf.Timestamp;
import io.replicator.LatencyHistogram;
import io.replicator.NodeState;
import io.replicator.ReplicationStatus;
import io.replicator.WriteStatistics;
import io.replicator.proto.EventKind;
import io.replicator.proto.Sample;
import java.io.Closeable;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes one sample per interval into a {@link SampleRing}: the node's state, write latency p50 and
 * p99 over the interval as the application saw it, its write throughput, the resync rate and the
 * dirty bytes. One daemon thread. It also notes in the event history when a resync starts and ends,
 * since the library runs those by itself.
 */
public final class ConsoleSampler implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(ConsoleSampler.class);

  private final SampleRing ring;
  private final Supplier<ReplicationStatus> status;
  private final ApplicationLatency latency;
  private final Clock clock;
  private final EventHistory events;
  private ScheduledExecutorService timer;
  private ReplicationStatus.ResyncProgress resyncSeen;
  private WriteStatistics last;
  private long lastNanos;

  /**
   * A sampler into {@code ring}; resyncs it sees start and end (those that last at least one
   * interval: the library runs them by itself on reconnect) go to {@code events}.
   */
  public ConsoleSampler(SampleRing ring, Supplier<ReplicationStatus> status, ApplicationLatency latency,
      EventHistory events, Clock clock) {
    this.ring = ring;
    this.status = status;
    this.latency = latency;
    this.events = events;
    this.clock = clock;
  }

  /** Samples every {@code interval} until closed. */
  public synchronized void start(Duration interval) {
    last = latency.totals();
    lastNanos = System.nanoTime();
    timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "replicator-console-sampler");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleAtFixedRate(this::sampleQuietly, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
  }

  private void sampleQuietly() {
    try {
      sample();
    } catch (RuntimeException e) {
      // a status that cannot be read now is a gap in the plot, not a dead sampler
      log.debug("console sample failed", e);
    }
  }

  /** Takes one sample now: what happened since the one before. */
  public synchronized Sample sample() {
    long now = System.nanoTime();
    WriteStatistics totals = latency.totals();
    WriteStatistics previous = last == null ? totals : last;
    double seconds = last == null ? 0 : Math.max(1e-3, (now - lastNanos) / 1e9);
    last = totals;
    lastNanos = now;
    ReplicationStatus s = status.get();
    LatencyHistogram writes = totals.writes().minus(previous.writes());
    long bytes = totals.bytesWritten() >= previous.bytesWritten() ? totals.bytesWritten() - previous.bytesWritten() : 0;
    Instant at = clock.instant();
    Sample.Builder b = Sample.newBuilder()
        .setAt(Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()))
        .setState(s.state().name())
        .setRole(ReplicationMetrics.role(s.state()))
        .setWrites(writes.count())
        .setWriteBytesPerSecond(seconds == 0 ? 0 : bytes / seconds)
        .setResyncBytesPerSecond(s.resync().map(ReplicationStatus.ResyncProgress::bytesPerSecond).orElse(0L))
        .setDirtyBytes(s.dirtyBytes());
    if (writes.count() > 0) {
      b.setWriteP50Millis(writes.quantileNanos(0.5) / 1e6).setWriteP99Millis(writes.quantileNanos(0.99) / 1e6);
    }
    Sample sample = b.build();
    ring.add(sample);
    noteResync(s);
    return sample;
  }

  private void noteResync(ReplicationStatus s) {
    ReplicationStatus.ResyncProgress now = s.resync().orElse(null);
    if (now != null && resyncSeen == null) {
      events.record(EventKind.RESYNC, s.state().name(), "resync " + (s.state() == NodeState.SYNC_TARGET
          ? "into this node" : "to the peer") + " running: " + now.bytesTotal() + " bytes to compare or copy");
    } else if (now == null && resyncSeen != null) {
      events.record(EventKind.RESYNC, s.state().name(), "resync of " + resyncSeen.bytesTotal() + " bytes ended; "
          + (s.inSync() ? "in sync" : "not in sync yet"));
    }
    resyncSeen = now;
  }

  @Override
  public synchronized void close() {
    if (timer != null) {
      timer.shutdownNow();
    }
  }
}
