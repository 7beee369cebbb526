package io.replicator.cli;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code replicator promote}: makes this node primary by hand. */
@Command(name = "promote", mixinStandardHelpOptions = true,
    description = {"Make this node primary by hand. Refused when the other node may be primary or holds "
        + "newer data (split brain); --force overrides that guard."})
final class PromoteCommand extends AdminVerb {
  /** Promotion starts the application, which may take a while. */
  static final Duration TIMEOUT = Duration.ofMinutes(5);

  @Option(names = "--force", description = "Promote even if the guard against split brain refuses.")
  boolean force;

  @Override
  int run(AdminClient client) {
    Map<String, String> parameters = new LinkedHashMap<>();
    if (force) {
      parameters.put("force", "true");
    }
    return Guarded.run(() -> runOperation(client, "promote", parameters, TIMEOUT), force);
  }
}
