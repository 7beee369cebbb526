package io.replicator.agent.admin;

import com.google.protobuf.Timestamp;
import io.replicator.NodeState;
import io.replicator.ReplicationStatus;
import io.replicator.agent.config.FollowerConfig;
import io.replicator.proto.FollowerLink;
import io.replicator.proto.FollowerMode;
import io.replicator.proto.FollowerReport;
import io.replicator.proto.StatusDocument;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Builds the status document ({@code GET /status}, the {@link StatusDocument} message of
 * status.proto) from the library's {@link ReplicationStatus}; the agent adds what only it knows
 * under {@code extra}.
 */
public final class StatusDocuments {
  private StatusDocuments() {}

  /** A document with the node's name and its replication status, and nothing the agent adds. */
  public static StatusDocument.Builder of(String node, ReplicationStatus r) {
    StatusDocument.Builder doc = StatusDocument.newBuilder()
        .setNode(node)
        .setRole(role(r.state()))
        .setState(state(r.state()))
        .setInSync(r.inSync())
        .setGeneration(generation(r.generation()))
        .setDirtyBytes(r.dirtyBytes())
        .setLastSequence(r.lastSequence())
        .setAppliedSequence(r.appliedSequence())
        .setInFlight(StatusDocument.InFlight.newBuilder()
            .setChanges(r.inFlightChanges()).setBytes(r.inFlightBytes()));
    if (r.mode() != null) {
      doc.setMode(StatusDocument.Mode.valueOf(r.mode().name()));
    }
    StatusDocument.PeerLink.Builder peer = doc.getPeerBuilder()
        .setConnected(r.peerConnected()).setOutOfDate(r.peerOutOfDate());
    r.peer().ifPresent(peer::setAddress);
    r.problem().ifPresent(doc::setProblem);
    r.resync().ifPresent(p -> {
      StatusDocument.Resync.Builder resync = doc.getResyncBuilder()
          .setBytesDone(p.bytesDone()).setBytesTotal(p.bytesTotal()).setBytesPerSecond(p.bytesPerSecond())
          .setEtaSeconds(p.etaSeconds()).setFilesDone(p.filesDone()).setFilesTotal(p.filesTotal());
      // One decimal is what a person reads; with no total yet there is no percentage to give.
      if (p.bytesTotal() > 0) {
        resync.setPercent(Math.round(1000.0 * p.bytesDone() / p.bytesTotal()) / 10.0);
      }
    });
    return doc;
  }

  /**
   * The role a script cares about: {@code primary} while the node serves writes, {@code secondary}
   * while it receives them, {@code none} otherwise.
   */
  public static StatusDocument.Role role(NodeState state) {
    return switch (state) {
      case PRIMARY, ALONE, SYNC_SOURCE -> StatusDocument.Role.primary;
      case SECONDARY, SYNC_TARGET -> StatusDocument.Role.secondary;
      case WAIT, STOPPED -> StatusDocument.Role.none;
    };
  }

  public static StatusDocument.State state(NodeState state) {
    return StatusDocument.State.valueOf(state.name());
  }

  /** A generation as the document, the CLI and the logs spell it: 16 hex digits. */
  public static String generation(long generation) {
    return String.format("%016x", generation);
  }

  /**
   * One failover or swap.
   *
   * @param at when the new primary took over
   * @param from the node that was primary, if known
   * @param to the node that became primary, if known
   * @param reason why, in words
   */
  public static StatusDocument.Failover failover(Instant at, Optional<String> from, Optional<String> to,
      String reason) {
    StatusDocument.Failover.Builder f = StatusDocument.Failover.newBuilder()
        .setAt(Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()))
        .setReason(reason);
    from.ifPresent(f::setFrom);
    to.ifPresent(f::setTo);
    return f.build();
  }

  /**
   * The primary's followers: one per configured follower, in file order, with what the
   * application's library last reported on it ({@code reported} false when it said nothing).
   */
  public static List<FollowerLink> followers(List<FollowerConfig> configured, List<FollowerReport> reports) {
    List<FollowerLink> links = new ArrayList<>();
    for (FollowerConfig f : configured) {
      String host = f.address().getHostString();
      FollowerLink.Builder link = FollowerLink.newBuilder()
          .setName(f.name())
          .setMode(mode(f.mode()))
          .setAddress((host.contains(":") ? "[" + host + "]" : host) + ":" + f.address().getPort());
      reports.stream().filter(r -> r.getName().equals(f.name())).findFirst().ifPresent(r -> {
        link.setReported(true).setConnected(r.getConnected()).setOutOfDate(r.getOutOfDate())
            .setDirtyBytes(r.getDirtyBytes())
            .setInFlight(FollowerLink.InFlight.newBuilder().setChanges(r.getInFlightChanges())
                .setBytes(r.getInFlightBytes()));
        if (!r.getProblem().isEmpty()) {
          link.setProblem(r.getProblem());
        }
      });
      links.add(link.build());
    }
    return links;
  }

  public static FollowerMode mode(FollowerConfig.Mode mode) {
    return FollowerMode.valueOf("FOLLOWER_" + mode.name());
  }
}
