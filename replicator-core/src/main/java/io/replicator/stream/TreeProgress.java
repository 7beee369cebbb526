package io.replicator.stream;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Files and bytes done of a long operation on the tree (a resync, a verify) against its totals,
 * with the rate and an estimate of the time left. Totals may grow while the operation runs (a walk
 * still counting); the estimate is given once they are final.
 */
final class TreeProgress {
  private final long startNanos = System.nanoTime();
  final AtomicLong filesDone = new AtomicLong();
  final AtomicLong bytesDone = new AtomicLong();
  final AtomicLong filesTotal = new AtomicLong();
  final AtomicLong bytesTotal = new AtomicLong();
  private volatile boolean totalsFinal;

  void totalsFinal() {
    totalsFinal = true;
  }

  /** A consistent reading: done never above total. */
  record Reading(long filesDone, long filesTotal, long bytesDone, long bytesTotal, long bytesPerSecond,
      long etaSeconds) {}

  Reading read() {
    long fd = filesDone.get();
    long bd = bytesDone.get();
    long ft = Math.max(fd, filesTotal.get());
    long bt = Math.max(bd, bytesTotal.get());
    double seconds = Math.max(1e-3, (System.nanoTime() - startNanos) / 1e9);
    long bytesPerSecond = (long) (bd / seconds);
    long eta = -1;
    if (totalsFinal) {
      // the slower of the two measures: many small files are bound by files, large ones by bytes
      double byBytes = bd > 0 ? (bt - bd) / (bd / seconds) : -1;
      double byFiles = fd > 0 ? (ft - fd) / (fd / seconds) : -1;
      double left = Math.max(byBytes, byFiles);
      eta = left < 0 ? -1 : (long) Math.ceil(left);
    }
    return new Reading(fd, ft, bd, bt, bytesPerSecond, eta);
  }
}
