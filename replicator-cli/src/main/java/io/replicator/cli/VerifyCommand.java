package io.replicator.cli;

import com.google.protobuf.Value;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;

/** {@code replicator verify}: compares both nodes' trees by checksum while the application runs. */
@Command(name = "verify", mixinStandardHelpOptions = true,
    description = {"Compare the whole tree with the other node by checksum, online, and report what differs "
        + "(differing blocks are marked dirty; 'replicator resync' repairs them). Shows a progress bar on a "
        + "terminal, a plain line every 2 s otherwise. Exit code 1 when the trees differ."})
final class VerifyCommand extends AdminVerb {
  /** The agent may answer only once the verify is done. */
  static final Duration TIMEOUT = Duration.ofMinutes(10);

  @Override
  int run(AdminClient client) {
    runOperation(client, "verify", Map.of(), TIMEOUT);
    Json last = new ProgressWatcher(client, "verify", VerifyCommand::progress, out(), ProgressWatcher.onTerminal())
        .watch();
    Optional<Value> result = last.value("extra", "verify", "result");
    if (result.isEmpty()) {
      // An agent that answers when done may keep no result in its status: its answer was the result.
      return ExitCodes.OK;
    }
    VerifyResult outcome = VerifyResult.of(result.get());
    if (outcome.kind() == VerifyResult.Kind.ERROR) {
      throw new CommandFailure(ExitCodes.FAILURE, outcome.summary());
    }
    out().println("verify: " + outcome.summary());
    return outcome.kind() == VerifyResult.Kind.DIFFERENT ? ExitCodes.FAILURE : ExitCodes.OK;
  }

  /** The running verify in a status: {@code extra.verify} while its {@code running} is true. */
  static Optional<ProgressWatcher.Progress> progress(Json status) {
    return status.object("extra", "verify")
        .filter(v -> v.bool("running").orElse(false))
        .map(v -> new ProgressWatcher.Progress(v.integer("bytesDone").orElse(0L), v.integer("bytesTotal").orElse(0L),
            v.integer("bytesPerSecond").orElse(-1L), v.integer("etaSeconds").orElse(-1L),
            v.integer("filesDone").orElse(0L), v.integer("filesTotal").orElse(0L)));
  }
}
