package io.replicator.agent.cluster;

import io.replicator.proto.AgentMessage;
import io.replicator.transport.TransportSettings;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The third voter: holds no data, hears both agents, and grants the primary role to at most one
 * of them. It grants a promotion only when the recognised primary has been silent for the peer
 * timeout and the candidate's data is not outdated; it grants the primary leave to write alone
 * only while it recognises that node as primary, and then marks the other node outdated until
 * the primary reports it in sync again. So a node serves as primary only with a majority.
 */
public final class Witness implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(Witness.class);
  public static final String NAME = "witness";

  private final Duration peerTimeout;
  private final AgentLinks links;
  private final long startedNanos = System.nanoTime();
  private final Map<String, Long> lastHeard = new HashMap<>();
  private final Map<String, AgentMessage> lastMessage = new HashMap<>();
  private final Set<String> outdated = new TreeSet<>();
  private final Set<String> nodes;
  private String primary = "";
  private long epoch;

  public Witness(String cluster, List<String> nodes, Duration heartbeat, Duration peerTimeout,
      io.replicator.LinkSecurity security) {
    this.peerTimeout = peerTimeout;
    this.nodes = Set.copyOf(nodes);
    TransportSettings settings = TransportSettings.defaults(cluster, NAME).withTimers(heartbeat, peerTimeout)
        .withSecurity(security);
    this.links = new AgentLinks(settings, this.nodes, this::onMessage);
  }

  public InetSocketAddress listen(InetSocketAddress address) throws IOException {
    InetSocketAddress bound = links.listen(address);
    log.info("witness listening on {} for nodes {}", bound, nodes);
    return bound;
  }

  private synchronized void onMessage(String from, AgentMessage m) {
    long now = System.nanoTime();
    lastHeard.put(from, now);
    lastMessage.put(from, m);
    epoch = Math.max(epoch, m.getEpoch());
    String granted = "";
    String reason = "";
    boolean claimsPrimary = m.getRole().equals("PRIMARY") || m.getRole().equals("ALONE")
        || m.getRole().equals("SYNC_SOURCE");
    if (claimsPrimary && primary.isEmpty()) {
      primary = from;
      log.info("witness: {} is primary (epoch {})", from, m.getEpoch());
    }
    if (claimsPrimary && primary.equals(from) && m.getInSync() && outdated.remove(other(from))) {
      log.info("witness: {} reports {} in sync again", from, other(from));
    }
    switch (m.getRequest()) {
      case "promote" -> {
        if (now - startedNanos < peerTimeout.toNanos()) {
          reason = "the witness started less than a peer timeout ago and is still learning who is primary";
        } else if (outdated.contains(from)) {
          reason = "the data of " + from + " is outdated: " + other(from) + " wrote without it";
        } else if (!primary.isEmpty() && !primary.equals(from) && heardWithin(primary, now)) {
          reason = "primary " + primary + " is alive";
        } else {
          if (!primary.equals(from)) {
            epoch++;
            log.warn("witness: grants promotion to {} (epoch {}); previous primary {}", from, epoch,
                primary.isEmpty() ? "unknown" : primary);
          }
          primary = from;
          granted = from;
        }
      }
      case "stay-alone" -> {
        if (primary.equals(from) || (primary.isEmpty() && !outdated.contains(from))) {
          primary = from;
          granted = from;
          if (outdated.add(other(from))) {
            log.warn("witness: {} writes without {}; {} is outdated until resynced", from, other(from), other(from));
          }
        } else {
          reason = "the witness recognises " + primary + " as primary";
        }
      }
      default -> { }
    }
    if (!reason.isEmpty()) {
      log.info("witness: refused {} to {}: {}", m.getRequest(), from, reason);
    }
    links.send(from, AgentMessage.newBuilder()
        .setNode(NAME).setFromWitness(true).setEpoch(epoch).setPrimary(primary).setGranted(granted)
        .addAllOutdated(outdated).setReason(reason).build());
  }

  private boolean heardWithin(String node, long now) {
    Long t = lastHeard.get(node);
    return t != null && now - t < peerTimeout.toNanos();
  }

  private String other(String node) {
    return nodes.stream().filter(n -> !n.equals(node)).findFirst().orElse("");
  }

  @Override
  public void close() {
    links.close();
  }
}
