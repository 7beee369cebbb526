package io.replicator.agent.admin;

import io.replicator.proto.Sample;
import io.replicator.proto.SampleList;
import java.time.Duration;
import java.util.ArrayDeque;

/**
 * The last samples the agent took, oldest first, at most {@code capacity} of them: with one a
 * second and 900 places, the console's plots of the last fifteen minutes.
 */
public final class SampleRing {
  private final Duration interval;
  private final int capacity;
  private final ArrayDeque<Sample> samples;

  public SampleRing(Duration interval, int capacity) {
    if (capacity < 1 || interval.isNegative() || interval.isZero()) {
      throw new IllegalArgumentException("ring of " + capacity + " samples every " + interval);
    }
    this.interval = interval;
    this.capacity = capacity;
    this.samples = new ArrayDeque<>(capacity);
  }

  public synchronized void add(Sample sample) {
    if (samples.size() == capacity) {
      samples.removeFirst();
    }
    samples.addLast(sample);
  }

  public synchronized SampleList list() {
    return SampleList.newBuilder().setIntervalMillis((int) interval.toMillis()).setCapacity(capacity)
        .addAllSamples(samples).build();
  }

  /** The ring as {@code GET /samples} serves it. */
  public String toJson() {
    // zeros printed too (a quiet second is a point at 0, not a gap); the latencies, which have
    // presence, stay absent for a second without a write
    return AdminJson.print(list());
  }
}
