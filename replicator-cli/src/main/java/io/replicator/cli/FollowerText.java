package io.replicator.cli;

import com.google.protobuf.Timestamp;
import io.replicator.proto.FollowerLink;
import io.replicator.proto.FollowerLog;
import io.replicator.proto.FollowerMode;
import io.replicator.proto.FollowerView;
import io.replicator.proto.StatusDocument;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/** Followers as an operator reads them: a follower's own status, one line per logged change, a primary's list. */
final class FollowerText {
  private static final int LABEL_WIDTH = 15;

  private FollowerText() {}

  /** A follower agent's status document, {@code now} giving how far back the applied tree stands. */
  static String status(StatusDocument doc, Instant now) {
    FollowerView f = doc.getFollowerNode();
    StringBuilder text = new StringBuilder();
    text.append("follower ").append(doc.getNode());
    if (!f.getCluster().isEmpty()) {
      text.append(" of cluster ").append(f.getCluster());
    }
    text.append(", mode ").append(mode(f.getMode())).append('\n');
    row(text, "state", StatusView.name(doc.getState()) + (doc.getPeer().getConnected() ? ", fed by "
        + (doc.getPeer().hasAddress() ? doc.getPeer().getAddress() : "the primary") : ", no primary connected"));
    row(text, "sequence", "last " + doc.getLastSequence() + ", applied " + doc.getAppliedSequence());
    if (f.getMode() == FollowerMode.FOLLOWER_DELAYED) {
      if (f.hasDelay()) {
        row(text, "delay", human(Duration.ofSeconds(f.getDelay().getSeconds(), f.getDelay().getNanos())));
      }
      if (f.getControlsUnavailable()) {
        row(text, "controls", "UNAVAILABLE: this replica server offers no delayed-follower controls");
      } else {
        row(text, "applying", f.hasApplyUntil() ? "held before " + instant(f.getApplyUntil())
            : f.getPaused() ? "PAUSED" : "as changes age past the delay");
        row(text, "applied tree", f.hasAppliedUpTo() ? "as of " + instant(f.getAppliedUpTo()) + " ("
            + human(Duration.between(instant(f.getAppliedUpTo()), now)) + " back)" : "nothing applied yet");
        row(text, "backlog", f.getBacklogChanges() + " changes, " + Units.bytes(f.getBacklogBytes()));
        row(text, "log disk", Units.bytes(f.getLogBytes()) + " of " + Units.bytes(f.getLogCapacityBytes())
            + " (" + Units.percent(f.getLogBytes(), f.getLogCapacityBytes()) + ")");
        if (f.hasOverflowedAt()) {
          row(text, "overflowed", "at " + instant(f.getOverflowedAt())
              + ": going back before that point is impossible");
        }
      }
    }
    if (doc.hasProblem()) {
      row(text, "problem", doc.getProblem());
    }
    return text.toString();
  }

  /** One logged change: time, sequence, kind, path (→ target), bytes, applied or pending. */
  static String change(FollowerLog.Change c) {
    return instant(c.getReceived()) + "  seq " + c.getSequence() + "  " + c.getKind() + "  " + c.getPath()
        + (c.hasTarget() ? " → " + c.getTarget() : "") + "  " + Units.bytes(c.getBytes()) + "  "
        + (c.getApplied() ? "applied" : "pending");
  }

  /** The primary's followers, one line each: name, mode, connected, dirty bytes. */
  static String links(List<FollowerLink> followers) {
    StringBuilder text = new StringBuilder();
    for (FollowerLink f : followers) {
      text.append("  ").append(f.getName()).append(" (").append(mode(f.getMode())).append(", ")
          .append(f.getAddress()).append("): ");
      if (!f.getReported()) {
        text.append("no report from the application");
      } else {
        text.append(f.getConnected() ? "connected" : "DISCONNECTED")
            .append(f.getOutOfDate() ? ", out of date" : "")
            .append(", dirty ").append(Units.bytes(f.getDirtyBytes()));
        if (f.getInFlight().getChanges() > 0) {
          text.append(", in flight ").append(f.getInFlight().getChanges()).append(" changes");
        }
        if (f.hasProblem()) {
          text.append(", ").append(f.getProblem());
        }
      }
      text.append('\n');
    }
    return text.toString();
  }

  private static String mode(FollowerMode mode) {
    return mode == FollowerMode.UNRECOGNIZED || mode == FollowerMode.FOLLOWER_MODE_UNSPECIFIED ? "?"
        : mode.name().substring("FOLLOWER_".length());
  }

  private static Instant instant(Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  /** 3725 s → "1 h 2 min"; below a minute in seconds. */
  private static String human(Duration d) {
    long s = Math.max(0, d.getSeconds());
    return s < 60 ? s + " s" : Units.seconds(s);
  }

  private static void row(StringBuilder text, String label, String value) {
    text.append(label).append(" ".repeat(Math.max(1, LABEL_WIDTH - label.length()))).append(value).append('\n');
  }
}
