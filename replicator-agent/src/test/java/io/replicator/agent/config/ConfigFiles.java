package io.replicator.agent.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Writes configuration files into a test's directory and collects what loading them reports. */
final class ConfigFiles {
  /**
   * The smallest valid file: cluster and two nodes, five lines, so that lines appended to it start
   * at line 6.
   */
  static final String MINIMAL = """
      cluster = "orders"
      nodes {
        alpha { address = "10.0.0.1:7400", root = "/srv/data" }
        beta { address = "10.0.0.2:7400", root = "/srv/data" }
      }
      """;

  private final Path file;

  ConfigFiles(Path directory) {
    this.file = directory.resolve("replicator.conf");
  }

  Path file() {
    return file;
  }

  Path write(String text) {
    try {
      Files.writeString(file, text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /** The error lines of loading {@code text}, which must fail. */
  List<String> errors(String text) {
    write(text);
    BadConfigurationException e =
        catchThrowableOfType(BadConfigurationException.class, () -> AgentConfig.load(file));
    assertThat(e).as("loading should fail:\n%s", text).isNotNull();
    assertThat(e.getMessage()).isEqualTo(String.join("\n", e.errors()));
    return e.errors();
  }

  /** An expected error line: {@code file:line: text}. */
  String at(int line, String text) {
    return file + ":" + line + ": " + text;
  }
}
