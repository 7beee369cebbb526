package io.replicator.cli;

import io.replicator.agent.Agent;
import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.BadConfigurationException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code replicator agent}: runs this server's agent (or the witness) until it is stopped. */
@Command(name = "agent", mixinStandardHelpOptions = true,
    description = {"Run the agent of this server's node: heartbeats, failover, the application's scripts "
        + "and checks, and the admin endpoint. With --witness, run the third voter that holds no data. "
        + "A bad configuration file is refused with file:line: key: message, and nothing starts."})
final class AgentCommand implements Callable<Integer> {
  @Option(names = "--config", required = true, paramLabel = "FILE",
      description = "The pair's configuration file (the same on both servers).")
  Path config;

  @Option(names = "--node", paramLabel = "NAME",
      description = "This server's node in the file (default: the node matching the host name).")
  String node;

  @Option(names = "--witness", description = "Run as the witness: no data, one vote.")
  boolean witness;

  @Override
  public Integer call() throws BadConfigurationException {
    // Loading here first refuses a bad file with the same lines before anything of the agent starts.
    AgentConfig.load(config);
    return Agent.run(config, Optional.ofNullable(node), witness);
  }
}
