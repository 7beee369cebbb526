package io.replicator.cli;

import io.replicator.proto.StatusDocument;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Renders {@code GET /status} for a person: both nodes side by side (role, state, generation,
 * reachability), then the link, dirty bytes, resync progress, the witness, the application, a
 * running verify and the last failover.
 */
final class StatusView {
  private static final int LABEL_WIDTH = 15;

  private final StatusDocument status;
  private final StringBuilder text = new StringBuilder();

  private StatusView(StatusDocument status) {
    this.status = status;
  }

  static String render(StatusDocument status) {
    if (status.getRole() == StatusDocument.Role.follower) {
      return FollowerText.status(status, Instant.now());
    }
    return new StatusView(status).render();
  }

  private String render() {
    List<String> heading = new ArrayList<>();
    if (status.hasExtra()) {
      if (!status.getExtra().getCluster().isEmpty()) {
        heading.add("cluster " + status.getExtra().getCluster());
      }
      heading.add("epoch " + status.getExtra().getEpoch());
    }
    if (status.hasMode()) {
      heading.add("mode " + status.getMode().name());
    }
    heading.add(status.getInSync() ? "in sync" : "NOT in sync");
    text.append(String.join(", ", heading)).append('\n').append('\n');

    nodes();
    text.append('\n');

    row("connection", connection());
    row("dirty", Units.bytes(status.getDirtyBytes()));
    row("sequence", "last " + status.getLastSequence() + ", applied " + status.getAppliedSequence() + ", in flight "
        + status.getInFlight().getChanges() + " changes / " + Units.bytes(status.getInFlight().getBytes()));
    row("resync", status.hasResync() ? resync(status.getResync()) : "none");
    if (status.hasProblem()) {
      row("problem", status.getProblem());
    }
    if (status.hasExtra()) {
      StatusDocument.AgentView extra = status.getExtra();
      row("witness", extra.hasWitness() ? witness(extra.getWitness()) : "none configured");
      if (extra.hasApplication()) {
        row("application", application(extra.getApplication()));
      }
      if (extra.hasVerify()) {
        row("verify", verify(extra.getVerify()));
      }
    }
    row("last failover", status.hasLastFailover() ? failover(status.getLastFailover()) : "none");
    if (status.getFollowersCount() > 0) {
      text.append("followers\n").append(FollowerText.links(status.getFollowersList()));
    }
    return text.toString();
  }

  /** Two columns: this node from the document itself, the peer from {@code extra.peerNode}. */
  private void nodes() {
    Optional<StatusDocument.PeerNode> peer = status.getExtra().hasPeerNode()
        ? Optional.of(status.getExtra().getPeerNode()) : Optional.empty();
    String localName = status.getNode().isEmpty() ? "?" : status.getNode();
    String peerName = peer.map(StatusDocument.PeerNode::getName).filter(n -> !n.isEmpty()).orElse("peer");
    Optional<StatusDocument.State> peerState = peer.filter(StatusDocument.PeerNode::hasState)
        .map(StatusDocument.PeerNode::getState);
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"node", localName + " (this node)", peerName + " (peer)"});
    rows.add(new String[] {"role", status.getRole().name(), peerState.map(StatusView::role).orElse("-")});
    rows.add(new String[] {"state", name(status.getState()), peerState.map(StatusView::name).orElse("-")});
    rows.add(new String[] {"generation", status.getGeneration().isEmpty() ? "-" : status.getGeneration(),
        peer.filter(StatusDocument.PeerNode::hasGeneration).map(StatusDocument.PeerNode::getGeneration).orElse("-")});
    rows.add(new String[] {"address", "-", status.getPeer().hasAddress() ? status.getPeer().getAddress() : "-"});
    rows.add(new String[] {"reachable", "yes", peer.map(StatusView::reachability).orElse(
        status.getPeer().getConnected() ? "connected" : "unknown")});
    int width = 0;
    for (String[] row : rows) {
      width = Math.max(width, row[1].length());
    }
    for (String[] row : rows) {
      text.append(pad(row[0], LABEL_WIDTH)).append(pad(row[1], width + 3)).append(row[2]).append('\n');
    }
  }

  private String connection() {
    return (status.getPeer().getConnected() ? "connected" : "disconnected")
        + (status.getPeer().getOutOfDate() ? ", peer out of date" : ", peer up to date");
  }

  private static String reachability(StatusDocument.PeerNode peer) {
    String answer = peer.getReachable() ? "yes" : "NO";
    return peer.hasLastHeardMillisAgo() ? answer + ", heard " + ago(peer.getLastHeardMillisAgo()) : answer;
  }

  private static String ago(long millis) {
    return millis < 10_000 ? millis + " ms ago" : Units.seconds(millis / 1000) + " ago";
  }

  static String resync(StatusDocument.Resync resync) {
    long done = resync.getBytesDone();
    long total = resync.getBytesTotal();
    return files(resync.getFilesDone(), resync.getFilesTotal()) + Units.bytes(done) + " of "
        + Units.bytes(total) + " (" + Units.percent(done, total) + "), " + Units.rate(resync.getBytesPerSecond())
        + ", ETA " + Units.seconds(resync.getEtaSeconds());
  }

  /** "1,234 of 10,000 files, ", or nothing when no files are counted. */
  private static String files(long done, long total) {
    if (total <= 0) {
      return "";
    }
    return String.format(Locale.ROOT, "%,d of %,d files, ", done, total);
  }

  private static String witness(StatusDocument.Witness witness) {
    return witness.getAddress() + (witness.getReachable() ? ", reachable" : ", NOT reachable");
  }

  private static String application(StatusDocument.Application app) {
    return (app.getRegistered() ? "registered" : "not registered") + ", " + app.getRestarts()
        + (app.getRestarts() == 1 ? " restart" : " restarts");
  }

  private static String verify(StatusDocument.Verify verify) {
    if (verify.getRunning()) {
      long done = verify.getBytesDone();
      long total = verify.getBytesTotal();
      return "running, " + files(verify.getFilesDone(), verify.getFilesTotal()) + Units.bytes(done) + " of "
          + Units.bytes(total) + " (" + Units.percent(done, total) + "), ETA "
          + Units.seconds(verify.hasEtaSeconds() ? verify.getEtaSeconds() : -1);
    }
    if (verify.hasFindings()) {
      return "last result: " + VerifyCommand.summary(verify.getFindings());
    }
    return verify.hasResult() ? "last result: " + verify.getResult() : "idle";
  }

  private static String failover(StatusDocument.Failover failover) {
    String at = failover.hasAt()
        ? Instant.ofEpochSecond(failover.getAt().getSeconds(), failover.getAt().getNanos()).toString() : "?";
    return at + " " + (failover.hasFrom() ? failover.getFrom() : "?") + " -> "
        + (failover.hasTo() ? failover.getTo() : "?")
        + (failover.getReason().isEmpty() ? "" : ": " + failover.getReason());
  }

  /** A state's name, or "-" when the document gave none (or one this version does not know). */
  static String name(StatusDocument.State state) {
    return state == StatusDocument.State.STATE_UNSPECIFIED || state == StatusDocument.State.UNRECOGNIZED
        ? "-" : state.name();
  }

  /** The role a state means, as the agent derives it for this node. */
  static String role(StatusDocument.State state) {
    return switch (state) {
      case PRIMARY, ALONE, SYNC_SOURCE -> "primary";
      case SECONDARY, SYNC_TARGET -> "secondary";
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
