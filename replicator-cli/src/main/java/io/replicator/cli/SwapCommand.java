package io.replicator.cli;

import java.time.Duration;
import java.util.Map;
import picocli.CommandLine.Command;

/** {@code replicator swap}: moves the primary role to the other node without losing a write. */
@Command(name = "swap", mixinStandardHelpOptions = true,
    description = {"Move the primary role to the other node: stop the application, apply a final barrier, "
        + "promote the other node and start the application there. No acknowledged write is lost; the "
        + "downtime is the application's stop plus start."})
final class SwapCommand extends AdminVerb {
  /** Stopping and starting an application may take minutes. */
  static final Duration TIMEOUT = Duration.ofMinutes(10);

  @Override
  int run(AdminClient client) {
    runOperation(client, "swap", Map.of(), TIMEOUT);
    return ExitCodes.OK;
  }
}
