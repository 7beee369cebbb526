package io.replicator.agent.cluster;

import io.replicator.proto.AgentMessage;
import io.replicator.proto.Request;
import io.replicator.proto.Role;
import io.replicator.proto.WitnessMessage;
import io.replicator.proto.WitnessRecord;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The witness's decisions, owned by one thread and free of I/O but for a durable record: it hears
 * both data nodes' heartbeats and answers each one, granting the primary role to at most one node
 * per epoch and leave to write alone only to the primary it recognises.
 *
 * <h2>Rules</h2>
 * <ul>
 *   <li>It recognises as primary the node that claims the role at the highest epoch (a claim beats
 *       a grant not yet taken; two claims at one epoch go to the lower name, as the nodes decide).
 *   <li>It grants a promotion only to a consistent node whose data is not outdated, once it has met
 *       both nodes, when the recognised primary has not said it serves for the peer timeout (so
 *       any leave to write alone it gave has run out), and no grant to the other node is still
 *       pending. A grant is made at a new epoch; one not claimed within two peer timeouts lapses,
 *       which lets the other node be granted a newer one (never the displaced primary back).
 *   <li>Leave to write alone (a lease of {@code leaseDuration}, shorter than the peer timeout)
 *       goes only to the recognised primary, once the witness has met both nodes, and marks the other node outdated, durably, before
 *       the answer leaves. A primary that reports its peer in sync clears that mark, once every
 *       leave it was given has run out. A node that says it holds changes its peer lacks marks
 *       the peer outdated too; a node that does not serve, with no leave left, and says it holds
 *       nothing its peer lacks (its disk, read when its application had stopped) clears the mark.
 *   <li>After a restart it grants nothing for one peer timeout: a leave given before the restart
 *       has run out by then.
 * </ul>
 * What it must not forget (epochs, the primary, who is outdated, whom it has met) is written with
 * {@code persist} before any answer that depends on it.
 */
final class WitnessCore {
  private static final Logger log = LoggerFactory.getLogger(WitnessCore.class);

  private final List<String> nodes;
  private final Duration peerTimeout;
  private final Duration leaseDuration;
  private final LongSupplier clock;
  private final Consumer<WitnessRecord> persist;
  private final long startedAt;
  private final long incarnation;
  private long sequence;
  private WitnessRecord record;
  private final Map<String, Long> lastHeard = new HashMap<>();
  private final Map<String, Long> leaseGrantedAt = new HashMap<>();
  private final Map<String, long[]> lastNumber = new HashMap<>();
  private final Map<String, AgentMessage> lastMessage = new HashMap<>();
  /** A promotion granted and not yet claimed: the node, its epoch, when, and the request. */
  private Pending pending;

  private record Pending(String node, long epoch, long at, long requestId) {}

  WitnessCore(String cluster, List<String> nodes, Duration heartbeat, Duration peerTimeout, LongSupplier clock,
      WitnessRecord record, Consumer<WitnessRecord> persist) {
    this.nodes = List.copyOf(nodes);
    this.peerTimeout = peerTimeout;
    // the lease ends a heartbeat before the peer timeout: by the time the witness would promote
    // the other node (the primary silent for the peer timeout), the primary's leave has run out
    // on the primary's own clock too, which started counting before the witness granted it
    this.leaseDuration = peerTimeout.minus(heartbeat);
    this.clock = clock;
    this.persist = persist;
    WitnessRecord known = record.getCluster().isEmpty()
        ? record.toBuilder().setFormat(1).setCluster(cluster).build() : record;
    this.incarnation = known.getIncarnations() + 1;
    this.record = known.toBuilder().setIncarnations(incarnation).build();
    persist.accept(this.record);
    this.startedAt = clock.getAsLong();
  }

  /** Answers one heartbeat from {@code from}; a heartbeat older than one already taken gets no answer. */
  WitnessMessage onMessage(String from, AgentMessage m) {
    long now = clock.getAsLong();
    long[] last = lastNumber.computeIfAbsent(from, k -> new long[2]);
    if (!NodeController.newer(m.getIncarnation(), m.getSequence(), last[0], last[1])
        && heardWithin(from, now, peerTimeout)) {
      return null;
    }
    last[0] = m.getIncarnation();
    last[1] = m.getSequence();
    lastHeard.put(from, now);
    lastMessage.put(from, m);
    WitnessRecord.Builder next = record.toBuilder();
    if (!record.getMetList().contains(from)) {
      next.addMet(from);
    }
    next.setEpoch(Math.max(record.getEpoch(), m.getEpoch()));
    TreeSet<String> outdated = new TreeSet<>(record.getOutdatedList());
    String other = other(from);
    boolean learning = now - startedAt < peerTimeout.toNanos();
    if (m.getPeerOutdated() && outdated.add(other)) {
      log.warn("witness: {} holds changes {} lacks; {} is outdated until resynced", from, other, other);
    } else if (!m.getPeerOutdated() && m.getRole() != Role.ROLE_PRIMARY && !leaseActive(from, now) && !learning
        && outdated.remove(other)) {
      // a node that does not serve, and has no leave to write alone left, reports what its disk
      // says: it holds nothing its peer lacks (a primary's word may lag its writes, so only its
      // report of the pair in sync counts)
      log.info("witness: {} holds nothing {} lacks; {} is no longer outdated", from, other, other);
    }
    lapse(now, next);
    if (m.getRole() == Role.ROLE_PRIMARY) {
      learnClaim(from, m.getEpoch(), next);
    }
    // a primary in sync again clears the mark, but only once every leave to write alone it was
    // given has run out (it could still write alone under one), and never while the witness is
    // still learning after a restart (it does not know which leaves are out)
    if (next.getPrimary().equals(from) && m.getRole() == Role.ROLE_PRIMARY && m.getInSync()
        && !leaseActive(from, now) && !learning && outdated.remove(other)) {
      log.info("witness: {} reports {} in sync again", from, other);
    }
    next.clearOutdated().addAllOutdated(outdated);
    WitnessMessage.Builder answer = WitnessMessage.newBuilder()
        .setRequest(m.getRequest()).setRequestId(m.getRequestId());
    String refusal = switch (m.getRequest()) {
      case REQUEST_PROMOTE -> promote(from, m, now, next, answer);
      case REQUEST_STAY_ALONE -> stayAlone(from, m, now, next, answer);
      default -> null;
    };
    if (refusal != null) {
      answer.setReason(refusal);
      log.debug("witness: refused {} to {}: {}", m.getRequest(), from, refusal);
    }
    save(next.build());
    return answer.setIncarnation(incarnation).setSequence(++sequence).setEpoch(record.getEpoch())
        .setPrimary(record.getPrimary()).setPrimaryEpoch(record.getPrimaryEpoch())
        .addAllOutdated(record.getOutdatedList()).build();
  }

  private void learnClaim(String from, long claimEpoch, WitnessRecord.Builder next) {
    String primary = next.getPrimary();
    long primaryEpoch = next.getPrimaryEpoch();
    boolean unclaimedGrant = pending != null && pending.node().equals(primary) && !pending.node().equals(from);
    if (claimEpoch > primaryEpoch || claimEpoch == primaryEpoch && !primary.equals(from)
        && (unclaimedGrant || primary.isEmpty() || from.compareTo(primary) < 0)) {
      if (!primary.equals(from)) {
        log.info("witness: {} is primary (epoch {}){}", from, claimEpoch,
            primary.isEmpty() ? "" : "; " + primary + " was at epoch " + primaryEpoch);
      }
      next.setPrimary(from).setPrimaryEpoch(claimEpoch).setEpoch(Math.max(next.getEpoch(), claimEpoch));
      if (pending != null && (!pending.node().equals(from) || pending.epoch() <= claimEpoch)) {
        pending = null;
      }
    } else if (primary.equals(from) && pending != null && pending.node().equals(from) && claimEpoch >= pending.epoch()) {
      pending = null;
    }
  }

  private String promote(String from, AgentMessage m, long now, WitnessRecord.Builder next,
      WitnessMessage.Builder answer) {
    if (pending != null && pending.node().equals(from) && pending.requestId() == m.getRequestId()) {
      answer.setGranted(true);
      return null;
    }
    String primary = next.getPrimary();
    if (now - startedAt < peerTimeout.toNanos()) {
      return "the witness started less than a peer timeout ago and is still learning who is primary";
    }
    if (!m.getConsistent()) {
      return "the data of " + from + " is inconsistent";
    }
    if (next.getOutdatedList().contains(from)) {
      return "the data of " + from + " is outdated: " + other(from) + " wrote without it";
    }
    if (!next.getMetList().containsAll(nodes)) {
      return "the witness has not yet met both nodes, so it cannot tell which holds the newest data";
    }
    if (!primary.isEmpty() && !primary.equals(from) && (servingWithin(primary, now) || leaseActive(primary, now))) {
      return "primary " + primary + " is alive";
    }
    if (pending != null && !pending.node().equals(from)) {
      return "the primary role was just granted to " + pending.node();
    }
    long epoch = Math.max(next.getEpoch(), m.getEpoch()) + 1;
    pending = new Pending(from, epoch, now, m.getRequestId());
    next.setEpoch(epoch).setPrimary(from).setPrimaryEpoch(epoch);
    log.warn("witness: grants promotion to {} (epoch {}); previous primary {}", from, epoch,
        primary.isEmpty() ? "unknown" : primary);
    answer.setGranted(true);
    return null;
  }

  private String stayAlone(String from, AgentMessage m, long now, WitnessRecord.Builder next,
      WitnessMessage.Builder answer) {
    if (!next.getMetList().containsAll(nodes)) {
      // a witness that lost its record does not know the newest epoch until it heard both nodes:
      // leave given to a stale primary could let it write over a newer history
      return "the witness has not yet met both nodes, so it cannot tell which is the newest primary";
    }
    if (m.getRole() != Role.ROLE_PRIMARY || !next.getPrimary().equals(from) || m.getEpoch() < next.getPrimaryEpoch()) {
      return next.getPrimary().isEmpty() ? "the witness recognises no primary yet"
          : "the witness recognises " + next.getPrimary() + " as primary (epoch " + next.getPrimaryEpoch() + ")";
    }
    String other = other(from);
    if (!next.getOutdatedList().contains(other)) {
      next.addOutdated(other);
      log.warn("witness: {} writes without {}; {} is outdated until resynced", from, other, other);
    }
    leaseGrantedAt.put(from, now);
    answer.setGranted(true).setLeaseMillis(leaseDuration.toMillis());
    return null;
  }

  /**
   * A grant not claimed within two peer timeouts lapses: the other node may then be granted a newer
   * epoch. The grantee stays the recognised primary until then, never the node it displaced: it
   * may have taken the role and be unable to say so, and the displaced node must not get leave to
   * write alone meanwhile.
   */
  private void lapse(long now, WitnessRecord.Builder next) {
    if (pending != null && now - pending.at() > peerTimeout.toNanos() * 2) {
      log.info("witness: the grant to {} (epoch {}) lapsed: it did not take the role", pending.node(), pending.epoch());
      pending = null;
    }
  }

  /** A heartbeat of the witness's own: grants lapse even when nobody writes. */
  void tick() {
    WitnessRecord.Builder next = record.toBuilder();
    lapse(clock.getAsLong(), next);
    save(next.build());
  }

  private void save(WitnessRecord next) {
    if (!next.equals(record)) {
      persist.accept(next);
      record = next;
    }
  }

  private boolean leaseActive(String node, long now) {
    Long at = leaseGrantedAt.get(node);
    return at != null && now - at < leaseDuration.toNanos();
  }

  /** {@code node} was heard within the peer timeout, and its last word was that it serves as primary. */
  private boolean servingWithin(String node, long now) {
    AgentMessage m = lastMessage.get(node);
    return heardWithin(node, now, peerTimeout) && m != null && m.getRole() == Role.ROLE_PRIMARY;
  }

  private boolean heardWithin(String node, long now, Duration d) {
    Long t = lastHeard.get(node);
    return t != null && now - t < d.toNanos();
  }

  private String other(String node) {
    return nodes.stream().filter(n -> !n.equals(node)).findFirst().orElse("");
  }

  WitnessRecord record() {
    return record;
  }

  Duration leaseDuration() {
    return leaseDuration;
  }
}
