package io.replicator.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;

/**
 * CPU time of the primary's side of this process: every live thread but the secondaries' and the
 * followers' (their threads are named {@code replica-*}), so that a case can say what each copy
 * costs the primary even though all nodes share one JVM. Threads that end between two readings
 * are not counted; the cases keep their threads for the whole measurement.
 */
final class PrimaryCpu {
  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  private PrimaryCpu() {}

  /** Nanoseconds of CPU used so far by the primary's live threads, or -1 when the JVM cannot say. */
  static long nanos() {
    if (!THREADS.isThreadCpuTimeSupported()) {
      return -1;
    }
    if (!THREADS.isThreadCpuTimeEnabled()) {
      THREADS.setThreadCpuTimeEnabled(true);
    }
    long total = 0;
    long[] ids = THREADS.getAllThreadIds();
    ThreadInfo[] infos = THREADS.getThreadInfo(ids);
    for (int i = 0; i < ids.length; i++) {
      ThreadInfo info = infos[i];
      if (info == null || info.getThreadName().startsWith("replica-")) {
        continue;
      }
      long cpu = THREADS.getThreadCpuTime(ids[i]);
      if (cpu > 0) {
        total += cpu;
      }
    }
    return total;
  }
}
