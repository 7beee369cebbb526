package io.replicator.cli;

import com.google.protobuf.Value;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Renders {@code GET /status} for a person: both nodes side by side (role, state, generation,
 * reachability), then the link, dirty bytes, resync progress, the witness, the application, a
 * running verify and the last failover. {@code extra} entries it does not know are listed as
 * {@code key: value}, so a newer agent's fields still show.
 */
final class StatusView {
  private static final int LABEL_WIDTH = 15;

  private final Json status;
  private final StringBuilder text = new StringBuilder();
  /** The {@code extra} keys rendered in their own rows; the rest are listed as they are. */
  private final Set<String> shown = new HashSet<>();

  private StatusView(Json status) {
    this.status = status;
  }

  static String render(Json status) {
    return new StatusView(status).render();
  }

  private String render() {
    List<String> heading = new ArrayList<>();
    extraString("cluster").ifPresent(cluster -> heading.add("cluster " + cluster));
    status.integer("extra", "epoch").ifPresent(epoch -> {
      shown.add("epoch");
      heading.add("epoch " + epoch);
    });
    status.string("mode").ifPresent(mode -> heading.add("mode " + mode));
    heading.add(status.bool("inSync").orElse(false) ? "in sync" : "NOT in sync");
    text.append(String.join(", ", heading)).append('\n').append('\n');

    nodes();
    text.append('\n');

    row("connection", connection());
    row("dirty", Units.bytes(status.integer("dirtyBytes").orElse(0L)));
    row("sequence", "last " + status.integer("lastSequence").orElse(0L) + ", applied "
        + status.integer("appliedSequence").orElse(0L) + ", in flight "
        + status.integer("inFlight", "changes").orElse(0L) + " changes / "
        + Units.bytes(status.integer("inFlight", "bytes").orElse(0L)));
    row("resync", status.object("resync").map(StatusView::resync).orElse("none"));
    status.string("problem").ifPresent(problem -> row("problem", problem));
    if (extraIsNull("witness")) {
      row("witness", "none configured");
    } else {
      extraObject("witness").ifPresent(witness -> row("witness", witness(witness)));
    }
    extraObject("application").ifPresent(app -> row("application", application(app)));
    if (!extraIsNull("verify")) {
      extraObject("verify").ifPresent(verify -> row("verify", verify(verify)));
    }
    row("last failover", status.object("lastFailover").map(StatusView::failover).orElse("none"));

    List<String> others = new ArrayList<>();
    status.object("extra").ifPresent(extra -> extra.struct().getFieldsMap().forEach((key, value) -> {
      if (!shown.contains(key)) {
        others.add(key + ": " + Json.render(value));
      }
    }));
    if (!others.isEmpty()) {
      text.append('\n');
      others.forEach(line -> text.append(line).append('\n'));
    }
    return text.toString();
  }

  private Optional<String> extraString(String key) {
    Optional<String> value = status.string("extra", key);
    value.ifPresent(v -> shown.add(key));
    return value;
  }

  private Optional<Json> extraObject(String key) {
    Optional<Json> value = status.object("extra", key);
    value.ifPresent(v -> shown.add(key));
    return value;
  }

  /** Whether {@code extra.key} is present and JSON null (for example "no witness configured"). */
  private boolean extraIsNull(String key) {
    Optional<Json> extra = status.object("extra");
    Value value = extra.map(e -> e.struct().getFieldsMap().get(key)).orElse(null);
    boolean isNull = value != null && value.hasNullValue();
    if (isNull) {
      shown.add(key);
    }
    return isNull;
  }

  /** Two columns: this node from the document itself, the peer from {@code extra.peerNode}. */
  private void nodes() {
    Optional<Json> peer = extraObject("peerNode");
    String localName = status.string("node").orElse("?");
    String peerName = peer.flatMap(p -> p.string("name")).orElse("peer");
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"node", localName + " (this node)", peerName + " (peer)"});
    rows.add(new String[] {"role", status.string("role").orElse("-"),
        peer.flatMap(p -> p.string("state")).map(StatusView::role).orElse("-")});
    rows.add(new String[] {"state", status.string("state").orElse("-"),
        peer.flatMap(p -> p.string("state")).orElse("-")});
    rows.add(new String[] {"generation", status.string("generation").orElse("-"),
        peer.flatMap(p -> p.string("generation")).orElse("-")});
    rows.add(new String[] {"address", "-", status.string("peer", "address").orElse("-")});
    rows.add(new String[] {"reachable", "yes", peer.map(StatusView::reachability).orElse(
        status.bool("peer", "connected").orElse(false) ? "connected" : "unknown")});
    int width = 0;
    for (String[] row : rows) {
      width = Math.max(width, row[1].length());
    }
    for (String[] row : rows) {
      text.append(pad(row[0], LABEL_WIDTH)).append(pad(row[1], width + 3)).append(row[2]).append('\n');
    }
  }

  private String connection() {
    boolean connected = status.bool("peer", "connected").orElse(false);
    boolean outOfDate = status.bool("peer", "outOfDate").orElse(false);
    return (connected ? "connected" : "disconnected") + (outOfDate ? ", peer out of date" : ", peer up to date");
  }

  private static String reachability(Json peer) {
    Optional<Boolean> reachable = peer.bool("reachable");
    String answer = reachable.map(r -> r ? "yes" : "NO").orElse("unknown");
    Optional<Long> heard = peer.integer("lastHeardMillisAgo");
    return heard.map(ms -> answer + ", heard " + ago(ms)).orElse(answer);
  }

  private static String ago(long millis) {
    return millis < 10_000 ? millis + " ms ago" : Units.seconds(millis / 1000) + " ago";
  }

  static String resync(Json resync) {
    long done = resync.integer("bytesDone").orElse(0L);
    long total = resync.integer("bytesTotal").orElse(0L);
    return files(resync) + Units.bytes(done) + " of " + Units.bytes(total) + " (" + Units.percent(done, total) + "), "
        + Units.rate(resync.integer("bytesPerSecond").orElse(0L)) + ", ETA "
        + Units.seconds(resync.integer("etaSeconds").orElse(-1L));
  }

  /** "1,234 of 10,000 files, " from a progress object, or nothing when it counts no files. */
  private static String files(Json progress) {
    long total = progress.integer("filesTotal").orElse(0L);
    if (total <= 0) {
      return "";
    }
    return String.format(Locale.ROOT, "%,d of %,d files, ", progress.integer("filesDone").orElse(0L), total);
  }

  private static String witness(Json witness) {
    String address = witness.string("address").orElse("?");
    return address + witness.bool("reachable").map(r -> r ? ", reachable" : ", NOT reachable").orElse("");
  }

  private static String application(Json app) {
    List<String> parts = new ArrayList<>();
    app.bool("running").ifPresent(running -> parts.add(running ? "running" : "not running"));
    app.bool("registered").ifPresent(registered -> parts.add(registered ? "registered" : "not registered"));
    app.integer("restarts").ifPresent(restarts -> parts.add(restarts + (restarts == 1 ? " restart" : " restarts")));
    return parts.isEmpty() ? Json.render(Value.newBuilder().setStructValue(app.struct()).build())
        : String.join(", ", parts);
  }

  private static String verify(Json verify) {
    boolean running = verify.bool("running").orElse(false);
    long done = verify.integer("bytesDone").orElse(0L);
    long total = verify.integer("bytesTotal").orElse(0L);
    if (running) {
      return "running, " + files(verify) + Units.bytes(done) + " of " + Units.bytes(total) + " ("
          + Units.percent(done, total) + "), ETA " + Units.seconds(verify.integer("etaSeconds").orElse(-1L));
    }
    return verify.value("result").map(result -> "last result: " + VerifyResult.describe(result)).orElse("idle");
  }

  private static String failover(Json failover) {
    String at = failover.string("at").orElse("?");
    String from = failover.string("from").orElse("?");
    String to = failover.string("to").orElse("?");
    return at + " " + from + " -> " + to + failover.string("reason").map(r -> ": " + r).orElse("");
  }

  /** The role a state means, as the agent derives it for this node. */
  static String role(String state) {
    return switch (state) {
      case "PRIMARY", "ALONE", "SYNC_SOURCE" -> "primary";
      case "SECONDARY", "SYNC_TARGET" -> "secondary";
      default -> "none";
    };
  }

  private void row(String label, String value) {
    text.append(pad(label, LABEL_WIDTH)).append(value).append('\n');
  }

  private static String pad(String text, int width) {
    return text.length() >= width ? text + " " : text + " ".repeat(width - text.length());
  }
}
