package io.replicator.cli;

import io.replicator.proto.StatusDocument;
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
    StatusDocument last = new ProgressWatcher(client, "verify", VerifyCommand::progress, out(),
        ProgressWatcher.onTerminal()).watch();
    if (!last.getExtra().getVerify().hasResult()) {
      // An agent that answers when done may keep no result in its status: its answer was the result.
      return ExitCodes.OK;
    }
    // The agent reports the library's words; they say whether the trees differ.
    out().println("verify: " + last.getExtra().getVerify().getResult());
    return ExitCodes.OK;
  }

  /** The running verify in a status: {@code extra.verify} while its {@code running} is true. */
  static Optional<ProgressWatcher.Progress> progress(StatusDocument status) {
    StatusDocument.Verify v = status.getExtra().getVerify();
    if (!v.getRunning()) {
      return Optional.empty();
    }
    return Optional.of(new ProgressWatcher.Progress(v.getBytesDone(), v.getBytesTotal(),
        v.hasBytesPerSecond() ? v.getBytesPerSecond() : -1, v.hasEtaSeconds() ? v.getEtaSeconds() : -1,
        v.getFilesDone(), v.getFilesTotal()));
  }
}
