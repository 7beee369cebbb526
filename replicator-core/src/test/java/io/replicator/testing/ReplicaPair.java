package io.replicator.testing;

import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.Replicator;
import io.replicator.tools.TreeDiff;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A primary and a replica in one JVM over real loopback sockets, optionally through a {@link
 * TcpProxy}; tests build one per scenario and close it in all cases. On failure, {@link
 * #describe()} prints both nodes' state.
 */
public final class ReplicaPair implements Closeable {
  public final Path primaryRoot;
  public final Path replicaRoot;
  private final boolean viaProxy;
  private ReplicaServer replica;
  private TcpProxy proxy;
  private ReplicatedFileSystem fs;
  private int replicaPort;
  /** The cluster both nodes name in their handshake. */
  private final String cluster;

  private ReplicaPair(Path primaryRoot, Path replicaRoot, boolean viaProxy, String cluster) {
    this.primaryRoot = primaryRoot;
    this.replicaRoot = replicaRoot;
    this.viaProxy = viaProxy;
    this.cluster = cluster;
  }

  /** Starts a replica under {@code base/replica}; the primary is opened by {@link #openPrimary}. */
  public static ReplicaPair start(Path base, boolean viaProxy) throws IOException {
    return start(base, viaProxy, "replicator");
  }

  /**
   * As {@link #start(Path, boolean)}, in cluster {@code cluster}: a test that brings nodes of its
   * own (followers, a promoted node) names one of its own, so that no node of another test that
   * happens to reach a reused port is taken for one of its nodes.
   */
  public static ReplicaPair start(Path base, boolean viaProxy, String cluster) throws IOException {
    ReplicaPair pair = new ReplicaPair(base.resolve("primary"), base.resolve("replica"), viaProxy, cluster);
    pair.startReplica();
    if (viaProxy) {
      pair.proxy = new TcpProxy(pair.replica.localAddress());
    }
    return pair;
  }

  /** Opens the primary with test timers (fast heartbeats) and whatever the caller adds. */
  public ReplicatedFileSystem openPrimary(ReplicationMode mode, UnaryOperator<Replicator.PrimaryBuilder> extra)
      throws IOException {
    InetSocketAddress peer = viaProxy ? proxy.address() : new InetSocketAddress("127.0.0.1", replicaPort);
    fs = extra.apply(Replicator.primary(primaryRoot)
            .clusterName(cluster)
            .peer(peer)
            .nodeId("test-primary")
            .mode(mode)
            .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
            .connectTimeout(Duration.ofSeconds(5)))
        .open();
    return fs;
  }

  public ReplicatedFileSystem openPrimary(ReplicationMode mode) throws IOException {
    return openPrimary(mode, b -> b);
  }

  public ReplicatedFileSystem fs() {
    return fs;
  }

  public ReplicaServer replica() {
    return replica;
  }

  public TcpProxy proxy() {
    return proxy;
  }

  /** Stops the replica server (the secondary "dies"). */
  public void stopReplica() {
    if (replica != null) {
      replica.close();
      replica = null;
    }
  }

  /** Starts the replica again on the same port, so the primary's reconnects find it. */
  public void startReplica() throws IOException {
    startReplica(b -> b);
  }

  /** Starts the replica with whatever the caller adds (a split-brain choice, say). */
  public void startReplica(UnaryOperator<Replicator.ReplicaBuilder> extra) throws IOException {
    replica = extra.apply(Replicator.replica(replicaRoot)
        .clusterName(cluster)
        .listen(new InetSocketAddress("127.0.0.1", replicaPort))
        .nodeId("test-replica")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500)))
        .start();
    replicaPort = replica.localAddress().getPort();
  }

  /** The differences between the two trees; empty when equal. */
  public List<String> differences() throws IOException {
    return TreeDiff.compare(primaryRoot, replicaRoot);
  }

  public String describe() {
    return "primary " + (fs == null ? "not open" : fs.status()) + "\nreplica "
        + (replica == null ? "stopped" : replica.status());
  }

  @Override
  public void close() throws IOException {
    try {
      if (fs != null) {
        fs.close();
      }
    } finally {
      if (proxy != null) {
        proxy.close();
      }
      stopReplica();
    }
  }
}
