package io.replicator.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code replicator status}: the pair as the local agent sees it, for a person or, with --json, a script. */
@Command(name = "status", mixinStandardHelpOptions = true,
    description = {"Show both nodes, their roles, generations and connection, dirty bytes, resync progress "
        + "and the last failover, as the local agent sees them."})
final class StatusCommand extends AdminVerb {
  @Option(names = "--json", description = "Print the agent's status document (JSON) as it was received.")
  boolean json;

  @Override
  int run(AdminClient client) {
    String body = client.status();
    if (json) {
      out().println(body.strip());
      return ExitCodes.OK;
    }
    out().print(StatusView.render(AdminClient.parseStatus(body, client.endpoint().address().toString())));
    return ExitCodes.OK;
  }
}
