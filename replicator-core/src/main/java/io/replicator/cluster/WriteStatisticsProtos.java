package io.replicator.cluster;

import io.replicator.LatencyHistogram;
import io.replicator.WriteStatistics;
import io.replicator.proto.LatencyCounts;
import io.replicator.proto.WriteStatisticsReport;

/** Conversions between {@link WriteStatistics} and its proto form, in one place. */
public final class WriteStatisticsProtos {
  private WriteStatisticsProtos() {}

  public static WriteStatisticsReport toProto(WriteStatistics s) {
    return WriteStatisticsReport.newBuilder()
        .setWrites(toProto(s.writes()))
        .setForces(toProto(s.forces()))
        .setBytesWritten(s.bytesWritten())
        .build();
  }

  /**
   * The statistics a report carries.
   *
   * @throws IllegalArgumentException when the report has the wrong number of buckets or negative counts
   */
  public static WriteStatistics fromProto(WriteStatisticsReport r) {
    if (r.getBytesWritten() < 0) {
      throw new IllegalArgumentException("bytes written out of range");
    }
    return new WriteStatistics(fromProto(r.getWrites()), fromProto(r.getForces()), r.getBytesWritten());
  }

  private static LatencyCounts toProto(LatencyHistogram h) {
    LatencyCounts.Builder b = LatencyCounts.newBuilder().setSumNanos(h.sumNanos());
    for (long c : h.bucketCounts()) {
      b.addBuckets(c);
    }
    return b.build();
  }

  private static LatencyHistogram fromProto(LatencyCounts c) {
    if (c.getBucketsCount() == 0 && c.getSumNanos() == 0) {
      return LatencyHistogram.EMPTY;
    }
    long[] buckets = c.getBucketsList().stream().mapToLong(Long::longValue).toArray();
    return LatencyHistogram.of(buckets, c.getSumNanos());
  }
}
