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
 * @param extraAddresses further addresses of this node on other networks, for heartbeats
 */
public record NodeConfig(
    String name,
    InetSocketAddress address,
    Path root,
    InetSocketAddress admin,
    List<InetSocketAddress> extraAddresses) {

  public NodeConfig {
    requireNonNull(name, "name");
    requireNonNull(address, "address");
    requireNonNull(root, "root");
    requireNonNull(admin, "admin");
    extraAddresses = List.copyOf(extraAddresses);
  }
}
