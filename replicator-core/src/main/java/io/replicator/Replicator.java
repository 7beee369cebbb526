package io.replicator;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.fs.ReplicatedFileSystemProvider;
import io.replicator.fs.LocalTree;
import io.replicator.replica.ReplicaNode;
import io.replicator.stream.ReplicaStreams;
import io.replicator.stream.ReplicationStream;
import io.replicator.stream.StreamSettings;
import io.replicator.stream.TrackingSettings;
import io.replicator.transport.TransportSettings;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Entry point of the library: {@link #primary(Path)} opens a file system whose writes are
 * replicated, {@link #replica(Path)} starts the server that receives them.
 *
 * <pre>{@code
 * ReplicaServer replica = Replicator.replica(Path.of("/srv/mirror"))
 *     .listen(new InetSocketAddress("0.0.0.0", 7400)).start();
 * ReplicatedFileSystem fs = Replicator.primary(Path.of("/srv/data"))
 *     .peer(new InetSocketAddress("backup", 7400)).mode(ReplicationMode.SYNC).open();
 * }</pre>
 */
public final class Replicator {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Replicator.class);

  /** Name of the metadata directory under a root; hidden by the file system and never replicated. */
  public static final String METADATA_DIRECTORY = ".replicator";
  /** Default replication port. */
  public static final int DEFAULT_PORT = 7400;

  private Replicator() {}

  /** Starts configuring a primary whose tree lives under {@code root} (on any file system provider). */
  public static PrimaryBuilder primary(Path root) {
    return new PrimaryBuilder(root);
  }

  /** Starts configuring a replica that keeps its copy under {@code root}. */
  public static ReplicaBuilder replica(Path root) {
    return new ReplicaBuilder(root);
  }

  /**
   * Opens a primary from a {@code replica:} URI and an environment map, for {@link
   * java.nio.file.FileSystems#newFileSystem(URI, Map)}. Keys: {@code peer} ("host:port", required),
   * {@code mode} (SYNC, MEMORY, ASYNC), {@code cluster}, {@code node}, {@code peerLossPolicy}
   * (CONTINUE, BLOCK), {@code blockTimeoutMillis}, {@code connectTimeoutMillis}.
   */
  public static ReplicatedFileSystem openFromUri(URI uri, Map<String, ?> env) throws IOException {
    checkNotNull(uri, "uri");
    Map<String, ?> e = env == null ? Map.of() : env;
    Set<String> known = Set.of("peer", "mode", "cluster", "node", "peerLossPolicy", "blockTimeoutMillis",
        "connectTimeoutMillis");
    for (String key : e.keySet()) {
      checkArgument(known.contains(key), "unknown key '%s' in the environment of %s (known: %s)", key, uri, known);
    }
    checkArgument(uri.getPath() != null && !uri.getPath().isEmpty(), "URI %s names no root directory", uri);
    Object peer = e.get("peer");
    checkArgument(peer != null, "the environment of %s has no 'peer' (host:port)", uri);
    PrimaryBuilder b = primary(Path.of(uri.getPath())).peer(parseAddress(peer.toString()));
    if (e.containsKey("mode")) {
      b.mode(parseEnum(ReplicationMode.class, "mode", e.get("mode")));
    }
    if (e.containsKey("cluster")) {
      b.clusterName(e.get("cluster").toString());
    }
    if (e.containsKey("node")) {
      b.nodeId(e.get("node").toString());
    }
    if (e.containsKey("peerLossPolicy")) {
      Duration timeout = e.containsKey("blockTimeoutMillis")
          ? Duration.ofMillis(parseLong("blockTimeoutMillis", e.get("blockTimeoutMillis")))
          : Duration.ofSeconds(10);
      b.onPeerLoss(parseEnum(PeerLossPolicy.class, "peerLossPolicy", e.get("peerLossPolicy")), timeout);
    }
    if (e.containsKey("connectTimeoutMillis")) {
      b.connectTimeout(Duration.ofMillis(parseLong("connectTimeoutMillis", e.get("connectTimeoutMillis"))));
    }
    return b.open(uri);
  }

  /** Parses "host:port" (or "[v6]:port"); the port defaults to {@link #DEFAULT_PORT}. */
  public static InetSocketAddress parseAddress(String text) {
    checkNotNull(text, "address");
    String s = text.trim();
    checkArgument(!s.isEmpty(), "empty address");
    String host;
    int port = DEFAULT_PORT;
    if (s.startsWith("[")) {
      int end = s.indexOf(']');
      checkArgument(end > 0, "bad address '%s': no closing ']'", text);
      host = s.substring(1, end);
      if (end + 1 < s.length()) {
        checkArgument(s.charAt(end + 1) == ':', "bad address '%s'", text);
        port = parsePort(text, s.substring(end + 2));
      }
    } else {
      int colon = s.lastIndexOf(':');
      if (colon >= 0) {
        host = s.substring(0, colon);
        port = parsePort(text, s.substring(colon + 1));
      } else {
        host = s;
      }
    }
    checkArgument(!host.isEmpty(), "bad address '%s': no host", text);
    return new InetSocketAddress(host, port);
  }

  private static int parsePort(String text, String port) {
    try {
      int p = Integer.parseInt(port);
      checkArgument(p >= 0 && p <= 65535, "bad address '%s': port %s out of range", text, p);
      return p;
    } catch (NumberFormatException ex) {
      throw new IllegalArgumentException("bad address '" + text + "': port '" + port + "' is not a number");
    }
  }

  private static <E extends Enum<E>> E parseEnum(Class<E> type, String key, Object value) {
    if (type.isInstance(value)) {
      return type.cast(value);
    }
    try {
      return Enum.valueOf(type, value.toString().trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException ex) {
      throw new IllegalArgumentException("bad value '" + value + "' for '" + key + "' (one of "
          + java.util.Arrays.toString(type.getEnumConstants()) + ")");
    }
  }

  private static long parseLong(String key, Object value) {
    try {
      long v = value instanceof Number n ? n.longValue() : Long.parseLong(value.toString().trim());
      checkArgument(v >= 0, "'%s' must not be negative: %s", key, v);
      return v;
    } catch (NumberFormatException ex) {
      throw new IllegalArgumentException("bad value '" + value + "' for '" + key + "': not a number");
    }
  }

  static String defaultNodeId(String role) {
    try {
      return InetAddress.getLocalHost().getHostName() + "-" + role;
    } catch (UnknownHostException e) {
      return "localhost-" + role;
    }
  }

  /** Configures and opens a primary. */
  /** Where each follower's own metadata (generations, bitmap, activity log) lives under the primary's. */
  static final String FOLLOWERS_DIRECTORY = "followers";

  private static final java.util.regex.Pattern FOLLOWER_NAME =
      java.util.regex.Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}");

  private record FollowerSpec(String name, InetSocketAddress address, ReplicationMode mode, long bandwidthCap,
      LinkCompression compression) {}

  static io.replicator.transport.TransportSettings.Compression compression(LinkCompression c) {
    return io.replicator.transport.TransportSettings.Compression.valueOf(c.name());
  }

  public static final class PrimaryBuilder {
    private final Path root;
    private InetSocketAddress peer;
    private ReplicationMode mode = ReplicationMode.SYNC;
    private String clusterName = "replicator";
    private String nodeId;
    private PeerLossPolicy peerLossPolicy = PeerLossPolicy.CONTINUE;
    private Duration blockTimeout = Duration.ofSeconds(10);
    private long windowBytes = 64L << 20;
    private int windowChanges = 16_384;
    private Duration connectTimeout = Duration.ofSeconds(5);
    private Duration ackTimeout = StreamSettings.DEFAULT_ACK_TIMEOUT;
    private Duration heartbeatInterval = Duration.ofMillis(500);
    private Duration peerTimeout = Duration.ofSeconds(3);
    private SplitBrainPolicy splitBrainPolicy = SplitBrainPolicy.DISCONNECT;
    private long resyncBytesPerSecond;
    private TrackingSettings tracking = TrackingSettings.defaults();
    private InetSocketAddress agent;
    private String agentToken;
    private LinkSecurity security = LinkSecurity.none();
    private final List<FollowerSpec> followers = new ArrayList<>();
    private long followerSpillBytes = StreamSettings.DEFAULT_FOLLOWER_SPILL_BYTES;

    private PrimaryBuilder(Path root) {
      this.root = checkNotNull(root, "root");
    }

    /**
     * Registers with the local agent at its admin address, which owns the role decision: open()
     * fails unless the agent says this node is primary, and the peer, mode, cluster, timers and
     * policies come from the pair's configuration through the agent (they override this builder's).
     * While open, the library renews a lease with the agent; the agent may hold writes (no quorum to
     * write alone, or fenced), and losing the agent for longer than the lease suspends writes.
     */
    public PrimaryBuilder agent(InetSocketAddress adminAddress) {
      this.agent = checkNotNull(adminAddress, "adminAddress");
      return this;
    }

    /**
     * The admin token; never logged. Without it, the token the local agent made for itself is
     * read from its file ({@code ~/.replicator/admin-PORT.token}, or under {@code
     * $REPLICATOR_RUNTIME_DIR}) when the agent's address is one of this machine's.
     */
    public PrimaryBuilder agentToken(String token) {
      this.agentToken = checkNotNull(token, "token");
      return this;
    }

    /** The replica's address (required unless an {@linkplain #agent agent} supplies it). */
    public PrimaryBuilder peer(InetSocketAddress peer) {
      this.peer = checkNotNull(peer, "peer");
      return this;
    }

    /** The replication mode; {@link ReplicationMode#SYNC} by default. */
    /**
     * Declares a follower: one more copy at {@code address} fed with the same changes. A write waits
     * for a SYNC or MEMORY follower as for the secondary; an ASYNC one (also the primary's side of a
     * DELAYED follower) never holds writes. Each follower keeps its own bitmap here, under a name
     * of letters, digits, '.', '_' or '-'. A follower is never promoted automatically.
     */
    public PrimaryBuilder follower(String name, InetSocketAddress address, ReplicationMode mode) {
      return follower(name, address, mode, 0, LinkCompression.AUTO);
    }

    /**
     * Declares a follower as {@link #follower(String, InetSocketAddress, ReplicationMode)} does, behind a
     * link that sends at most {@code bandwidthCap} bytes per second (0: no cap) and compresses as
     * {@code compression} says (the follower must want it too).
     */
    public PrimaryBuilder follower(String name, InetSocketAddress address, ReplicationMode mode, long bandwidthCap,
        LinkCompression compression) {
      checkArgument(bandwidthCap >= 0, "negative bandwidth cap %s", bandwidthCap);
      checkNotNull(compression, "compression");
      checkNotNull(name, "name");
      checkArgument(FOLLOWER_NAME.matcher(name).matches(),
          "follower name '%s' must be 1-64 letters, digits, '.', '_' or '-' and not start with '.'", name);
      checkNotNull(address, "address");
      checkNotNull(mode, "mode");
      for (FollowerSpec f : followers) {
        checkArgument(!f.name().equals(name), "follower '%s' is declared twice", name);
      }
      followers.add(new FollowerSpec(name, address, mode, bandwidthCap, compression));
      return this;
    }

    /**
     * Bounds what an ASYNC follower whose window is full queues on this node's disk (under its
     * metadata) before it falls back to its dirty bitmap; 1 GiB by default, 0 to fall back at once.
     */
    public PrimaryBuilder followerSpill(long bytes) {
      checkArgument(bytes >= 0, "negative follower spill bound %s", bytes);
      this.followerSpillBytes = bytes;
      return this;
    }

    public PrimaryBuilder mode(ReplicationMode mode) {
      this.mode = checkNotNull(mode, "mode");
      return this;
    }

    /** Both sides must name the same cluster; "replicator" by default. */
    public PrimaryBuilder clusterName(String clusterName) {
      this.clusterName = checkNotNull(clusterName, "clusterName");
      return this;
    }

    /** This node's id; "HOST-primary" by default. */
    public PrimaryBuilder nodeId(String nodeId) {
      this.nodeId = checkNotNull(nodeId, "nodeId");
      return this;
    }

    /** What writes do while the peer is absent; CONTINUE (go on alone) by default. */
    public PrimaryBuilder onPeerLoss(PeerLossPolicy policy, Duration blockTimeout) {
      this.peerLossPolicy = checkNotNull(policy, "policy");
      this.blockTimeout = checkNotNull(blockTimeout, "blockTimeout");
      checkArgument(!blockTimeout.isNegative(), "negative block timeout %s", blockTimeout);
      return this;
    }

    /** Bounds the changes in flight (and the ASYNC lag); 64 MiB and 16,384 changes by default. */
    public PrimaryBuilder window(long bytes, int changes) {
      checkArgument(bytes >= 1 << 20, "window of %s bytes is below 1 MiB", bytes);
      checkArgument(changes >= 1, "window of %s changes", changes);
      this.windowBytes = bytes;
      this.windowChanges = changes;
      return this;
    }

    /** How long {@link #open()} waits for the peer before going on alone; 5 s by default. */
    /**
     * How long a change may wait for the secondary's acknowledgement while the link is otherwise
     * alive (default 30 s). Past it the link is dropped, the change is marked dirty and the
     * peer-loss policy applies, so a secondary whose disk hangs cannot hold writes forever.
     */
    public PrimaryBuilder ackTimeout(Duration timeout) {
      this.ackTimeout = checkNotNull(timeout, "timeout");
      checkArgument(timeout.compareTo(Duration.ofMillis(100)) >= 0, "acknowledgement timeout %s below 100 ms", timeout);
      return this;
    }

    public PrimaryBuilder connectTimeout(Duration timeout) {
      this.connectTimeout = checkNotNull(timeout, "timeout");
      checkArgument(!timeout.isNegative(), "negative connect timeout %s", timeout);
      return this;
    }

    /** Heartbeat interval and the silence after which the peer counts as lost; 500 ms and 3 s by default. */
    public PrimaryBuilder heartbeat(Duration interval, Duration timeout) {
      this.heartbeatInterval = checkNotNull(interval, "interval");
      this.peerTimeout = checkNotNull(timeout, "timeout");
      checkArgument(timeout.compareTo(interval) > 0, "peer timeout %s must exceed the heartbeat interval %s",
          timeout, interval);
      return this;
    }

    /**
     * How a split brain found on connect is resolved: {@link SplitBrainPolicy#DISCONNECT} (the
     * default) reports it and stays disconnected until an operator discards one side.
     */
    public PrimaryBuilder splitBrainPolicy(SplitBrainPolicy policy) {
      this.splitBrainPolicy = checkNotNull(policy, "policy");
      return this;
    }

    /**
     * Caps the resync rate in bytes per second; 0 (the default) leaves only the adaptive bound,
     * which keeps resync data under a quarter of the in-flight window.
     */
    public PrimaryBuilder resyncRate(long bytesPerSecond) {
      checkArgument(bytesPerSecond >= 0, "negative resync rate %s", bytesPerSecond);
      this.resyncBytesPerSecond = bytesPerSecond;
      return this;
    }

    /**
     * Bytes per dirty-bitmap bit; 4 KiB by default. A power of two in 512..1 MiB. A bitmap already
     * saved with another size keeps its own until it is empty.
     */
    public PrimaryBuilder blockSize(int bytes) {
      this.tracking = new TrackingSettings(bytes, Math.max(bytes, tracking.extentSize() / bytes * bytes),
          tracking.maxHotExtents());
      return this;
    }

    /**
     * The activity log: extent size (4 MiB by default) and how many extents stay hot (1024): after a
     * crash of this node as primary, at most that many extents are resynced.
     */
    public PrimaryBuilder activityLog(long extentBytes, int maxHotExtents) {
      this.tracking = new TrackingSettings(tracking.blockSize(), extentBytes, maxHotExtents);
      return this;
    }

    /** Shared secret and/or mutual TLS of the link; the replica must be configured alike. None by default. */
    public PrimaryBuilder security(LinkSecurity security) {
      this.security = checkNotNull(security, "security");
      return this;
    }

    /** Opens the file system: connects to the peer (waiting up to the connect timeout) and returns. */
    public ReplicatedFileSystem open() throws IOException {
      return open(null);
    }

    ReplicatedFileSystem open(URI uri) throws IOException {
      io.replicator.cluster.AgentLease lease = null;
      if (agent != null) {
        // Without a token given, the one the local agent made for itself (see AdminTokenFile).
        java.util.Optional<String> token = agentToken != null ? java.util.Optional.of(agentToken)
            : io.replicator.cluster.AdminTokenFile.find(System::getenv, agent);
        lease = io.replicator.cluster.AgentLease.register(agent, token,
            root.toAbsolutePath().toString());
        try {
          configureFrom(lease.registration());
        } catch (IOException | RuntimeException e) {
          lease.release(false);
          throw e;
        }
      }
      try {
        return openReplicated(uri, lease);
      } catch (IOException | RuntimeException e) {
        if (lease != null) {
          lease.release(false);
        }
        throw e;
      }
    }

    /** Takes peer, mode, cluster, node, timers and policies from the agent's registration answer. */
    private void configureFrom(io.replicator.proto.Registration r) throws IOException {
      if (!r.getRoot().isEmpty() && Files.isDirectory(root)
          && !Path.of(r.getRoot()).toRealPath().equals(root.toRealPath())) {
        throw new IOException("the local agent replicates " + r.getRoot() + ", not " + root
            + "; refusing to open as primary");
      }
      if (!r.getPeer().isEmpty()) {
        peer = parseAddress(r.getPeer());
      }
      if (r.getMode() != io.replicator.proto.Mode.MODE_UNSPECIFIED) {
        mode = ReplicationMode.valueOf(r.getMode().name().substring("MODE_".length()));
      }
      if (!r.getCluster().isEmpty()) {
        clusterName = r.getCluster();
      }
      if (!r.getNode().isEmpty()) {
        nodeId = r.getNode();
      }
      if (r.getHeartbeatMillis() > 0 && r.getPeerTimeoutMillis() > 0) {
        heartbeat(Duration.ofMillis(r.getHeartbeatMillis()), Duration.ofMillis(r.getPeerTimeoutMillis()));
      }
      if (r.getAckTimeoutMillis() > 0) {
        ackTimeout(Duration.ofMillis(r.getAckTimeoutMillis()));
      }
      if (r.getConnectTimeoutMillis() > 0) {
        connectTimeout = Duration.ofMillis(r.getConnectTimeoutMillis());
      }
      if (r.getSplitBrainPolicy() != io.replicator.proto.SplitBrainPolicyValue.SPLIT_BRAIN_POLICY_UNSPECIFIED) {
        splitBrainPolicy = SplitBrainPolicy.valueOf(r.getSplitBrainPolicy().name().substring("SPLIT_BRAIN_".length()));
      }
      if (r.getPeerLossPolicy() != io.replicator.proto.PeerLossPolicyValue.PEER_LOSS_POLICY_UNSPECIFIED) {
        peerLossPolicy = PeerLossPolicy.valueOf(r.getPeerLossPolicy().name().substring("PEER_LOSS_".length()));
      }
      if (r.getBlockTimeoutMillis() > 0) {
        blockTimeout = Duration.ofMillis(r.getBlockTimeoutMillis());
      }
      if (!r.getSecretFile().isEmpty()) {
        security = LinkSecurity.secretFile(Path.of(r.getSecretFile()));
      }
      resyncBytesPerSecond = r.getResyncRate();
      // the pair's file names the followers: whichever node is primary feeds the same ones
      followers.clear();
      for (io.replicator.proto.FollowerEntry f : r.getFollowersList()) {
        ReplicationMode feed = f.getMode() == io.replicator.proto.Mode.MODE_UNSPECIFIED
            || f.getMode() == io.replicator.proto.Mode.UNRECOGNIZED ? ReplicationMode.ASYNC
            : ReplicationMode.valueOf(f.getMode().name().substring("MODE_".length()));
        LinkCompression compression = switch (f.getCompression()) {
          case LINK_COMPRESSION_OFF -> LinkCompression.OFF;
          case LINK_COMPRESSION_LZ4 -> LinkCompression.LZ4;
          case LINK_COMPRESSION_ZSTD -> LinkCompression.ZSTD;
          default -> LinkCompression.AUTO;
        };
        follower(f.getName(), parseAddress(f.getAddress()), feed, f.getBandwidth(), compression);
      }
    }

    private ReplicatedFileSystem openReplicated(URI uri, io.replicator.cluster.AgentLease lease) throws IOException {
      checkArgument(peer != null, "no peer: call peer(address) before open()");
      Files.createDirectories(root);
      if (!Files.isDirectory(root)) {
        throw new IOException("primary root " + root + " is not a directory");
      }
      Path metaDir = root.resolve(METADATA_DIRECTORY);
      boolean hasData = hasData(root);
      TransportSettings transport = TransportSettings
          .defaults(clusterName, nodeId != null ? nodeId : defaultNodeId("primary"))
          .withTimers(heartbeatInterval, peerTimeout)
          .withSecurity(security);
      StreamSettings stream = new StreamSettings(peer, mode, peerLossPolicy, blockTimeout, windowBytes,
          windowChanges, connectTimeout, Duration.ofMillis(100), Duration.ofSeconds(5), Duration.ofSeconds(10),
          resyncBytesPerSecond, ackTimeout, false, followerSpillBytes);
      ReplicationStream sink = ReplicationStream.open(stream, transport, metaDir, hasData, splitBrainPolicy, tracking);
      List<ReplicaStreams.Follower> opened = new ArrayList<>();
      ReplicaStreams streams;
      ReplicatedFileSystem fs;
      try {
        continueFollowers(metaDir, transport.nodeId());
        for (FollowerSpec f : followers) {
          // each follower has its own generations, bitmap and activity log on this node
          opened.add(new ReplicaStreams.Follower(f.name(), ReplicationStream.open(
              stream.forFollower(f.address(), f.mode()),
              transport.withBandwidthCap(f.bandwidthCap()).withCompression(compression(f.compression())),
              metaDir.resolve(FOLLOWERS_DIRECTORY).resolve(f.name()), hasData, splitBrainPolicy, tracking)));
        }
        streams = ReplicaStreams.of(sink, opened);
        fs = uri == null ? ReplicatedFileSystemProvider.open(root, streams)
            : ReplicatedFileSystemProvider.open(root, streams, uri);
      } catch (IOException | RuntimeException e) {
        for (ReplicaStreams.Follower f : opened) {
          f.stream().close();
        }
        sink.close();
        throw e;
      }
      streams.attach((LocalTree) fs);
      if (lease != null) {
        sink.onClose(lease::release);
        lease.start(fs, streams::gate);
      }
      sink.awaitLive(connectTimeout.plusSeconds(5));
      return fs;
    }

    /**
     * When this node was the secondary until now (a failover or a swap), it recorded by the old
     * primary's marks what each follower may lack: each follower's stream continues from there
     * (an incremental resync) instead of comparing everything.
     */
    private void continueFollowers(Path metaDir, String node) throws IOException {
      io.replicator.replica.UnsharedChanges record =
          io.replicator.replica.UnsharedChanges.take(metaDir, tracking.blockSize());
      if (!record.keptBySecondary()) {
        if (!record.copies().isEmpty()) {
          // a follower promoted by hand: the others' reports are of what the secondary lacks, not it
          log.info("this node was a follower until now: its followers are resynced by checksum");
        }
        return;
      }
      for (FollowerSpec f : followers) {
        java.util.Optional<io.replicator.replica.UnsharedChanges.Shortfall> s = record.shortfall(f.name());
        if (s.isPresent()) {
          ReplicationStream.continueFollower(metaDir.resolve(FOLLOWERS_DIRECTORY).resolve(f.name()), node,
              s.get().epoch(), s.get().generation(), s.get().blocks());
          log.info("follower {} continues from the previous primary's stream: {} byte(s) in {} path(s) it may lack",
              f.name(), s.get().blocks().dirtyBytes(), s.get().blocks().dirtyPathCount());
        }
      }
    }

    private static boolean hasData(Path root) throws IOException {
      try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
        for (Path p : entries) {
          if (!p.getFileName().toString().equals(METADATA_DIRECTORY)) {
            return true;
          }
        }
      }
      return false;
    }
  }

  /** Configures and starts a replica server. */
  public static final class ReplicaBuilder {
    private final Path root;
    private InetSocketAddress listen = new InetSocketAddress("0.0.0.0", DEFAULT_PORT);
    private String clusterName = "replicator";
    private String nodeId;
    private int applyThreads = 4;
    private Duration heartbeatInterval = Duration.ofMillis(500);
    private Duration peerTimeout = Duration.ofSeconds(3);
    private SplitBrainPolicy splitBrainPolicy = SplitBrainPolicy.DISCONNECT;
    private boolean discardLocalChanges;
    private boolean follower;
    private LinkCompression compression = LinkCompression.AUTO;
    private Duration delay;
    private long delayLogCapacity;
    private LinkSecurity security = LinkSecurity.none();

    private ReplicaBuilder(Path root) {
      this.root = checkNotNull(root, "root");
    }

    /** Where to listen; 0.0.0.0:7400 by default. Port 0 picks a free port ({@link ReplicaServer#localAddress()}). */
    public ReplicaBuilder listen(InetSocketAddress address) {
      this.listen = checkNotNull(address, "address");
      return this;
    }

    /** Both sides must name the same cluster; "replicator" by default. */
    public ReplicaBuilder clusterName(String clusterName) {
      this.clusterName = checkNotNull(clusterName, "clusterName");
      return this;
    }

    /** This node's id; "HOST-replica" by default. */
    public ReplicaBuilder nodeId(String nodeId) {
      this.nodeId = checkNotNull(nodeId, "nodeId");
      return this;
    }

    /** Threads that apply changes to different files in parallel; 4 by default. */
    public ReplicaBuilder applyThreads(int threads) {
      checkArgument(threads >= 1 && threads <= 256, "apply threads %s out of 1..256", threads);
      this.applyThreads = threads;
      return this;
    }

    /** Heartbeat interval and the silence after which the primary counts as lost; 500 ms and 3 s by default. */
    public ReplicaBuilder heartbeat(Duration interval, Duration timeout) {
      this.heartbeatInterval = checkNotNull(interval, "interval");
      this.peerTimeout = checkNotNull(timeout, "timeout");
      checkArgument(timeout.compareTo(interval) > 0, "peer timeout %s must exceed the heartbeat interval %s",
          timeout, interval);
      return this;
    }

    /** How a split brain found when a primary connects is resolved; DISCONNECT by default. */
    public ReplicaBuilder splitBrainPolicy(SplitBrainPolicy policy) {
      this.splitBrainPolicy = checkNotNull(policy, "policy");
      return this;
    }

    /**
     * Resolves a split brain by discarding this node's own changes: the next primary that connects
     * resyncs this copy fully to its own (DRBD's "discard my data"). Remembered until that resync ends.
     */
    public ReplicaBuilder discardLocalChanges() {
      this.discardLocalChanges = true;
      return this;
    }

    /** Whether links to this replica may compress (both sides must want it); AUTO by default. */
    public ReplicaBuilder compression(LinkCompression compression) {
      this.compression = checkNotNull(compression, "compression");
      return this;
    }

    /**
     * Serves as a follower, not as the pair's secondary: whichever node of the pair is primary may
     * feed it, its copy is never taken as a source, and it is never promoted automatically.
     */
    public ReplicaBuilder asFollower() {
      this.follower = true;
      return this;
    }

    /**
     * Serves as a delayed follower: every change is received at once into a durable spill log of at
     * most {@code logCapacityBytes} under the root's metadata directory, and applied only once it is
     * older than {@code delay}; see {@link DelayedFollower}. When the log is full the follower stops
     * taking changes and the primary tracks what it misses in its bitmap, never holding writes.
     */
    public ReplicaBuilder delayed(Duration delay, long logCapacityBytes) {
      checkNotNull(delay, "delay");
      checkArgument(!delay.isNegative(), "negative delay %s", delay);
      checkArgument(logCapacityBytes >= 1 << 20, "a spill log of %s bytes is below 1 MiB", logCapacityBytes);
      this.follower = true;
      this.delay = delay;
      this.delayLogCapacity = logCapacityBytes;
      return this;
    }

    /**
     * Shared secret and/or mutual TLS of the link: a primary that does not prove the secret or
     * present a trusted certificate is refused before any change. None by default.
     */
    public ReplicaBuilder security(LinkSecurity security) {
      this.security = checkNotNull(security, "security");
      return this;
    }

    /** Binds and starts serving. */
    public ReplicaServer start() throws IOException {
      TransportSettings transport = TransportSettings
          .defaults(clusterName, nodeId != null ? nodeId : defaultNodeId("replica"))
          .withTimers(heartbeatInterval, peerTimeout)
          .withSecurity(security)
          .withCompression(Replicator.compression(compression));
      return ReplicaNode.start(root, listen, transport, applyThreads, splitBrainPolicy, discardLocalChanges, follower,
          delay, delayLogCapacity);
    }
  }
}
