package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/**
 * One data node of the pair: where its peer reaches it, where its replicated data lives and where
 * its admin HTTP endpoint listens.
 *
 * @param name the node's name, the key under {@code nodes}
 * @param address the replication address (host:port), unresolved
 * @param root the absolute directory that is replicated
 * @param admin the admin HTTP address (status and metrics), unresolved
 * @param extraAddresses further agent-channel addresses of this node on other networks, for heartbeats
 * @param agentAddress the agent channel (heartbeats, votes, swap hand-over), unresolved
 */
public record NodeConfig(
    String name,
    InetSocketAddress address,
    Path root,
    InetSocketAddress admin,
    List<InetSocketAddress> extraAddresses,
    InetSocketAddress agentAddress) {

  /** All the agent-channel addresses of this node: the main one first, then the other networks'. */
  public List<InetSocketAddress> agentAddresses() {
    List<InetSocketAddress> all = new java.util.ArrayList<>();
    all.add(agentAddress);
    all.addAll(extraAddresses);
    return all;
  }

  public NodeConfig {
    requireNonNull(name, "name");
    requireNonNull(address, "address");
    requireNonNull(root, "root");
    requireNonNull(admin, "admin");
    extraAddresses = List.copyOf(extraAddresses);
    requireNonNull(agentAddress, "agentAddress");
  }
}
