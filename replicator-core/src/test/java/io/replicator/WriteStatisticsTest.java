package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.replicator.cluster.WriteStatisticsProtos;
import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The latency an application sees is counted where it sees it: every write and force through the wrapper. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WriteStatisticsTest {
  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void replicatedWritesAndForcesAreCountedWithTheirLatencyAndBytes() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    assertThat(fs.writeStatistics()).isEqualTo(WriteStatistics.EMPTY);
    try (FileChannel ch = FileChannel.open(fs.getPath("/counted.dat"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      for (int i = 0; i < 20; i++) {
        ch.write(ByteBuffer.allocate(1000), i * 1000L);
      }
      ch.write(new ByteBuffer[] {ByteBuffer.allocate(100), ByteBuffer.allocate(24)});
      ch.write(ByteBuffer.allocate(0));
      ch.force(false);
    }
    WriteStatistics s = fs.writeStatistics();
    assertThat(s.writes().count()).as("an empty write is no write").isEqualTo(21);
    assertThat(s.bytesWritten()).isEqualTo(20 * 1000 + 124);
    assertThat(s.forces().count()).isEqualTo(1);
    // a replicated write is a loopback round trip at least: never zero, never absurd
    assertThat(s.writes().sumNanos()).isPositive();
    assertThat(s.writes().quantileNanos(0.5)).isBetween(1L, 10_000_000_000L);
    assertThat(s.forces().quantileNanos(0.99)).isPositive();
  }

  @Test
  void aSnapshotTravelsThroughItsProtoFormUnchanged() {
    long[] writes = new long[LatencyHistogram.upperBounds().size() + 1];
    writes[3] = 7;
    writes[writes.length - 1] = 1;
    WriteStatistics s = new WriteStatistics(LatencyHistogram.of(writes, 12_345_678_901L),
        LatencyHistogram.EMPTY, 4096);
    assertThat(WriteStatisticsProtos.fromProto(WriteStatisticsProtos.toProto(s))).isEqualTo(s);
  }

  @Test
  void quantilesInterpolateInsideTheirBucketAndIntervalsSubtract() {
    int n = LatencyHistogram.upperBounds().size() + 1;
    long[] early = new long[n];
    early[6] = 10; // (0.5 ms, 1 ms]
    long[] late = early.clone();
    late[6] += 90;
    late[8] = 50; // (2 ms, 5 ms]
    LatencyHistogram interval = LatencyHistogram.of(late, 0).minus(LatencyHistogram.of(early, 0));
    assertThat(interval.count()).isEqualTo(140);
    assertThat(interval.quantileNanos(0.5)).isBetween(500_000L, 1_000_000L);
    assertThat(interval.quantileNanos(0.99)).isBetween(2_000_000L, 5_000_000L);
    assertThat(LatencyHistogram.EMPTY.quantileNanos(0.5)).isEqualTo(-1);
    // a restarted source has fewer operations than before: the interval is the new histogram whole
    assertThat(LatencyHistogram.of(early, 0).minus(LatencyHistogram.of(late, 0))).isEqualTo(LatencyHistogram.of(early, 0));
    assertThatThrownBy(() -> LatencyHistogram.of(new long[3], 0)).isInstanceOf(IllegalArgumentException.class);
  }
}
