package io.replicator.stream;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.function.LongSupplier;

/**
 * Paces resync data so the application's writes keep their latency. Adaptive by default: resync
 * may only add to the stream while the bytes in flight are within the {@link ResyncBudget}, which
 * shrinks when the application's acknowledgements slow down. An optional ceiling (bytes per
 * second, token bucket) caps it further.
 */
final class ResyncRate {
  private final long ceilingBytesPerSecond;
  private final LongSupplier clock;
  private final Room room;
  private double tokens;
  private long lastRefill;

  /** Waits until the stream has room for {@code bytes} more resync bytes. */
  @FunctionalInterface
  interface Room {
    void await(long bytes) throws InterruptedException;
  }

  ResyncRate(long ceilingBytesPerSecond, Room room, LongSupplier clock) {
    this.ceilingBytesPerSecond = ceilingBytesPerSecond;
    this.room = room;
    this.clock = clock;
    this.lastRefill = clock.getAsLong();
    this.tokens = ceilingBytesPerSecond;
  }

  /** Blocks until {@code bytes} may be sent. */
  synchronized void acquire(long bytes) throws IOException {
    try {
      room.await(bytes);
      if (ceilingBytesPerSecond <= 0) {
        return;
      }
      while (true) {
        long now = clock.getAsLong();
        tokens = Math.min(ceilingBytesPerSecond, tokens + (now - lastRefill) * ceilingBytesPerSecond / 1e9);
        lastRefill = now;
        // a burst of one run is allowed even when it exceeds a second's worth
        if (tokens >= Math.min(bytes, ceilingBytesPerSecond)) {
          tokens -= bytes;
          return;
        }
        long waitNanos = (long) ((Math.min(bytes, ceilingBytesPerSecond) - tokens) * 1e9 / ceilingBytesPerSecond);
        wait(Math.max(1, waitNanos / 1_000_000), (int) (waitNanos % 1_000_000));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while pacing the resync");
    }
  }
}
