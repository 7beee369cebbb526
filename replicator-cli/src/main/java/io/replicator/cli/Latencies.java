package io.replicator.cli;

import java.util.Arrays;

/** Collects operation latencies in nanoseconds and reports percentiles. Not thread-safe. */
final class Latencies {
  private long[] values = new long[1024];
  private int size;

  void add(long nanos) {
    if (size == values.length) {
      values = Arrays.copyOf(values, size * 2);
    }
    values[size++] = nanos;
  }

  void addAll(Latencies other) {
    for (int i = 0; i < other.size; i++) {
      add(other.values[i]);
    }
  }

  int count() {
    return size;
  }

  /** The p-th percentile (0..100) in nanoseconds, nearest rank; 0 when empty. */
  long percentile(double p) {
    if (size == 0) {
      return 0;
    }
    long[] sorted = Arrays.copyOf(values, size);
    Arrays.sort(sorted);
    int rank = (int) Math.ceil(p / 100.0 * size);
    return sorted[Math.max(0, Math.min(size - 1, rank - 1))];
  }

  static String millis(long nanos) {
    return String.format("%.3f ms", nanos / 1e6);
  }
}
