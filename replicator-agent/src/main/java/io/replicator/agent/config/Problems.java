package io.replicator.agent.config;

import com.typesafe.config.ConfigOrigin;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Collects configuration errors as {@code file:line: key: message} lines, so that parsing goes on
 * after the first error and the operator sees every problem at once.
 */
final class Problems {
  private record Problem(String file, int line, int order, String text) {}

  private final String defaultFile;
  private final List<Problem> problems = new ArrayList<>();

  Problems(String defaultFile) {
    this.defaultFile = defaultFile;
  }

  /** Records an error located at {@code origin}, or at {@code fallbackLine} when it has no line. */
  void add(ConfigOrigin origin, int fallbackLine, String key, String message) {
    String file = origin != null && origin.filename() != null ? origin.filename() : defaultFile;
    int line = origin != null && origin.lineNumber() > 0 ? origin.lineNumber() : fallbackLine;
    add(file, line, key + ": " + message);
  }

  /** Records an error whose text already has its key (syntax errors have none). */
  void add(String file, int line, String text) {
    problems.add(new Problem(file, line, problems.size(), file + ":" + line + ": " + text));
  }

  int count() {
    return problems.size();
  }

  boolean any() {
    return !problems.isEmpty();
  }

  /** The error lines sorted by file and line, so they read like the file; ties keep their order. */
  List<String> lines() {
    return problems.stream()
        .sorted(Comparator.comparing(Problem::file).thenComparingInt(Problem::line)
            .thenComparingInt(Problem::order))
        .map(Problem::text)
        .toList();
  }
}
