package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The application that runs on the primary: how the agent starts, stops and checks it, and how many
 * local restarts it tries before it fails over to the peer.
 *
 * @param start absolute path of the start script, or empty when the agent starts nothing
 * @param stop absolute path of the stop script, or empty
 * @param scriptTimeout how long a start or stop script may run
 * @param restartsBeforeFailover local restarts after failed checks before failing over (0: fail over
 *     at once)
 * @param checkers the health checks, all of which must pass
 * @param checkInterval the interval between rounds of checks
 */
public record ApplicationConfig(
    Optional<Path> start,
    Optional<Path> stop,
    Duration scriptTimeout,
    int restartsBeforeFailover,
    List<Checker> checkers,
    Duration checkInterval) {

  /** The values used when {@code application} is left out. */
  public static final ApplicationConfig DEFAULTS = new ApplicationConfig(
      Optional.empty(), Optional.empty(), Duration.ofSeconds(30), 3, List.of(),
      Duration.ofSeconds(2));

  public ApplicationConfig {
    requireNonNull(start, "start");
    requireNonNull(stop, "stop");
    requireNonNull(scriptTimeout, "scriptTimeout");
    requireNonNull(checkInterval, "checkInterval");
    checkers = List.copyOf(checkers);
    if (restartsBeforeFailover < 0) {
      throw new IllegalArgumentException("restartsBeforeFailover < 0: " + restartsBeforeFailover);
    }
  }
}
