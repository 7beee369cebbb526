package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * A change of the wall clock never causes a failover, a timeout or a stalled resync: every
 * duration in the engine (heartbeats, peer and handshake timeouts, reconnect back-off, resync
 * pacing, drain deadlines) is measured with {@code System.nanoTime()} or scheduled on Netty's and
 * the JDK's monotonic timers. The wall clock is read only to record when something happened.
 */
class MonotonicClockTest {
  private static final Pattern WALL_CLOCK = Pattern.compile(
      "currentTimeMillis|Instant\\.now|LocalDateTime\\.now|ZonedDateTime\\.now|Clock\\.system|new Date\\(");
  /** The only allowed use: a timestamp stored in the node record (when it became primary, fell behind). */
  private static final Pattern TIMESTAMP = Pattern.compile("\\.set\\w+SinceMillis\\(System\\.currentTimeMillis\\(\\)\\)");
  /**
   * The other: a delayed follower's delay and apply-until point are times of day by contract (they
   * outlive a restart, and an operator names a point in time); the line says so.
   */
  private static final Pattern DELAY_IS_WALL_TIME = Pattern.compile("// the delay is wall time$");

  @Test
  void theEngineMeasuresDurationsOnlyWithTheMonotonicClock() throws IOException {
    List<String> offenders = new ArrayList<>();
    try (Stream<Path> files = Files.walk(Path.of("src/main/java"))) {
      for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java"))::iterator) {
        List<String> lines = Files.readAllLines(f);
        for (int i = 0; i < lines.size(); i++) {
          String line = lines.get(i);
          if (WALL_CLOCK.matcher(line).find() && !TIMESTAMP.matcher(line).find()
              && !DELAY_IS_WALL_TIME.matcher(line).find()) {
            offenders.add(f + ":" + (i + 1) + ": " + line.trim());
          }
        }
      }
    }
    assertThat(offenders).as("wall-clock reads outside recorded timestamps").isEmpty();
  }
}
