package io.replicator.cli;

import io.replicator.proto.StatusDocument;
import io.replicator.proto.VerifyFindings;
import java.time.Duration;
import java.util.List;
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
  private static final int MAX_EXAMPLES = 5;

  @Override
  int run(AdminClient client) {
    runOperation(client, "verify", Map.of(), TIMEOUT);
    StatusDocument last = new ProgressWatcher(client, "verify", VerifyCommand::progress, out(),
        ProgressWatcher.onTerminal()).watch();
    if (!last.getExtra().getVerify().hasResult()) {
      // An agent that answers when done may keep no result in its status: its answer was the result.
      return ExitCodes.OK;
    }
    StatusDocument.Verify verify = last.getExtra().getVerify();
    if (!verify.hasFindings()) {
      // A result without findings is a verify that did not finish; the result says why.
      throw new CommandFailure(ExitCodes.FAILURE, AdminClient.oneLine(verify.getResult()));
    }
    VerifyFindings found = verify.getFindings();
    out().println("verify: " + summary(found));
    return identical(found) ? ExitCodes.OK : ExitCodes.FAILURE;
  }

  private static boolean identical(VerifyFindings found) {
    return found.getBlocksDiffering() == 0 && found.getPathsDiffering() == 0;
  }

  /** One line for the operator: identical, or what differs and how to repair it. */
  static String summary(VerifyFindings found) {
    String compared = found.getPathsCompared() + " paths and " + Units.bytes(found.getBytesCompared()) + " compared";
    if (identical(found)) {
      return "identical: " + compared;
    }
    long blocks = found.getBlocksDiffering();
    long paths = found.getPathsDiffering();
    List<String> examples = found.getExamplesList();
    String shown = examples.isEmpty() ? ""
        : " (" + String.join(", ", examples.subList(0, Math.min(MAX_EXAMPLES, examples.size())))
            + (examples.size() > MAX_EXAMPLES ? ", ..." : "") + ")";
    return "DIFFERENT: " + blocks + (blocks == 1 ? " block" : " blocks") + " and " + paths
        + (paths == 1 ? " path" : " paths") + " differ" + shown + "; " + compared
        + "; they are marked dirty: 'replicator resync' repairs them";
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
