package io.replicator.agent;

import io.replicator.agent.config.BadConfigurationException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A bare {@code main} for the agent ({@code --config F [--node N] [--witness]}), for launching it
 * without the CLI jar; {@code replicator agent} is the documented way.
 */
public final class AgentMain {
  private AgentMain() {}

  public static void main(String[] args) {
    Path config = null;
    String node = null;
    boolean witness = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--config" -> config = Path.of(args[++i]);
        case "--node" -> node = args[++i];
        case "--witness" -> witness = true;
        default -> {
          System.err.println("unknown argument " + args[i] + "; usage: --config FILE [--node NAME] [--witness]");
          System.exit(2);
        }
      }
    }
    if (config == null) {
      System.err.println("usage: --config FILE [--node NAME] [--witness]");
      System.exit(2);
    }
    try {
      System.exit(Agent.run(config, Optional.ofNullable(node), witness));
    } catch (BadConfigurationException e) {
      System.err.println(e.getMessage());
      System.exit(2);
    }
  }
}
