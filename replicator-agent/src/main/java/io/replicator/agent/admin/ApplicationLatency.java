package io.replicator.agent.admin;

import io.replicator.WriteStatistics;
import java.util.Objects;

/**
 * The application's write statistics as its lease renewals report them, kept monotonic across
 * application restarts: each report is cumulative since that application's file system opened,
 * so a new registration (or a count that went down) starts a new source, added to what came before.
 */
public final class ApplicationLatency {
  private WriteStatistics before = WriteStatistics.EMPTY;
  private WriteStatistics current = WriteStatistics.EMPTY;

  /** The application registered anew: its reports start from zero. */
  public synchronized void newSource() {
    before = add(before, current);
    current = WriteStatistics.EMPTY;
  }

  /** A report from the registered application, cumulative since its file system opened. */
  public synchronized void report(WriteStatistics statistics) {
    Objects.requireNonNull(statistics, "statistics");
    if (statistics.writes().count() < current.writes().count()
        || statistics.forces().count() < current.forces().count()
        || statistics.bytesWritten() < current.bytesWritten()) {
      newSource();
    }
    current = statistics;
  }

  /** Everything reported since the agent started: never goes down. */
  public synchronized WriteStatistics totals() {
    return add(before, current);
  }

  private static WriteStatistics add(WriteStatistics a, WriteStatistics b) {
    return new WriteStatistics(a.writes().plus(b.writes()), a.forces().plus(b.forces()),
        a.bytesWritten() + b.bytesWritten());
  }
}
