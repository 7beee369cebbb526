package io.replicator.cli;

import io.replicator.proto.StatusDocument;
import java.io.Console;
import java.io.PrintWriter;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Follows long work in the agent (a resync, a verify) by polling {@code GET /status}: a progress
 * bar with bytes, files, rate and ETA on a terminal, one plain line every few seconds otherwise
 * (logs and pipes do not want carriage returns). Stops when the work is no longer running and returns the
 * last status. Interrupting the command stops the watching, not the work.
 */
final class ProgressWatcher {
  static final Duration POLL_INTERVAL = Duration.ofMillis(500);
  static final Duration LINE_INTERVAL = Duration.ofSeconds(2);

  /**
   * One look at the work.
   *
   * @param done bytes done
   * @param total bytes in all (0 when not known yet)
   * @param bytesPerSecond the agent's rate, or -1 when it gives none
   * @param etaSeconds the agent's estimate, or -1 when it gives none
   * @param filesDone files (entries) done
   * @param filesTotal files in all (0 when not known, as from an agent that counts bytes only)
   */
  record Progress(long done, long total, long bytesPerSecond, long etaSeconds, long filesDone, long filesTotal) {

    /** Progress counted in bytes only. */
    Progress(long done, long total, long bytesPerSecond, long etaSeconds) {
      this(done, total, bytesPerSecond, etaSeconds, 0, 0);
    }
  }

  private final AdminClient client;
  private final String task;
  private final Function<StatusDocument, Optional<Progress>> running;
  private final PrintWriter out;
  private final boolean terminal;

  /**
   * @param task the work's name, at the start of each line
   * @param running the work's progress in a status, or empty when it is not running
   */
  ProgressWatcher(AdminClient client, String task, Function<StatusDocument, Optional<Progress>> running, PrintWriter out,
      boolean terminal) {
    this.client = client;
    this.task = task;
    this.running = running;
    this.out = out;
    this.terminal = terminal;
  }

  /** Polls until the work is not running; returns the status that said so. */
  StatusDocument watch() {
    ProgressBar bar = null;
    long nextLineNanos = System.nanoTime();
    Progress previous = null;
    long previousNanos = 0;
    // The agent's own estimate in seconds (-1 unknown), read by the bar's renderer thread.
    AtomicLong agentEta = new AtomicLong(-1);
    try {
      while (true) {
        StatusDocument status = client.statusDocument();
        long now = System.nanoTime();
        Optional<Progress> seen = running.apply(status);
        if (seen.isEmpty()) {
          return status;
        }
        Progress progress = withRate(seen.get(), previous, now - previousNanos);
        previous = seen.get();
        previousNanos = now;
        if (terminal) {
          if (bar == null) {
            bar = bar(progress.total(), agentEta);
          }
          agentEta.set(progress.etaSeconds());
          if (progress.total() > 0 && progress.total() != bar.getMax()) {
            bar.maxHint(progress.total());
          }
          bar.stepTo(progress.done());
          bar.setExtraMessage(barMessage(progress));
        } else if (now - nextLineNanos >= 0) {
          out.println(line(progress));
          out.flush();
          nextLineNanos = now + LINE_INTERVAL.toNanos();
        }
        sleep(POLL_INTERVAL);
      }
    } finally {
      if (bar != null) {
        bar.close();
      }
    }
  }

  /** Fills in a rate and ETA from two looks when the agent gives none. */
  private static Progress withRate(Progress now, Progress before, long elapsedNanos) {
    long rate = now.bytesPerSecond();
    if (rate < 0 && before != null && elapsedNanos > 0 && now.done() >= before.done()) {
      rate = Math.round((now.done() - before.done()) * 1e9 / elapsedNanos);
    }
    long eta = now.etaSeconds();
    if (eta < 0 && rate > 0 && now.total() >= now.done()) {
      eta = (now.total() - now.done() + rate - 1) / rate;
    }
    return new Progress(now.done(), now.total(), rate, eta, now.filesDone(), now.filesTotal());
  }

  String line(Progress progress) {
    return task + ": " + files(progress, " of ", ", ") + Units.bytes(progress.done()) + " of "
        + Units.bytes(progress.total()) + " (" + Units.percent(progress.done(), progress.total()) + "), "
        + (progress.bytesPerSecond() >= 0 ? Units.rate(progress.bytesPerSecond()) : "rate unknown")
        + ", ETA " + Units.seconds(progress.etaSeconds());
  }

  /** The bar counts bytes; the files and the rate go beside it. */
  private static String barMessage(Progress progress) {
    String rate = progress.bytesPerSecond() >= 0 ? Units.rate(progress.bytesPerSecond()) : "";
    String files = files(progress, "/", "");
    return files.isEmpty() || rate.isEmpty() ? files + rate : files + " · " + rate;
  }

  /** "1,234 of 10,000 files" and the separator, or nothing when the agent counts no files. */
  private static String files(Progress progress, String of, String separator) {
    if (progress.filesTotal() <= 0) {
      return "";
    }
    return String.format(Locale.ROOT, "%,d%s%,d files%s", progress.filesDone(), of, progress.filesTotal(), separator);
  }

  private ProgressBar bar(long total, AtomicLong agentEta) {
    return new ProgressBarBuilder()
        .setTaskName(task)
        .setInitialMax(total > 0 ? total : -1)
        .setStyle(ProgressBarStyle.COLORFUL_UNICODE_BLOCK)
        .setUnit("MiB", 1L << 20)
        .setUpdateIntervalMillis((int) POLL_INTERVAL.toMillis())
        .setEtaFunction(state -> {
          long seconds = agentEta.get();
          return seconds >= 0 ? Optional.of(Duration.ofSeconds(seconds)) : Optional.empty();
        })
        .build();
  }

  private static void sleep(Duration interval) {
    try {
      Thread.sleep(interval.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommandFailure(ExitCodes.FAILURE, "interrupted while watching; the work goes on in the agent", e);
    }
  }

  /**
   * Whether standard output is a terminal a person watches. From JDK 22 on, {@code System.console()}
   * is not null even when redirected, so {@code Console.isTerminal()} (JDK 22+) is asked when present.
   */
  static boolean onTerminal() {
    Console console = System.console();
    if (console == null) {
      return false;
    }
    try {
      Method isTerminal = Console.class.getMethod("isTerminal");
      return (Boolean) isTerminal.invoke(console);
    } catch (ReflectiveOperationException e) {
      return true;
    }
  }
}
