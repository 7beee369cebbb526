package io.replicator.agent.config;

import java.util.List;

/**
 * The configuration file cannot be used. Each error is one line of the form
 * {@code file:line: key: message}, so an operator can fix every problem in one pass.
 */
public final class BadConfigurationException extends Exception {
  private static final long serialVersionUID = 1L;

  private final List<String> errors;

  /** Creates the exception from at least one error line. */
  public BadConfigurationException(List<String> errors) {
    super(String.join("\n", requireSome(errors)));
    this.errors = List.copyOf(errors);
  }

  /** The error lines, in file order. */
  public List<String> errors() {
    return errors;
  }

  private static List<String> requireSome(List<String> errors) {
    if (errors.isEmpty()) {
      throw new IllegalArgumentException("a configuration error needs at least one message");
    }
    return errors;
  }
}
