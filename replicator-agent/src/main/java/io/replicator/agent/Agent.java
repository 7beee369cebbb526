package io.replicator.agent;

import io.replicator.agent.config.BadConfigurationException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Entry point of {@code replicator agent}: loads the configuration, picks this server's node (or
 * the witness role) and runs until stopped.
 */
public final class Agent {
  private Agent() {}

  /**
   * Runs the agent until the process is asked to stop.
   *
   * @param configFile the pair's configuration file
   * @param node the node named by {@code --node}, or empty to pick by host name
   * @param witness run as the witness (no data, one vote) instead of a data node
   * @return the process exit code
   * @throws BadConfigurationException when the file is bad; nothing was started
   */
  public static int run(Path configFile, Optional<String> node, boolean witness) throws BadConfigurationException {
    throw new UnsupportedOperationException("agent not built yet");
  }
}
