package io.replicator.agent.admin;

import io.replicator.proto.ApplicationReport;
import io.replicator.proto.LeaseRequest;
import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.ReplicationStatus;
import io.replicator.WriteStatistics;
import io.replicator.cluster.WriteStatisticsProtos;
import io.replicator.proto.Sample;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Timeout;

/** The ring behind the console's plots: each sample holds what happened in its interval, and the ring stays bounded. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ConsoleSamplerTest {
  private final AtomicReference<ReplicationStatus> status = new AtomicReference<>(Statuses.primaryInSync());
  private final ApplicationLatency latency = new ApplicationLatency();
  private final SampleRing ring = new SampleRing(Duration.ofSeconds(1), 3);
  @TempDir Path dir;
  private EventHistory events;
  private ConsoleSampler sampler;

  @BeforeEach
  void setUp() {
    events = EventHistory.open(dir.resolve("events"), "alpha", 10, Clock.systemUTC());
    sampler = new ConsoleSampler(ring, status::get, latency, events, Clock.systemUTC());
  }

  @Test
  void aSampleHoldsTheIntervalsLatencyThroughputResyncRateAndDirtyBytes() {
    Sample quiet = sampler.sample();
    assertThat(quiet.hasWriteP50Millis()).as("no write, no latency").isFalse();
    assertThat(quiet.getRole()).isEqualTo("primary");

    // the application reports, through its lease, one write of 2 ms and 8 KiB
    LeaseStatistics.take(renewal(ReplicationMetricsTest.oneWrite(2_000_000, 8192)), latency);
    status.set(Statuses.syncSource(250, 1000, 750));
    Sample busy = sampler.sample();
    assertThat(busy.getWrites()).isEqualTo(1);
    assertThat(busy.getWriteP50Millis()).isBetween(1.0, 2.0);
    assertThat(busy.getWriteP99Millis()).isBetween(1.0, 2.0);
    assertThat(busy.getWriteBytesPerSecond()).isPositive();
    assertThat(busy.getResyncBytesPerSecond()).isEqualTo(1_000_000);
    assertThat(busy.getDirtyBytes()).isEqualTo(750);
    assertThat(busy.getState()).isEqualTo("SYNC_SOURCE");

    Sample after = sampler.sample();
    assertThat(after.getWrites()).as("the next interval saw no new write").isZero();
    assertThat(after.getWriteBytesPerSecond()).isZero();

    status.set(Statuses.primaryInSync());
    sampler.sample();
    assertThat(ring.list().getSamplesList()).hasSize(3).doesNotContain(quiet);
    // the resync the library ran by itself is in the history: when it was seen running, and its end
    assertThat(events.list().getEventsList()).extracting(e -> e.getReason()).containsExactly(
        "resync to the peer running: 1000 bytes to compare or copy",
        "resync of 1000 bytes ended; in sync");
    assertThat(ring.toJson()).contains("\"intervalMillis\":1000").contains("\"capacity\":3")
        .as("a quiet second is a zero, not a gap").contains("\"writeBytesPerSecond\":0");
  }

  @Test
  void aRenewalWithoutStatisticsChangesNothing() {
    LeaseStatistics.take(LeaseRequest.newBuilder().setPhase(LeaseRequest.Phase.RENEW)
        .setReport(ApplicationReport.getDefaultInstance()).build(), latency);
    assertThat(latency.totals()).isEqualTo(WriteStatistics.EMPTY);
  }

  static LeaseRequest renewal(WriteStatistics s) {
    return LeaseRequest.newBuilder().setPhase(LeaseRequest.Phase.RENEW).setReport(ApplicationReport.newBuilder()
        .setWriteStatistics(WriteStatisticsProtos.toProto(s))).build();
  }
}
