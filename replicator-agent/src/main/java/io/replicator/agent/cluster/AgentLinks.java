package io.replicator.agent.cluster;

import io.replicator.proto.AgentMessage;
import io.replicator.proto.Envelope;
import io.replicator.proto.WitnessMessage;
import io.replicator.transport.Frame;
import io.replicator.transport.PeerAcceptor;
import io.replicator.transport.PeerConnection;
import io.replicator.transport.PeerListener;
import io.replicator.transport.PeerRefusedException;
import io.replicator.transport.TransportClient;
import io.replicator.transport.TransportServer;
import io.replicator.transport.TransportSettings;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent channel: listens on this agent's addresses and keeps one outgoing connection to each
 * address of each other member (the peer agent, the witness), reconnecting on every heartbeat
 * tick. Messages from any link count as hearing from their sender, so one failed network does
 * not look like a lost peer. It rides on the replication transport (handshake, frame limits,
 * pings that close a silent link) but carries only {@link AgentMessage}s and the witness's
 * {@link WitnessMessage}s. A link that the other side refuses (wrong secret, another cluster) is
 * reported as such: the member is there, though the two cannot talk.
 */
public final class AgentLinks implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(AgentLinks.class);

  private final TransportSettings settings;
  private final Set<String> members;
  private final Receiver receiver;
  private final List<TransportServer> servers = new ArrayList<>();
  private final TransportClient client;
  /** Outgoing links by target address; a missing entry or a closed connection is reconnected. */
  private final Map<InetSocketAddress, PeerConnection> outgoing = new ConcurrentHashMap<>();
  private final Map<InetSocketAddress, Boolean> connecting = new ConcurrentHashMap<>();
  /** Every live connection (in or out) by member name. */
  private final Map<String, List<PeerConnection>> byMember = new ConcurrentHashMap<>();
  private volatile boolean closed;

  /** What arrives on the links; every method is called on an I/O thread and must not block. */
  public interface Receiver {
    /** An agent's heartbeat, from the member {@code from}. */
    void agentMessage(String from, AgentMessage message);

    /** The witness's answer. */
    default void witnessMessage(WitnessMessage message) {}

    /** A link this member opened to {@code target} was refused by the other side, for {@code reason}. */
    default void refused(InetSocketAddress target, String reason) {}
  }

  /**
   * @param settings transport settings whose node id is this member's name
   * @param members the names allowed to connect (the peer, the nodes for a witness, "witness")
   * @param receiver gets every message and refusal
   */
  public AgentLinks(TransportSettings settings, Set<String> members, Receiver receiver) {
    this.settings = settings;
    this.members = Set.copyOf(members);
    this.receiver = receiver;
    this.client = new TransportClient(settings);
  }

  /** Listens on {@code address}; returns the bound address. */
  public InetSocketAddress listen(InetSocketAddress address) throws IOException {
    TransportServer server = TransportServer.start(address, settings, this::accept, 1);
    servers.add(server);
    return server.localAddress();
  }

  private PeerAcceptor.Decision accept(PeerConnection c) {
    String who = c.remoteNodeId();
    if (!members.contains(who)) {
      log.warn("agent channel: refused {} from {}: not a member of this pair", who, c.remoteAddress());
      return PeerAcceptor.Decision.refuse("node " + who + " is not a member of this pair");
    }
    register(who, c);
    return PeerAcceptor.Decision.accept(listener, null);
  }

  private final PeerListener listener = new PeerListener() {
    @Override
    public void onFrame(PeerConnection connection, Frame frame) {
      try {
        Envelope e = frame.header();
        switch (e.getBodyCase()) {
          case AGENT -> receiver.agentMessage(connection.remoteNodeId(), e.getAgent());
          case WITNESS -> {
            if (connection.remoteNodeId().equals(Witness.NAME)) {
              receiver.witnessMessage(e.getWitness());
            } else {
              connection.close(io.replicator.proto.Goodbye.Code.PROTOCOL_ERROR,
                  "only the witness sends witness answers");
            }
          }
          default -> connection.close(io.replicator.proto.Goodbye.Code.PROTOCOL_ERROR,
              "only agent messages are allowed on the agent channel");
        }
      } finally {
        frame.release();
      }
    }

    @Override
    public void onClosed(PeerConnection connection, String reason) {
      List<PeerConnection> list = byMember.get(connection.remoteNodeId());
      if (list != null) {
        list.remove(connection);
      }
      outgoing.values().remove(connection);
    }
  };

  private void register(String who, PeerConnection c) {
    byMember.computeIfAbsent(who, k -> new CopyOnWriteArrayList<>()).add(c);
  }

  /** Opens missing outgoing links to {@code addresses}; called on every heartbeat tick. */
  public void maintain(List<InetSocketAddress> addresses) {
    if (closed) {
      return;
    }
    for (InetSocketAddress a : addresses) {
      PeerConnection c = outgoing.get(a);
      if ((c != null && c.isActive()) || connecting.putIfAbsent(a, Boolean.TRUE) != null) {
        continue;
      }
      InetSocketAddress resolved = a.isUnresolved() ? new InetSocketAddress(a.getHostString(), a.getPort()) : a;
      client.connect(resolved, null, listener).whenComplete((conn, error) -> {
        connecting.remove(a);
        if (error != null) {
          Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null
              ? error.getCause() : error;
          if (cause instanceof PeerRefusedException) {
            receiver.refused(a, cause.getMessage());
          } else {
            log.debug("agent channel: cannot reach {}: {}", a, cause.getMessage());
          }
          return;
        }
        if (closed || !members.contains(conn.remoteNodeId())) {
          conn.close(io.replicator.proto.Goodbye.Code.SHUTDOWN, closed ? "closing" : "not a member of this pair");
          return;
        }
        outgoing.put(a, conn);
        register(conn.remoteNodeId(), conn);
      });
    }
  }

  /** Sends {@code message} on every live link to {@code member}; false when there is none. */
  public boolean send(String member, AgentMessage message) {
    return send(member, Envelope.newBuilder().setAgent(message).build());
  }

  /** Sends the witness's {@code answer} on every live link to {@code member}. */
  public boolean send(String member, WitnessMessage answer) {
    return send(member, Envelope.newBuilder().setWitness(answer).build());
  }

  private boolean send(String member, Envelope envelope) {
    List<PeerConnection> list = byMember.get(member);
    if (list == null || list.isEmpty()) {
      return false;
    }
    boolean sent = false;
    for (PeerConnection c : list) {
      if (c.isActive()) {
        c.send(Frame.of(envelope));
        sent = true;
      }
    }
    return sent;
  }

  /** Closes every link and stops listening. */
  @Override
  public void close() {
    closed = true;
    for (List<PeerConnection> list : byMember.values()) {
      for (PeerConnection c : list) {
        c.close(io.replicator.proto.Goodbye.Code.SHUTDOWN, "agent stopping");
      }
    }
    for (TransportServer s : servers) {
      s.close();
    }
    client.close();
  }
}
