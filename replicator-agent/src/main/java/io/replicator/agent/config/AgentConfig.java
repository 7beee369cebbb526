package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import io.replicator.PeerLossPolicy;
import io.replicator.ReplicationMode;
import io.replicator.SplitBrainPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The agent's configuration: one file, identical on both servers, that names both nodes of the pair.
 * Load it with {@link #load(Path)}; each agent then finds its own entry with {@link #self}.
 *
 * @param source the file this was loaded from
 * @param cluster the cluster's name
 * @param mode when a write returns (SYNC, MEMORY or ASYNC)
 * @param nodes the two data nodes, in file order
 * @param witness the optional third voter, holding no data
 * @param preferredPrimary the node that becomes primary when both could, or empty
 * @param timers heartbeat and timeouts
 * @param automaticFailover whether the secondary takes over by itself when the primary is lost
 * @param startAloneAfter without a witness: how long a node that never heard its peer waits before
 *     it starts alone anyway; empty (the default) waits for the peer or an operator
 * @param splitBrainPolicy how a split brain is resolved without an operator
 * @param peerLossPolicy what the primary does with writes while its peer is lost
 * @param blockTimeout how long writes wait for the peer under {@link PeerLossPolicy#BLOCK}
 * @param resyncRate the resync budget in bytes per second; 0 adapts to the application's load
 * @param application how the agent starts, stops and checks the application
 * @param secretFile the file holding the shared secret of the pair, or empty
 * @param adminTokenFile the file holding the admin API's token, or empty
 * @param followers further copies fed by whichever node is primary, in file order
 */
public record AgentConfig(
    Path source,
    String cluster,
    ReplicationMode mode,
    List<NodeConfig> nodes,
    Optional<WitnessConfig> witness,
    Optional<String> preferredPrimary,
    Timers timers,
    boolean automaticFailover,
    Optional<Duration> startAloneAfter,
    SplitBrainPolicy splitBrainPolicy,
    PeerLossPolicy peerLossPolicy,
    Duration blockTimeout,
    long resyncRate,
    ApplicationConfig application,
    Optional<Path> secretFile,
    Optional<Path> adminTokenFile,
    List<FollowerConfig> followers) {

  public AgentConfig {
    requireNonNull(source, "source");
    requireNonNull(cluster, "cluster");
    requireNonNull(mode, "mode");
    nodes = List.copyOf(nodes);
    requireNonNull(witness, "witness");
    requireNonNull(preferredPrimary, "preferredPrimary");
    requireNonNull(timers, "timers");
    requireNonNull(startAloneAfter, "startAloneAfter");
    requireNonNull(splitBrainPolicy, "splitBrainPolicy");
    requireNonNull(peerLossPolicy, "peerLossPolicy");
    requireNonNull(blockTimeout, "blockTimeout");
    requireNonNull(application, "application");
    requireNonNull(secretFile, "secretFile");
    requireNonNull(adminTokenFile, "adminTokenFile");
    followers = List.copyOf(followers);
    if (nodes.size() != 2 || nodes.get(0).name().equals(nodes.get(1).name())) {
      throw new IllegalArgumentException("need exactly two nodes with distinct names: " + nodes);
    }
    List<NodeConfig> pair = nodes;
    if (preferredPrimary.isPresent()
        && pair.stream().noneMatch(n -> n.name().equals(preferredPrimary.get()))) {
      throw new IllegalArgumentException("preferredPrimary is not a node: " + preferredPrimary.get());
    }
    if (resyncRate < 0) {
      throw new IllegalArgumentException("resyncRate < 0: " + resyncRate);
    }
  }

  /**
   * Reads and validates the file.
   *
   * @throws BadConfigurationException listing every problem as {@code file:line: key: message}
   */
  public static AgentConfig load(Path file) throws BadConfigurationException {
    return ConfigParser.parse(file);
  }

  /** The follower with this name, if any. */
  public Optional<FollowerConfig> follower(String name) {
    return followers.stream().filter(f -> f.name().equals(name)).findFirst();
  }

  /** The node with this name, if any. */
  public Optional<NodeConfig> node(String name) {
    return nodes.stream().filter(n -> n.name().equals(name)).findFirst();
  }

  /**
   * This server's node: the one named by {@code --node} when given, else the one whose name is the
   * host name (or its first label), else the one whose address has the host name as its host.
   *
   * @param nodeFlag the value of {@code --node}, if given
   * @param hostName this server's host name
   * @throws BadConfigurationException when the flag names no node or the host name matches none,
   *     or both; the message names the known nodes
   */
  public NodeConfig self(Optional<String> nodeFlag, String hostName)
      throws BadConfigurationException {
    String known = " (known nodes: " + ConfigParser.names(nodes) + (followers.isEmpty() ? ""
        : "; followers: " + String.join(", ", followers.stream().map(FollowerConfig::name).toList())) + ")";
    if (nodeFlag.isPresent()) {
      return node(nodeFlag.get()).orElseThrow(() -> new BadConfigurationException(List.of(
          source + ": --node " + quote(nodeFlag.get()) + " is not a node of this file" + known)));
    }
    String host = hostName.trim().toLowerCase(Locale.ROOT);
    String firstLabel = host.contains(".") ? host.substring(0, host.indexOf('.')) : host;
    List<NodeConfig> byName = nodes.stream()
        .filter(n -> n.name().equals(host) || n.name().equals(firstLabel))
        .toList();
    if (byName.size() == 1) {
      return byName.get(0);
    }
    List<NodeConfig> byAddress = nodes.stream()
        .filter(n -> n.address().getHostString().toLowerCase(Locale.ROOT).equals(host)
            || n.extraAddresses().stream()
                .anyMatch(a -> a.getHostString().toLowerCase(Locale.ROOT).equals(host)))
        .toList();
    if (byAddress.size() == 1) {
      return byAddress.get(0);
    }
    if (byAddress.size() > 1) {
      throw new BadConfigurationException(List.of(source + ": host name " + quote(hostName)
          + " is the address of both nodes; choose one with --node" + known));
    }
    throw new BadConfigurationException(List.of(source + ": no node matches host name "
        + quote(hostName) + "; choose one with --node" + known));
  }

  /**
   * The other node of the pair.
   *
   * @throws IllegalArgumentException when {@code self} is not a node of this configuration
   */
  public NodeConfig peerOf(NodeConfig self) {
    if (self.equals(nodes.get(0))) {
      return nodes.get(1);
    }
    if (self.equals(nodes.get(1))) {
      return nodes.get(0);
    }
    throw new IllegalArgumentException("not a node of this configuration: " + self.name());
  }

  private static String quote(String text) {
    return "\"" + text + "\"";
  }
}
