package io.replicator.cli;

import io.replicator.proto.StatusDocument;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code replicator resync}: brings the out-of-date node up to date and follows the progress. */
@Command(name = "resync", mixinStandardHelpOptions = true,
    description = {"Start a resync of the pair and follow it to the end: a progress bar (bytes, rate, ETA) on "
        + "a terminal, a plain line every 2 s otherwise. Interrupting the command stops watching; the "
        + "resync goes on in the agent."})
final class ResyncCommand extends AdminVerb {
  /** The agent may answer only once the resync is done. */
  static final Duration TIMEOUT = Duration.ofMinutes(10);

  @Option(names = "--full", description = "Compare every block by checksum instead of sending only the dirty ones.")
  boolean full;

  @Option(names = "--discard-local",
      description = "Resolve a split brain by discarding this node's changes: it becomes the target and "
          + "receives the other node's data.")
  boolean discardLocal;

  @Override
  int run(AdminClient client) {
    Map<String, String> parameters = new LinkedHashMap<>();
    if (full) {
      parameters.put("full", "true");
    }
    if (discardLocal) {
      parameters.put("discard-local", "true");
    }
    runOperation(client, "resync", parameters, TIMEOUT);
    StatusDocument last = new ProgressWatcher(client, "resync", ResyncCommand::progress, out(), ProgressWatcher.onTerminal())
        .watch();
    boolean connected = last.getPeer().getConnected();
    boolean outOfDate = last.getPeer().getOutOfDate();
    String problem = last.hasProblem() ? ": " + last.getProblem() : "";
    if (!connected) {
      throw new CommandFailure(ExitCodes.FAILURE, "resync ended with the peer disconnected" + problem);
    }
    if (outOfDate) {
      throw new CommandFailure(ExitCodes.FAILURE, "resync ended with the peer still out of date" + problem);
    }
    out().println("resync: done, the peer is up to date (state " + StatusView.name(last.getState()) + ")");
    return ExitCodes.OK;
  }

  /** The running resync in a status: its {@code resync} object, null when none runs. */
  static Optional<ProgressWatcher.Progress> progress(StatusDocument status) {
    if (!status.hasResync()) {
      return Optional.empty();
    }
    StatusDocument.Resync r = status.getResync();
    return Optional.of(new ProgressWatcher.Progress(r.getBytesDone(), r.getBytesTotal(), r.getBytesPerSecond(),
        r.getEtaSeconds(), r.getFilesDone(), r.getFilesTotal()));
  }
}
