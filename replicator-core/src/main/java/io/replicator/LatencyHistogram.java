package io.replicator;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * Counts of operations by how long they took, in fixed buckets (a 1-2-5 series from 10 µs to
 * 10 s, and one above), with their count and total time. Counts are cumulative from when the file
 * system opened; {@link #minus} gives the histogram of an interval. Immutable.
 */
public final class LatencyHistogram {
  private static final long[] BOUNDS_NANOS = {
      10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
      1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000,
      100_000_000, 200_000_000, 500_000_000, 1_000_000_000, 2_000_000_000, 5_000_000_000L, 10_000_000_000L};
  /** The empty histogram. */
  public static final LatencyHistogram EMPTY = new LatencyHistogram(new long[BOUNDS_NANOS.length + 1], 0);

  private final long[] buckets;
  private final long sumNanos;
  private final long count;

  private LatencyHistogram(long[] buckets, long sumNanos) {
    this.buckets = buckets;
    this.sumNanos = sumNanos;
    long n = 0;
    for (long b : buckets) {
      n += b;
    }
    this.count = n;
  }

  /**
   * A histogram from per-bucket counts (not cumulative), one per {@link #upperBounds()} and one
   * more for everything above the last.
   *
   * @throws IllegalArgumentException when the number of counts is wrong or one is negative
   */
  public static LatencyHistogram of(long[] bucketCounts, long sumNanos) {
    if (bucketCounts.length != BOUNDS_NANOS.length + 1) {
      throw new IllegalArgumentException("expected " + (BOUNDS_NANOS.length + 1) + " bucket counts, got "
          + bucketCounts.length);
    }
    for (long c : bucketCounts) {
      if (c < 0) {
        throw new IllegalArgumentException("negative bucket count " + c);
      }
    }
    if (sumNanos < 0) {
      throw new IllegalArgumentException("negative total time " + sumNanos);
    }
    return new LatencyHistogram(bucketCounts.clone(), sumNanos);
  }

  /** The upper bounds of the buckets (inclusive), shortest first; the last bucket has none. */
  public static List<Duration> upperBounds() {
    return Arrays.stream(BOUNDS_NANOS).mapToObj(Duration::ofNanos).toList();
  }

  /** Operations counted. */
  public long count() {
    return count;
  }

  /** Their total time in nanoseconds. */
  public long sumNanos() {
    return sumNanos;
  }

  /** The per-bucket counts (not cumulative), a copy. */
  public long[] bucketCounts() {
    return buckets.clone();
  }

  /**
   * The histogram of what happened since {@code earlier}, a snapshot of the same source. When the
   * source was reset in between (fewer operations now), this histogram is returned whole.
   */
  public LatencyHistogram minus(LatencyHistogram earlier) {
    long[] d = new long[buckets.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = buckets[i] - earlier.buckets[i];
      if (d[i] < 0) {
        return this;
      }
    }
    return new LatencyHistogram(d, Math.max(0, sumNanos - earlier.sumNanos));
  }

  /** The sum of two histograms. */
  public LatencyHistogram plus(LatencyHistogram other) {
    long[] s = new long[buckets.length];
    for (int i = 0; i < s.length; i++) {
      s[i] = buckets[i] + other.buckets[i];
    }
    return new LatencyHistogram(s, sumNanos + other.sumNanos);
  }

  /**
   * The {@code q} quantile (0 < q ≤ 1) in nanoseconds, interpolated linearly inside its bucket;
   * -1 when the histogram is empty. Above the last bound it answers the last bound.
   */
  public long quantileNanos(double q) {
    if (!(q > 0 && q <= 1)) {
      throw new IllegalArgumentException("quantile " + q + " outside (0, 1]");
    }
    if (count == 0) {
      return -1;
    }
    double rank = q * count;
    long seen = 0;
    for (int i = 0; i < buckets.length; i++) {
      if (buckets[i] == 0) {
        continue;
      }
      if (seen + buckets[i] >= rank) {
        if (i == BOUNDS_NANOS.length) {
          return BOUNDS_NANOS[i - 1];
        }
        long low = i == 0 ? 0 : BOUNDS_NANOS[i - 1];
        long high = BOUNDS_NANOS[i];
        double within = (rank - seen) / buckets[i];
        return low + Math.round(within * (high - low));
      }
      seen += buckets[i];
    }
    return BOUNDS_NANOS[BOUNDS_NANOS.length - 1];
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof LatencyHistogram h && h.sumNanos == sumNanos && Arrays.equals(h.buckets, buckets);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(buckets) + Long.hashCode(sumNanos);
  }

  @Override
  public String toString() {
    return "LatencyHistogram[count=" + count + ", p50=" + quantileNanos50() + "ns, p99=" + quantileNanos99() + "ns]";
  }

  private long quantileNanos50() {
    return count == 0 ? -1 : quantileNanos(0.5);
  }

  private long quantileNanos99() {
    return count == 0 ? -1 : quantileNanos(0.99);
  }
}
