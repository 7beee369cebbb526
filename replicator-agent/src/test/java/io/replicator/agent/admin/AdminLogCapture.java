package io.replicator.agent.admin;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.core.AppenderBase;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.LoggerFactory;

/**
 * Takes over the admin endpoint's loggers (INFO and up) and Netty's (WARN and up) while open, and
 * checks each line as it comes, so a million-input run keeps no more than a sample: how many
 * lines report a refusal (in all, and per thread, for the in-process pipeline), and how many
 * carry a stack trace or the secret (counted, never kept).
 *
 * <p>replicator-core's {@code LogCapture} counts warnings only and keeps the first lines; this one
 * also counts INFO refusals and scans every line, which the fuzz needs. It replaces the loggers'
 * appenders rather than adding to them, so a run does not print a million lines.
 */
final class AdminLogCapture implements AutoCloseable {
  /** Lines that are not refusals: the start banner and an operation about to run. */
  private static final Set<String> NOT_REFUSALS = Set.of(
      "Admin endpoint on http://{}:{} ({})", "Admin operation {} requested");
  /** How the lines for a connection dropped (rather than a request answered) begin. */
  static final String DROP_PREFIX = "Admin connection";
  private static final int KEEP = 200;

  private final String secret;
  private final List<Logger> loggers = new ArrayList<>();
  private final List<Level> previousLevels = new ArrayList<>();
  private final List<Boolean> previousAdditive = new ArrayList<>();
  private final AtomicLong refusals = new AtomicLong();
  private final AtomicLong stackTraces = new AtomicLong();
  private final AtomicLong secretShown = new AtomicLong();
  private final AtomicLong foreign = new AtomicLong();
  private final Map<String, AtomicLong> refusalsByThread = new ConcurrentHashMap<>();
  private final Map<String, AtomicLong> dropsByThread = new ConcurrentHashMap<>();
  private final Map<String, AtomicLong> secretByThread = new ConcurrentHashMap<>();
  /** Stack traces and Netty lines. */
  private final Map<String, AtomicLong> troubleByThread = new ConcurrentHashMap<>();
  private final Map<String, AtomicLong> refusalsByTemplate = new ConcurrentHashMap<>();
  private final List<String> sample = new ArrayList<>();
  private final List<String> problems = new ArrayList<>();

  private final AppenderBase<ILoggingEvent> appender = new AppenderBase<>() {
    @Override
    protected void append(ILoggingEvent e) {
      // AppenderBase calls this under its own lock, so the lists need no more
      String line = format(e);
      boolean admin = e.getLoggerName().startsWith("io.replicator");
      if (!admin) {
        foreign.incrementAndGet();
        count(troubleByThread, e.getThreadName());
        keep(problems, line);
      }
      if (e.getThrowableProxy() != null) {
        stackTraces.incrementAndGet();
        count(troubleByThread, e.getThreadName());
        keep(problems, line);
      }
      if (secret != null && line.contains(secret)) {
        secretShown.incrementAndGet();
        count(secretByThread, e.getThreadName());
      }
      if (admin && !NOT_REFUSALS.contains(e.getMessage())) {
        refusals.incrementAndGet();
        count(e.getMessage().startsWith(DROP_PREFIX) ? dropsByThread : refusalsByThread, e.getThreadName());
        refusalsByTemplate.computeIfAbsent(e.getMessage(), t -> new AtomicLong()).incrementAndGet();
        keep(sample, line);
      }
    }
  };

  AdminLogCapture(String secret) {
    this.secret = secret;
    appender.setContext(((Logger) LoggerFactory.getLogger("io.replicator")).getLoggerContext());
    appender.start();
    take("io.replicator.agent.admin", Level.INFO);
    take("io.netty", Level.WARN);
  }

  private void take(String name, Level level) {
    Logger logger = (Logger) LoggerFactory.getLogger(name);
    loggers.add(logger);
    previousLevels.add(logger.getLevel());
    previousAdditive.add(logger.isAdditive());
    logger.addAppender(appender);
    logger.setLevel(level);
    logger.setAdditive(false);
  }

  private static void count(Map<String, AtomicLong> byThread, String thread) {
    byThread.computeIfAbsent(thread, t -> new AtomicLong()).incrementAndGet();
  }

  private static long ofThisThread(Map<String, AtomicLong> byThread) {
    AtomicLong n = byThread.get(Thread.currentThread().getName());
    return n == null ? 0 : n.get();
  }

  private static void keep(List<String> list, String line) {
    if (list.size() < KEEP) {
      list.add(line);
    }
  }

  private static String format(ILoggingEvent e) {
    StringBuilder b = new StringBuilder().append(e.getLevel()).append(' ').append(e.getLoggerName()).append(" [")
        .append(e.getThreadName()).append("] ").append(e.getFormattedMessage());
    for (IThrowableProxy t = e.getThrowableProxy(); t != null; t = t.getCause()) {
      b.append(" | ").append(t.getClassName()).append(": ").append(t.getMessage());
    }
    return b.toString();
  }

  /** Refusal lines so far (requests refused and connections dropped), from every thread. */
  long refusals() {
    return refusals.get();
  }

  /** Lines for refused requests logged by the calling thread (what the in-process pipeline logged). */
  long refusalsOfThisThread() {
    return ofThisThread(refusalsByThread);
  }

  /** Lines for connections dropped, logged by the calling thread. */
  long dropsOfThisThread() {
    return ofThisThread(dropsByThread);
  }

  /** Lines with the secret logged by the calling thread. */
  long secretShownOfThisThread() {
    return ofThisThread(secretByThread);
  }

  /** Lines with a stack trace, or from Netty, logged by the calling thread. */
  long troubleOfThisThread() {
    return ofThisThread(troubleByThread);
  }

  /** Refusal lines whose message template (not the formatted line) contains {@code fragment}. */
  long refusalsLike(String fragment) {
    return refusalsByTemplate.entrySet().stream().filter(e -> e.getKey().contains(fragment))
        .mapToLong(e -> e.getValue().get()).sum();
  }

  long stackTraces() {
    return stackTraces.get();
  }

  long secretShown() {
    return secretShown.get();
  }

  /** Lines from Netty: a warning there means an exception or a leak got past the endpoint. */
  long foreign() {
    return foreign.get();
  }

  /** The first refusal lines. */
  List<String> sample() {
    synchronized (appender) {
      return List.copyOf(sample);
    }
  }

  /** The first lines with a stack trace, or from Netty. */
  List<String> problems() {
    synchronized (appender) {
      return List.copyOf(problems);
    }
  }

  /** Counts of refusal lines by message template, for the report. */
  Map<String, Long> byTemplate() {
    Map<String, Long> out = new TreeMap<>();
    refusalsByTemplate.forEach((k, v) -> out.put(k, v.get()));
    return out;
  }

  @Override
  public void close() {
    for (int i = 0; i < loggers.size(); i++) {
      loggers.get(i).detachAppender(appender);
      loggers.get(i).setLevel(previousLevels.get(i));
      loggers.get(i).setAdditive(previousAdditive.get(i));
    }
    appender.stop();
  }
}
