package io.replicator.fs;

import io.replicator.LatencyHistogram;
import io.replicator.WriteStatistics;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts the wrapper's writes and forces by latency as the application sees them. Recording is
 * a few atomic adds, so it costs nothing next to a replicated write.
 */
final class WriteRecorder {
  private static final long[] BOUNDS_NANOS =
      LatencyHistogram.upperBounds().stream().mapToLong(java.time.Duration::toNanos).toArray();
  private final Series writes = new Series();
  private final Series forces = new Series();
  private final LongAdder bytes = new LongAdder();

  void write(long startNanos, long written) {
    if (written > 0) {
      writes.add(System.nanoTime() - startNanos);
      bytes.add(written);
    }
  }

  void force(long startNanos) {
    forces.add(System.nanoTime() - startNanos);
  }

  WriteStatistics snapshot() {
    return new WriteStatistics(writes.snapshot(), forces.snapshot(), bytes.sum());
  }

  private static final class Series {
    private final AtomicLongArray buckets = new AtomicLongArray(BOUNDS_NANOS.length + 1);
    private final LongAdder sumNanos = new LongAdder();

    void add(long nanos) {
      long n = Math.max(0, nanos);
      int i = java.util.Arrays.binarySearch(BOUNDS_NANOS, n);
      buckets.incrementAndGet(i >= 0 ? i : -i - 1);
      sumNanos.add(n);
    }

    LatencyHistogram snapshot() {
      long[] counts = new long[buckets.length()];
      for (int i = 0; i < counts.length; i++) {
        counts[i] = buckets.get(i);
      }
      return LatencyHistogram.of(counts, sumNanos.sum());
    }
  }
}
