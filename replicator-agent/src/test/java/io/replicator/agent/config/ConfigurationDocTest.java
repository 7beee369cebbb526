package io.replicator.agent.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** CONFIGURATION.md and the example must cover every key the parser accepts, so docs cannot drift. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ConfigurationDocTest {
  // Surefire runs in the module directory.
  private static final Path DOC = Path.of("CONFIGURATION.md");
  private static final Path EXAMPLE = Path.of("..", "examples", "replicator.conf");

  @Test
  void everyKeyTheParserAcceptsIsDocumented() throws Exception {
    String doc = Files.readString(DOC);

    assertThat(ConfigKeys.documentedKeys()).isNotEmpty().allSatisfy(key ->
        assertThat(doc).as("CONFIGURATION.md documents %s", key).contains("| `" + key + "` |"));
  }

  @Test
  void everyDocumentedKeyIsOneTheParserAccepts() throws Exception {
    // A table row for a key the parser refuses would send operators into an error.
    Files.readAllLines(DOC).stream()
        .filter(line -> line.startsWith("| `"))
        .map(line -> line.substring(3, line.indexOf('`', 3)))
        .filter(key -> !key.equals("nodes") && !key.equals("witness") && !key.equals("followers")
            && !key.equals("application.checkers"))
        .forEach(key -> assertThat(ConfigKeys.documentedKeys()).contains(key));
  }

  @Test
  void theExampleSetsEveryKey() throws Exception {
    String example = Files.readString(EXAMPLE);

    assertThat(ConfigKeys.documentedKeys()).allSatisfy(key -> {
      String leaf = key.substring(key.lastIndexOf('.') + 1);
      assertThat(example).as("the example sets %s", key).containsPattern("\\b" + leaf + " *=");
    });
  }
}
