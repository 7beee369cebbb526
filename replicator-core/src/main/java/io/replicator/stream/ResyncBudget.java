package io.replicator.stream;

/**
 * How many resync bytes may be in flight, adapted to the application: acknowledgement latencies
 * of application changes are averaged while no resync runs (the baseline) and while one does;
 * when the recent average exceeds twice the baseline the budget halves, otherwise it grows by a
 * step (AIMD), between a floor of one run and a quarter of the window. A resync that starts while
 * the application is busy starts at the floor; one that starts while it is idle (no change
 * acknowledged for a second, as after a reconnect) starts at the ceiling, and halves as soon as
 * application changes it slows down show up.
 */
final class ResyncBudget {
  private static final long FLOOR = 64 * 1024;
  private static final long STEP = 64 * 1024;
  private static final long ADJUST_NANOS = 20_000_000;
  /** The application counts as idle when none of its changes was acknowledged for this long. */
  private static final long IDLE_NANOS = 1_000_000_000;
  /** Weight of a new sample in the moving averages. */
  private static final double ALPHA = 0.1;

  private final long ceiling;
  private volatile long budget;
  private double baseline;
  private double recent;
  private boolean resyncing;
  private long lastAdjust;
  private long lastApplicationNanos = System.nanoTime() - IDLE_NANOS;

  ResyncBudget(long windowBytes) {
    this.ceiling = Math.max(FLOOR, windowBytes / 4);
    this.budget = FLOOR;
  }

  long bytes() {
    return budget;
  }

  /** An application change was acknowledged {@code nanos} after it was sent. */
  synchronized void applicationLatency(long nanos) {
    lastApplicationNanos = System.nanoTime();
    if (resyncing) {
      recent = recent == 0 ? nanos : recent + ALPHA * (nanos - recent);
    } else {
      baseline = baseline == 0 ? nanos : baseline + ALPHA * (nanos - baseline);
    }
  }

  synchronized void resyncRunning(boolean running) {
    resyncing = running;
    if (running) {
      recent = 0;
      boolean idle = System.nanoTime() - lastApplicationNanos >= IDLE_NANOS;
      budget = idle ? ceiling : FLOOR;
    }
  }

  /** Called as resync sends; adjusts at most every 20 ms. */
  synchronized void adjust(long now) {
    if (now - lastAdjust < ADJUST_NANOS) {
      return;
    }
    lastAdjust = now;
    if (baseline > 0 && recent > 2 * baseline) {
      budget = Math.max(FLOOR, budget / 2);
      recent = 2 * baseline; // judge the next period by its own samples, not the old peak
    } else {
      budget = Math.min(ceiling, budget + STEP);
    }
  }
}
