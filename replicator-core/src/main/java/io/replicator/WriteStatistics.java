package io.replicator;

import java.util.Objects;

/**
 * How the application's writes through a {@link ReplicatedFileSystem} went, as the application
 * saw them: each write's time from its call until the replication mode let it return (with the
 * local fsync of a {@code SYNC}/{@code DSYNC} channel), each {@code force}'s time until the data
 * was durable on both sides, and the bytes written. Cumulative from when the file system opened.
 *
 * @param writes latency of writes (every {@code write} call that wrote at least one byte)
 * @param forces latency of {@code force} calls
 * @param bytesWritten payload bytes written: sent to the peer, or marked dirty for the resync while it was absent
 */
public record WriteStatistics(LatencyHistogram writes, LatencyHistogram forces, long bytesWritten) {
  /** Nothing written yet. */
  public static final WriteStatistics EMPTY = new WriteStatistics(LatencyHistogram.EMPTY, LatencyHistogram.EMPTY, 0);

  public WriteStatistics {
    Objects.requireNonNull(writes, "writes");
    Objects.requireNonNull(forces, "forces");
    if (bytesWritten < 0) {
      throw new IllegalArgumentException("negative bytes written " + bytesWritten);
    }
  }
}
