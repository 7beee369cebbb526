package io.replicator.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Timestamp;
import io.replicator.agent.admin.AdminJson;
import io.replicator.proto.ApplyUntilRequest;
import io.replicator.proto.FollowerLog;
import io.replicator.proto.StatusDocument;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code replicator follower ...}: a follower agent's status and a delayed follower's controls,
 * against the follower's admin endpoint ({@code --admin}, or {@code --config F --node NAME}).
 */
@Command(name = "follower", mixinStandardHelpOptions = true,
    description = {"Talk to a follower's agent: its status, and for a DELAYED follower pause, resume, "
        + "apply-until and the log of changes it holds back."},
    subcommands = {FollowerCommand.Status.class, FollowerCommand.Pause.class, FollowerCommand.Resume.class,
        FollowerCommand.ApplyUntil.class, FollowerCommand.Log.class})
final class FollowerCommand implements Runnable {
  static final Duration OPERATION_TIMEOUT = Duration.ofMinutes(2);

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(),
        "missing follower command: status, pause, resume, apply-until or log");
  }

  /** Reads a status document the follower's agent answered with. */
  static StatusDocument document(AdminClient client, String json) {
    return AdminClient.parseStatus(json, client.endpoint().address().toString());
  }

  @Command(name = "status", mixinStandardHelpOptions = true,
      description = "The follower's mode, delay, how far back its applied tree stands, backlog and log disk use.")
  static final class Status extends AdminVerb {
    @Option(names = "--json", description = "Print the agent's status document (JSON) as it was received.")
    boolean json;

    @Override
    int run(AdminClient client) {
      String body = client.status();
      if (json) {
        out().println(body.strip());
      } else {
        out().print(FollowerText.status(document(client, body), Instant.now()));
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "pause", mixinStandardHelpOptions = true,
      description = "Stop applying changes (they keep arriving into the log). Durable across restarts.")
  static final class Pause extends AdminVerb {
    @Override
    int run(AdminClient client) {
      StatusDocument doc = document(client, client.operation("pause", Map.of(), OPERATION_TIMEOUT));
      out().print("paused\n" + FollowerText.status(doc, Instant.now()));
      return ExitCodes.OK;
    }
  }

  @Command(name = "resume", mixinStandardHelpOptions = true,
      description = "Apply again as changes age past the delay; clears an apply-until point.")
  static final class Resume extends AdminVerb {
    @Override
    int run(AdminClient client) {
      StatusDocument doc = document(client, client.operation("resume", Map.of(), OPERATION_TIMEOUT));
      out().print("resumed\n" + FollowerText.status(doc, Instant.now()));
      return ExitCodes.OK;
    }
  }

  @Command(name = "apply-until", mixinStandardHelpOptions = true,
      description = "Apply every change received before TIME, whatever the delay, then hold there (as paused).")
  static final class ApplyUntil extends AdminVerb {
    @Parameters(index = "0", paramLabel = "TIME", converter = TimeArgument.Converter.class,
        description = "An ISO-8601 instant (2026-12-03T10:15:00Z) or a time ago (-10m, -2h).")
    Instant before;

    @Override
    int run(AdminClient client) {
      String request = AdminJson.print(ApplyUntilRequest.newBuilder().setBefore(timestamp(before)));
      StatusDocument doc = document(client, client.operation("apply-until", request, OPERATION_TIMEOUT));
      out().print("applying until " + before + ", then holding\n" + FollowerText.status(doc, Instant.now()));
      return ExitCodes.OK;
    }
  }

  @Command(name = "log", mixinStandardHelpOptions = true,
      description = "The changes the follower holds, oldest first: time, sequence, kind, path, bytes, applied or "
          + "pending.")
  static final class Log extends AdminVerb {
    @Option(names = "--since", paramLabel = "TIME", converter = TimeArgument.Converter.class,
        description = "Only changes received at or after TIME: an ISO-8601 instant or a time ago (-10m).")
    Instant since;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "100",
        description = "At most N changes, 1..10000 (default: ${DEFAULT-VALUE}).")
    int limit;

    @Override
    int run(AdminClient client) {
      if (limit < 1 || limit > 10_000) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--limit " + limit + " is not in 1..10000");
      }
      Map<String, String> query = new LinkedHashMap<>();
      if (since != null) {
        query.put("since", since.toString());
      }
      query.put("limit", Integer.toString(limit));
      String body = client.get("/log", query, "log");
      FollowerLog log;
      try {
        log = AdminJson.parse(body, FollowerLog.newBuilder()).build();
      } catch (InvalidProtocolBufferException | RuntimeException e) {
        throw new CommandFailure(ExitCodes.FAILURE, "the agent at " + client.endpoint().address()
            + " sent a log that is not a follower log: " + AdminClient.oneLine(e.getMessage()), e);
      }
      if (log.getChangesCount() == 0) {
        out().println("no logged changes" + (since != null ? " since " + since : ""));
      }
      for (FollowerLog.Change c : log.getChangesList()) {
        out().println(FollowerText.change(c));
      }
      return ExitCodes.OK;
    }
  }

  private static Timestamp timestamp(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }
}
