package io.replicator.agent.admin;

import io.replicator.ReplicationStatus;
import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What {@code GET /status} reports: the node's name, its replication status, the last failover if
 * the agent knows one, and free-form fields the agent adds (application checks, configuration
 * file). Immutable; {@link #toJson()} renders it.
 *
 * @param node this node's name as configured
 * @param replication the replication snapshot
 * @param lastFailover the last failover this agent saw or performed, or empty
 * @param extra free-form fields, rendered under {@code "extra"} in insertion order; values may be
 *     strings, numbers, booleans, null, optionals, maps, lists, or anything with a useful toString
 */
public record StatusDocument(
    String node, ReplicationStatus replication, Optional<Failover> lastFailover, Map<String, Object> extra) {

  public StatusDocument {
    Objects.requireNonNull(node, "node");
    Objects.requireNonNull(replication, "replication");
    Objects.requireNonNull(lastFailover, "lastFailover");
    // A copy that keeps order and allows null values, which Map.copyOf would not.
    extra = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(extra, "extra")));
  }

  /** A document with no failover and no extra fields. */
  public static StatusDocument of(String node, ReplicationStatus replication) {
    return new StatusDocument(node, replication, Optional.empty(), Map.of());
  }

  /** This document with the given last failover. */
  public StatusDocument withLastFailover(Failover failover) {
    return new StatusDocument(node, replication, Optional.of(failover), extra);
  }

  /** This document with one more free-form field (replacing one of the same name). */
  public StatusDocument with(String name, Object value) {
    Map<String, Object> more = new LinkedHashMap<>(extra);
    more.put(Objects.requireNonNull(name, "name"), value);
    return new StatusDocument(node, replication, lastFailover, more);
  }

  /**
   * The role a script cares about, derived from the state: {@code primary} while this node serves
   * writes, {@code secondary} while it receives them, {@code none} otherwise.
   */
  public String role() {
    return switch (replication.state()) {
      case PRIMARY, ALONE, SYNC_SOURCE -> "primary";
      case SECONDARY, SYNC_TARGET -> "secondary";
      case WAIT, STOPPED -> "none";
    };
  }

  /** The document as one line of JSON; the generation is 16 hex digits, as the CLI prints it. */
  public String toJson() {
    ReplicationStatus r = replication;
    JsonWriter json = new JsonWriter().beginObject();
    json.name("node").value(node);
    json.name("role").value(role());
    json.name("state").value(r.state().name());
    json.name("mode").value(r.mode() == null ? null : r.mode().name());
    json.name("inSync").value(r.inSync());
    json.name("peer").beginObject()
        .name("address").value(r.peer().orElse(null))
        .name("connected").value(r.peerConnected())
        .name("outOfDate").value(r.peerOutOfDate())
        .endObject();
    json.name("problem").value(r.problem().orElse(null));
    json.name("generation").value(String.format("%016x", r.generation()));
    json.name("dirtyBytes").value(r.dirtyBytes());
    json.name("lastSequence").value(r.lastSequence());
    json.name("appliedSequence").value(r.appliedSequence());
    json.name("inFlight").beginObject()
        .name("changes").value(r.inFlightChanges())
        .name("bytes").value(r.inFlightBytes())
        .endObject();
    json.name("resync");
    if (r.resync().isPresent()) {
      ReplicationStatus.ResyncProgress p = r.resync().get();
      json.beginObject()
          .name("bytesDone").value(p.bytesDone())
          .name("bytesTotal").value(p.bytesTotal())
          .name("bytesPerSecond").value(p.bytesPerSecond())
          .name("etaSeconds").value(p.etaSeconds())
          .name("filesDone").value(p.filesDone())
          .name("filesTotal").value(p.filesTotal())
          // One decimal is what a person reads; -1 would be misleading, so null when total is 0.
          .name("percent");
      if (p.bytesTotal() > 0) {
        json.value(Math.round(1000.0 * p.bytesDone() / p.bytesTotal()) / 10.0);
      } else {
        json.nullValue();
      }
      json.endObject();
    } else {
      json.nullValue();
    }
    json.name("lastFailover");
    if (lastFailover.isPresent()) {
      Failover f = lastFailover.get();
      json.beginObject()
          .name("at").value(f.at().toString())
          .name("from").value(f.from().orElse(null))
          .name("to").value(f.to().orElse(null))
          .name("reason").value(f.reason())
          .endObject();
    } else {
      json.nullValue();
    }
    json.name("extra").anyValue(extra);
    return json.endObject().toString();
  }

  /**
   * One failover: when, between which nodes if known, and why.
   *
   * @param at when the new primary took over
   * @param from the node that was primary, if known
   * @param to the node that became primary, if known
   * @param reason why, in words (operator swap, peer lost, application check failed)
   */
  public record Failover(Instant at, Optional<String> from, Optional<String> to, String reason) {
    public Failover {
      Objects.requireNonNull(at, "at");
      Objects.requireNonNull(from, "from");
      Objects.requireNonNull(to, "to");
      Objects.requireNonNull(reason, "reason");
    }
  }
}
