package io.replicator.cli;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code replicator demote}: makes this node secondary by hand. */
@Command(name = "demote", mixinStandardHelpOptions = true,
    description = {"Make this node secondary by hand: stop the application and stop serving writes. "
        + "Refused when no other node could take over or it would leave a split brain; --force overrides "
        + "that guard."})
final class DemoteCommand extends AdminVerb {
  /** Demotion stops the application, which may take a while. */
  static final Duration TIMEOUT = Duration.ofMinutes(5);

  @Option(names = "--force", description = "Demote even if the guard against split brain refuses.")
  boolean force;

  @Override
  int run(AdminClient client) {
    Map<String, String> parameters = new LinkedHashMap<>();
    if (force) {
      parameters.put("force", "true");
    }
    return Guarded.run(() -> runOperation(client, "demote", parameters, TIMEOUT), force);
  }
}
