package io.replicator.cli;

import io.replicator.agent.config.BadConfigurationException;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/**
 * A verb that talks to the local agent's admin endpoint: the shared options, the client, and
 * printing the agent's answer.
 */
abstract class AdminVerb implements Callable<Integer> {
  @Spec
  CommandLine.Model.CommandSpec spec;

  @Mixin
  AdminOptions adminOptions;

  @Override
  public final Integer call() throws BadConfigurationException {
    // the root command, not the parent: a verb may sit under a group (replicator follower pause)
    AdminEndpoint endpoint = adminOptions.resolve(spec.commandLine(),
        ((ReplicatorCommand) spec.root().userObject()).environment());
    try (AdminClient client = new AdminClient(endpoint)) {
      return run(client);
    }
  }

  /** Does the verb's work; failures are thrown as {@link CommandFailure}. */
  abstract int run(AdminClient client);

  PrintWriter out() {
    return spec.commandLine().getOut();
  }

  /** Runs operation {@code name} and prints the agent's answer (or that it is done). */
  String runOperation(AdminClient client, String name, Map<String, String> parameters, Duration timeout) {
    String answer = client.operation(name, parameters, timeout).strip();
    out().println(answer.isEmpty() ? name + ": done" : answer);
    out().flush();
    return answer;
  }
}
