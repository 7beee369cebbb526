package io.replicator.testing;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import org.slf4j.LoggerFactory;

/**
 * Records everything the library logs (down to DEBUG) while open, instead of printing it, so a
 * test can check what an operator would read: one line per refusal, and never a secret.
 */
public final class LogCapture implements AutoCloseable {
  private final Logger logger;
  private final Level previousLevel;
  private final boolean previousAdditive;
  /** Lines kept for reading; beyond this only counted, so a long fuzz run cannot fill the heap. */
  private static final int KEEP = 10_000;
  private final List<ILoggingEvent> events = new ArrayList<>();
  private final AtomicLong warnings = new AtomicLong();
  private final java.util.Map<String, AtomicLong> warningsByThread = new java.util.concurrent.ConcurrentHashMap<>();
  private final AppenderBase<ILoggingEvent> appender = new AppenderBase<>() {
    @Override
    protected void append(ILoggingEvent e) {
      if (e.getLevel().isGreaterOrEqual(Level.WARN)) {
        warnings.incrementAndGet();
        warningsByThread.computeIfAbsent(e.getThreadName(), t -> new AtomicLong()).incrementAndGet();
      }
      // AppenderBase calls this under its own lock
      if (events.size() < KEEP) {
        e.prepareForDeferredProcessing();
        events.add(e);
      }
    }
  };

  private LogCapture(String name, Level level) {
    logger = (Logger) LoggerFactory.getLogger(name);
    previousLevel = logger.getLevel();
    previousAdditive = logger.isAdditive();
    appender.setContext(logger.getLoggerContext());
    appender.start();
    logger.addAppender(appender);
    logger.setLevel(level);
    logger.setAdditive(false);
  }

  /** Captures the loggers under {@code io.replicator}. */
  public static LogCapture start() {
    return new LogCapture("io.replicator", Level.DEBUG);
  }

  /** Captures the loggers under {@code io.replicator} at WARN and above only (cheap, for long runs). */
  public static LogCapture warningsOnly() {
    return new LogCapture("io.replicator", Level.WARN);
  }

  /** Every line so far: level, logger, formatted message and any exception's messages. */
  public List<String> lines() {
    synchronized (appender) {
      return events.stream().map(LogCapture::format).collect(Collectors.toList());
    }
  }

  /** How many lines at WARN or above were logged so far (all of them, kept or not). */
  public long warningCount() {
    return warnings.get();
  }

  /** Lines at WARN or above logged by the calling thread (what an in-process pipeline logged). */
  public long warningCountOfThisThread() {
    AtomicLong n = warningsByThread.get(Thread.currentThread().getName());
    return n == null ? 0 : n.get();
  }

  /** Lines at WARN or above. */
  public List<String> warnings() {
    synchronized (appender) {
      return events.stream().filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
          .map(LogCapture::format).collect(Collectors.toList());
    }
  }

  private static String format(ILoggingEvent e) {
    StringBuilder b = new StringBuilder(e.getLevel() + " " + e.getLoggerName() + " " + e.getFormattedMessage());
    for (var t = e.getThrowableProxy(); t != null; t = t.getCause()) {
      b.append(" | ").append(t.getClassName()).append(": ").append(t.getMessage());
    }
    return b.toString();
  }

  @Override
  public void close() {
    logger.detachAppender(appender);
    logger.setLevel(previousLevel);
    logger.setAdditive(previousAdditive);
    appender.stop();
  }
}
