package io.replicator.stream;

/**
 * How many resync bytes may be in flight, adapted to the application: acknowledgement latencies
 * of application changes are averaged while no resync runs (the baseline) and while one does;
 * when the recent average exceeds twice the baseline the budget halves, otherwise it grows by a
 * step (AIMD), between a floor of one run and a quarter of the window; until the first halving it
 * doubles instead (slow start), so a short resync does not spend its time growing.
 */
final class ResyncBudget {
  private static final long FLOOR = 64 * 1024;
  private static final long STEP = 64 * 1024;
  private static final long ADJUST_NANOS = 20_000_000;
  /** Weight of a new sample in the moving averages. */
  private static final double ALPHA = 0.1;

  private final long ceiling;
  private volatile long budget;
  private double baseline;
  private double recent;
  private boolean resyncing;
  private boolean slowStart = true;
  private long lastAdjust;

  ResyncBudget(long windowBytes) {
    this.ceiling = Math.max(FLOOR, windowBytes / 4);
    this.budget = FLOOR;
  }

  long bytes() {
    return budget;
  }

  /** An application change was acknowledged {@code nanos} after it was sent. */
  synchronized void applicationLatency(long nanos) {
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
      budget = FLOOR;
      slowStart = true;
    }
  }

  /** Called as resync sends; adjusts at most every 20 ms. */
  synchronized void adjust(long now) {
    if (now - lastAdjust < ADJUST_NANOS) {
      return;
    }
    lastAdjust = now;
    if (baseline > 0 && recent > 2 * baseline) {
      slowStart = false;
      budget = Math.max(FLOOR, budget / 2);
      recent = 2 * baseline; // judge the next period by its own samples, not the old peak
    } else if (slowStart) {
      // until the application first shows strain, grow as TCP's slow start does: a resync that
      // starts from one run would otherwise take seconds to reach the window's quarter
      budget = Math.min(ceiling, budget * 2);
    } else {
      budget = Math.min(ceiling, budget + STEP);
    }
  }
}
