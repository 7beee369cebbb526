package io.replicator.replica;

import io.replicator.NodeState;
import io.replicator.ReplicaServer;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.change.MalformedChangeException;
import io.replicator.proto.Ack;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.NodeMetadata;
import io.replicator.meta.GenerationIds;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.SplitBrainPolicy;
import io.replicator.meta.SyncDecision;
import io.replicator.transport.Frame;
import io.replicator.transport.PeerAcceptor;
import io.replicator.transport.PeerConnection;
import io.replicator.transport.PeerListener;
import io.replicator.transport.TransportServer;
import io.replicator.transport.TransportSettings;
import static com.google.common.base.Preconditions.checkArgument;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The secondary's server: accepts one primary at a time, hands its changes to a {@link
 * ChangeApplier}, and acknowledges them cumulatively. A new connection from the same primary
 * replaces a stale one (a half-open link); a different primary is refused while one is connected.
 *
 * <p>Each connection is a {@link Session}: frames are counted, validated and handed to the
 * applier's lanes on the I/O thread (reading pauses while the applier's budget is spent), and
 * acknowledged from there once applied. A session starts applying only after the previous one has
 * fully stopped, so changes from two connections never interleave.
 */
public final class ReplicaNode implements ReplicaServer, PeerAcceptor {
  private static final Logger log = LoggerFactory.getLogger(ReplicaNode.class);

  private final Path root;
  private final ChangeApplier.Options applierOptions;
  /** Ranges of changes applied out of order per acknowledgement: keeps an ack within 1 KiB. */
  private static final int MAX_ACK_RANGES = 40;
  /** How long a closed session keeps applying what it had already received. */
  private static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(30);
  private final TransportServer server;
  private final Object sessionLock = new Object();
  private Session session; // guarded by sessionLock
  private CompletableFuture<Void> previousStopped = CompletableFuture.completedFuture(null);
  /**
   * Sessions started and not yet stopped. A session waits for the one before it to stop, so a peer
   * that reconnects faster than sessions wind down would otherwise pile up threads and buffers.
   */
  private final AtomicInteger unfinishedSessions = new AtomicInteger();
  /** One session stopping and one serving; a third connection is refused until the first is done. */
  private static final int MAX_UNFINISHED_SESSIONS = 2;
  private volatile boolean closed;
  private volatile long lastSeenSeq;
  private volatile long lastAppliedSeq;
  private final NodeMetadataStore metadata;
  private final SplitBrainPolicy splitBrainPolicy;
  /** A follower: never a source, fed by whichever node of the pair is primary. */
  private final boolean follower;
  /** A delayed follower's spill log and applier; null otherwise. */
  private final DelayedApply delayed;
  private final ReplicaSyncState syncState;
  /** What this replica received that other copies may lack, by the primary's marks. */
  private final UnsharedChanges unshared;
  /** Why the last primary was refused (split brain, newer data here, unrelated data), or null. */
  private volatile String refusal;
  /** Injected disk faults (tests only); read on every apply, so a change reaches a live session. */
  private volatile ApplyFaults faults = ApplyFaults.NONE;
  private final ApplyFaults currentFaults = new ApplyFaults() {
    @Override
    public void beforeApply(long seq, FileChange change) throws IOException {
      faults.beforeApply(seq, change);
    }

    @Override
    public void beforeSync(Path path) throws IOException {
      faults.beforeSync(path);
    }

    @Override
    public void beforeFlush(Path root) throws IOException {
      faults.beforeFlush(root);
    }

    @Override
    public void beforeManifest(io.replicator.proto.ManifestRequest request) throws IOException {
      faults.beforeManifest(request);
    }

    @Override
    public void beforeResyncEnd() throws IOException {
      faults.beforeResyncEnd();
    }
  };
  /** Writes each finished resync's data to the disk after its end is recorded. */
  private final ResyncFlush resyncFlush;

  private ReplicaNode(Path root, ChangeApplier.Options applierOptions, InetSocketAddress listen,
      TransportSettings settings, NodeMetadataStore metadata, SplitBrainPolicy splitBrainPolicy, boolean follower,
      DelayedApply delayed) throws IOException {
    this.follower = follower;
    this.delayed = delayed;
    this.root = root;
    this.applierOptions = applierOptions;
    this.metadata = metadata;
    this.splitBrainPolicy = splitBrainPolicy;
    this.syncState = new ReplicaSyncState(root, metadata);
    this.resyncFlush = new ResyncFlush(root, currentFaults, syncState, this::resyncFlushFailed);
    this.unshared = UnsharedChanges.take(root.resolve(ReplicaSyncState.METADATA_DIRECTORY),
        io.replicator.meta.DirtyBitmap.DEFAULT_BLOCK_SIZE);
    this.server = TransportServer.start(listen, settings, this, 2);
    if (syncState.unflushedThisBoot()) {
      // the last run stopped before the flush that follows a resync's end
      resyncFlush.start(syncState.resyncsStarted());
    }
  }

  /** Starts serving {@code root} on {@code listen}. The root directory is created when missing. */
  public static ReplicaNode start(Path root, InetSocketAddress listen, TransportSettings settings,
      int applyThreads, SplitBrainPolicy splitBrainPolicy, boolean discardLocal) throws IOException {
    return start(root, listen, settings, applyThreads, splitBrainPolicy, discardLocal, false, null, 0);
  }

  /**
   * Starts serving {@code root} on {@code listen}; a {@code follower} accepts any primary of its
   * cluster, whose decision ({@link SyncDecision#decideForFollower}) never takes data from it.
   */
  public static ReplicaNode start(Path root, InetSocketAddress listen, TransportSettings settings,
      int applyThreads, SplitBrainPolicy splitBrainPolicy, boolean discardLocal, boolean follower)
      throws IOException {
    return start(root, listen, settings, applyThreads, splitBrainPolicy, discardLocal, follower, null, 0);
  }

  /**
   * As above; with a {@code delay} (not null), a delayed follower whose spill log of at most
   * {@code delayLogCapacity} bytes lives under the metadata directory.
   */
  public static ReplicaNode start(Path root, InetSocketAddress listen, TransportSettings settings,
      int applyThreads, SplitBrainPolicy splitBrainPolicy, boolean discardLocal, boolean follower,
      java.time.Duration delay, long delayLogCapacity) throws IOException {
    checkArgument(delay == null || follower, "only a follower is delayed");
    ChangeApplier.Options applierOptions = ChangeApplier.Options.defaults().withApplyThreads(applyThreads);
    Files.createDirectories(root);
    if (!Files.isDirectory(root)) {
      throw new IOException("replica root " + root + " is not a directory");
    }
    NodeMetadataStore metadata = NodeMetadataStore.open(root.resolve(ReplicaSyncState.METADATA_DIRECTORY));
    NodeMetadata current = metadata.current();
    boolean lostResync = ReplicaSyncState.resyncLostWithTheMachine(current, ReplicaSyncState.BOOT_ID);
    if (lostResync) {
      log.warn("this machine restarted before a resync into {} was on its disk: blocks it had applied may not"
          + " have reached the disk, so this copy is inconsistent and the next resync compares every block", root);
    }
    if (metadata.found() != NodeMetadataStore.Found.VALID || discardLocal || current.getRunningAsPrimary()
        || lostResync) {
      NodeMetadata.Builder b = current.toBuilder().setFormat(1).setNodeId(settings.nodeId());
      if (metadata.found() == NodeMetadataStore.Found.NONE && hasData(root)) {
        // files that no replication put here: nothing says what they hold
        b.setInconsistent(true);
      }
      if (metadata.found() == NodeMetadataStore.Found.CORRUPT) {
        // nothing is known about this copy: it can only be a full resync target
        b.setGenerations(io.replicator.proto.GenerationIds.getDefaultInstance()).setInconsistent(true);
      }
      if (discardLocal || lostResync) {
        // what this copy holds is compared block by block with the peer's, not trusted
        b.setDiscardLocal(true);
      }
      if (lostResync) {
        // whether the resync had ended or not: until that comparison, this is no copy to promote
        b.setInconsistent(true);
      }
      // a node that served as primary and now starts as replica is no longer primary; its hot
      // extents stay in its activity log and are reported to the next primary
      metadata.write(b.setRunningAsPrimary(false).build());
    }
    DelayedApply delayed = delay == null ? null : DelayedApply.start(root,
        root.resolve(ReplicaSyncState.METADATA_DIRECTORY), delay, delayLogCapacity, applierOptions, ApplyFaults.NONE,
        java.time.Clock.systemUTC()); // the delay is wall time
    ReplicaNode node;
    try {
      node = new ReplicaNode(root, applierOptions, listen, settings, metadata, splitBrainPolicy, follower, delayed);
    } catch (IOException | RuntimeException e) {
      if (delayed != null) {
        delayed.close();
      }
      throw e;
    }
    log.info("replica serving {} on {}", root, node.localAddress());
    return node;
  }

  @Override
  public Decision accept(PeerConnection candidate) {
    synchronized (sessionLock) {
      if (closed) {
        return Decision.refuse("replica is shutting down");
      }
      if (unfinishedSessions.get() >= MAX_UNFINISHED_SESSIONS) {
        return Decision.refuse("earlier connections are still being wound down; retry shortly");
      }
      if (session != null && session.connection.isActive()) {
        if (!session.connection.remoteNodeId().equals(candidate.remoteNodeId())) {
          return Decision.refuse("another primary ('" + session.connection.remoteNodeId()
              + "') is connected to this replica");
        }
        log.info("primary {} reconnected; replacing its previous connection", candidate.remoteNodeId());
        session.connection.close(Goodbye.Code.SHUTDOWN, "replaced by a new connection from the same primary");
      }
      String problem = decide(candidate);
      if (problem == null && delayed != null) {
        problem = delayed.refusal();
      }
      if (problem != null) {
        refusal = problem;
        log.error("refusing primary {}: {}", candidate.remoteNodeId(), problem);
        return Decision.refuse(problem);
      }
      refusal = null;
      io.replicator.proto.CopyReport report = follower ? copyReport() : null;
      unshared.sessionStarted();
      Session s;
      try {
        s = new Session(candidate, previousStopped);
      } catch (IOException e) {
        log.error("cannot serve primary {}: {}", candidate.remoteNodeId(), e.getMessage());
        return Decision.refuse("replica cannot open its root: " + e.getMessage());
      }
      session = s;
      previousStopped = s.stopped;
      unfinishedSessions.incrementAndGet();
      log.info("primary {} connected from {}", candidate.remoteNodeId(), candidate.remoteAddress());
      io.replicator.proto.SyncState state;
      try {
        io.replicator.proto.SyncState.Builder b = syncState.toProto().toBuilder().setFollower(follower);
        if (report != null) {
          b.setCopyReport(report);
        }
        state = b.build();
      } catch (IOException e) {
        log.error("cannot read this replica's activity log: {}", e.toString());
        s.abort();
        return Decision.refuse("replica cannot read its activity log: " + e.getMessage());
      }
      return Decision.accept(s, syncState.generations().toProto(), state);
    }
  }

  /** The most a report of what this follower holds beyond the secondary may take in the handshake. */
  private static final int MAX_REPORT_BYTES = 48 * 1024;

  /**
   * What this follower received that the pair's secondary may lack, for a primary that continues
   * it from the previous one's stream; null when this node cannot say or it is too large to send
   * in the handshake (the primary then resyncs by checksum).
   */
  private io.replicator.proto.CopyReport copyReport() {
    java.util.Optional<UnsharedChanges.Shortfall> s = unshared.shortfall(UnsharedChanges.SECONDARY);
    if (s.isEmpty()) {
      log.info("no report of what this follower holds beyond the secondary ({}): a primary that continues it "
          + "resyncs by checksum", unshared);
      return null;
    }
    byte[] blocks = s.get().blocks().serialize();
    if (blocks.length > MAX_REPORT_BYTES) {
      log.info("what this follower holds beyond the secondary takes {} bytes, more than a handshake carries: "
          + "a primary that continues it resyncs by checksum", blocks.length);
      return null;
    }
    return io.replicator.proto.CopyReport.newBuilder().setEpoch(s.get().epoch())
        .setBlocks(com.google.protobuf.ByteString.copyFrom(blocks)).build();
  }

  private static boolean hasData(Path root) throws IOException {
    try (java.nio.file.DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
      for (Path p : entries) {
        if (!p.getFileName().toString().equals(ReplicaSyncState.METADATA_DIRECTORY)) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Applies the generation rules from this side: a replica accepts a primary that is in sync with
   * it or is its resync source, and refuses one when this copy holds changes the primary lacks.
   */
  private String decide(PeerConnection candidate) {
    io.replicator.proto.Hello hello = candidate.remoteHello();
    GenerationIds peer = GenerationIds.fromProto(hello.getGenerations());
    io.replicator.proto.SyncState peerState = hello.getSyncState();
    NodeMetadata mine = metadata.current();
    GenerationIds local = syncState.generations();
    SyncDecision d = SyncDecision.decide(
        new SyncDecision.Side(local, mine.getDiscardLocal(), syncState.dirtyBytes(), mine.getPrimarySinceMillis()),
        new SyncDecision.Side(peer, peerState.getDiscardLocal(), peerState.getDirtyBytes(),
            peerState.getPrimarySinceMillis()),
        splitBrainPolicy);
    if (follower != peerState.getFollower()) {
      return follower ? "this node is a follower, but primary '" + candidate.remoteNodeId() + "' has it as its secondary"
          : "this node is a secondary, but primary '" + candidate.remoteNodeId() + "' has it as a follower";
    }
    if (follower) {
      d = SyncDecision.decideForFollower(peer, local);
      log.info("primary {} connects to this follower: local {} / primary {} -> {}", candidate.remoteNodeId(), local,
          peer, d);
      return null;
    }
    log.info("primary {} connects: local {} / peer {} -> {}", candidate.remoteNodeId(), local, peer, d);
    if (mine.getDiscardLocal()) {
      // the operator chose to discard this copy: any primary overwrites it with a full resync
      return null;
    }
    return switch (d) {
      case IN_SYNC, INCREMENTAL_PEER_SOURCE, FULL_PEER_SOURCE -> null;
      case INCREMENTAL_LOCAL_SOURCE, FULL_LOCAL_SOURCE ->
          "this replica holds newer data (generation " + Long.toHexString(local.current())
              + ") than primary '" + candidate.remoteNodeId() + "' (generation " + Long.toHexString(peer.current())
              + "): make this node primary, or start it with discard-local to resync it";
      case SPLIT_BRAIN -> "split brain: both nodes changed data since generation "
          + Long.toHexString(local.bitmap()) + "; choose the side to discard (resync --discard-local) "
          + "or configure a split-brain policy";
      case UNRELATED -> "unrelated data: the replica (generation " + Long.toHexString(local.current())
          + ") and primary '" + candidate.remoteNodeId() + "' (generation " + Long.toHexString(peer.current())
          + ") share no history";
    };
  }

  /**
   * The copies this replica's record can say what they may lack of (followers by name, the
   * secondary as an empty name): as the secondary, the followers a next primary here continues
   * incrementally; as a follower, whether it can report to one.
   */
  public java.util.List<String> copiesItCanAnswerFor() {
    return unshared.answerableCopies();
  }

  /** This replica's record of the primary's marks in one line (epoch, segments, positions): what explains an answer. */
  public String describeRecord() {
    return unshared.toString();
  }

  /** Sessions started and not yet stopped (at most {@value #MAX_UNFINISHED_SESSIONS}). */
  int unfinishedSessions() {
    return unfinishedSessions.get();
  }

  /**
   * The flush after a resync failed: the copy recorded itself inconsistent, and the primary, which
   * took it as current, must resync it again; closing the connection makes it reconnect and ask.
   */
  private void resyncFlushFailed(IOException cause) {
    Session s;
    synchronized (sessionLock) {
      s = session;
    }
    if (s != null && s.connection.isActive()) {
      s.connection.close(Goodbye.Code.APPLY_FAILED, "flushing the resync's data failed on the replica: " + cause);
    }
  }

  /** Makes every apply from now on pass through {@code faults}: a full or failing disk, in tests. */
  void injectFaults(ApplyFaults faults) {
    this.faults = faults == null ? ApplyFaults.NONE : faults;
  }

  @Override
  public InetSocketAddress localAddress() {
    return server.localAddress();
  }

  @Override
  public ReplicationStatus status() {
    Session s;
    synchronized (sessionLock) {
      s = session;
    }
    boolean connected = s != null && s.connection.isActive() && !s.ended.get();
    long received = connected ? s.received.get() : lastSeenSeq;
    long applied = connected ? s.applier.appliedSeq() : lastAppliedSeq;
    NodeState state = closed ? NodeState.STOPPED
        : syncState.resyncRunning() ? NodeState.SYNC_TARGET
        : refusal != null ? NodeState.WAIT
        : NodeState.SECONDARY;
    String problem = refusal != null ? refusal
        : syncState.inconsistent() ? "this copy is inconsistent until a resync completes" : null;
    return new ReplicationStatus(state, ReplicationMode.SYNC,
        connected ? Optional.of(s.connection.remoteNodeId() + "@" + s.connection.remoteAddress()) : Optional.empty(),
        connected, false, Optional.ofNullable(problem), syncState.generations().current(), syncState.dirtyBytes(),
        received, applied,
        connected ? Math.max(0, received - applied) : 0, connected ? s.applier.queuedBytes() : 0, Optional.empty());
  }

  @Override
  public Optional<io.replicator.DelayedFollower> delayed() {
    return Optional.ofNullable(delayed);
  }

  @Override
  public io.replicator.LocalData localData() {
    return syncState.localData();
  }

  @Override
  public void close() {
    Session s;
    synchronized (sessionLock) {
      if (closed) {
        return;
      }
      closed = true;
      s = session;
    }
    server.close();
    if (s != null) {
      s.connection.close(Goodbye.Code.SHUTDOWN, "replica closing");
      s.ended.set(true);
      s.finish();
      s.stopped.orTimeout(10, TimeUnit.SECONDS).exceptionally(e -> null).join();
    }
    resyncFlush.close();
    if (delayed != null) {
      try {
        delayed.close();
      } catch (IOException e) {
        log.warn("closing the spill log: {}", e.toString());
      }
    }
    try {
      // for this node's next run: as primary it continues the followers from it, as a follower it
      // reports from it
      unshared.save(root.resolve(ReplicaSyncState.METADATA_DIRECTORY), !follower);
    } catch (IOException e) {
      log.warn("cannot keep the record of what other copies may lack ({}): followers continue by checksum",
          e.toString());
    }
    log.info("replica on {} stopped", root);
  }

  /**
   * One primary connection: receive, validate, apply, acknowledge. Frames are checked and handed
   * to the applier's lanes on the connection's I/O thread (one hand-off per change); resync
   * control messages run in order with the changes as the applier's control steps; when the
   * applier's budget is spent, reading from the primary pauses until it frees up.
   */
  private final class Session implements PeerListener, ChangeApplier.Listener {
    final PeerConnection connection;
    final CompletableFuture<Void> stopped = new CompletableFuture<>();
    final ApplyStage applier;
    final AtomicLong received = new AtomicLong();
    final AtomicBoolean ackScheduled = new AtomicBoolean();
    /** No more frames will be applied; what is queued finishes (or is dropped when discarding). */
    final AtomicBoolean ended = new AtomicBoolean();
    /** Queued changes are dropped instead of applied (after a failure or a protocol error). */
    private volatile boolean discard;
    /** MEMORY primaries wait for receipt: acknowledge frames as they arrive, not only once applied. */
    private final boolean ackOnReceipt;
    private final AtomicBoolean finishing = new AtomicBoolean();
    /** Reading paused because the applier's budget is spent; touched on the I/O thread only. */
    private boolean paused;
    private final Object writable = new Object();
    private long ackedReceived = -1;
    private long ackedApplied = -1;

    final ManifestWriter manifests;

    Session(PeerConnection connection, CompletableFuture<Void> previous) throws IOException {
      this.connection = connection;
      this.ackOnReceipt = !connection.remoteHello().getAppliedAcksOnly();
      this.applier = delayed != null ? delayed.intake(this) : new ChangeApplier(root, this, applierOptions, currentFaults);
      this.manifests = new ManifestWriter(root, new ManifestWriter.Peer() {
        @Override
        public void send(Envelope envelope) throws IOException {
          sendBlocking(envelope);
        }

        @Override
        public boolean awaitApplied(long seq, Duration timeout) throws InterruptedException {
          return applier.awaitApplied(seq, timeout) && applier.failure() == null;
        }

        @Override
        public long appliedSeq() {
          return applier.appliedSeq();
        }

        @Override
        public void beforeWalk(io.replicator.proto.ManifestRequest request) throws IOException {
          currentFaults.beforeManifest(request);
        }

        @Override
        public void failed(String reason) {
          connection.close(Goodbye.Code.APPLY_FAILED, reason);
          abort();
        }
      }, connection.remoteNodeId());
      if (!previous.isDone()) {
        // changes of an earlier connection must be finished before these start
        applier.control(() -> previous.orTimeout(60, TimeUnit.SECONDS).exceptionally(e -> null).join());
      }
    }

    @Override
    public void onFrame(PeerConnection c, Frame frame) {
      Envelope.BodyCase kind = frame.header().getBodyCase();
      if (ended.get()) {
        frame.release();
        return;
      }
      if (kind == Envelope.BodyCase.MANIFEST_CREDIT) {
        // not queued behind changes: credit lets the manifest go on while they are applied
        manifests.credit(frame.header().getManifestCredit());
        frame.release();
        return;
      }
      if (kind == Envelope.BodyCase.MANIFEST_REQUEST) {
        // not a barrier: the manifest thread waits for the changes received before it to be
        // applied, and walks while the lanes keep applying what follows
        boolean ok = manifests.submit(frame.header().getManifestRequest(), received.get());
        frame.release();
        if (!ok) {
          abort();
        }
        return;
      }
      if (kind == Envelope.BodyCase.RESYNC_START || kind == Envelope.BodyCase.RESYNC_DONE) {
        // resync control: handled in order with the changes around it
        long receivedBefore = received.get();
        try {
          applier.control(() -> {
            try {
              if (!discard && !control(frame, receivedBefore)) {
                abort();
              }
            } finally {
              frame.release();
            }
          });
        } catch (IOException e) {
          frame.release(); // the applier stopped: the session is ending
        }
        return;
      }
      if (kind == Envelope.BodyCase.COPY_MARK) {
        // at receipt, in stream order with the changes recorded at receipt
        unshared.marked(frame.header().getCopyMark());
        frame.release();
        return;
      }
      if (kind != Envelope.BodyCase.CHANGE) {
        frame.release();
        c.close(Goodbye.Code.PROTOCOL_ERROR, "a primary does not send " + kind);
        abort();
        return;
      }
      io.replicator.proto.Change proto = frame.header().getChange();
      long seq = proto.getSeq();
      if (seq <= received.get()) {
        frame.release();
        c.close(Goodbye.Code.PROTOCOL_ERROR, "change " + seq + " after change " + received.get());
        abort();
        return;
      }
      FileChange change;
      try {
        change = ChangeProtos.fromProto(proto, frame.payload().nioBuffer());
      } catch (MalformedChangeException e) {
        frame.release();
        log.warn("rejecting primary {}: {}", connection.remoteNodeId(), e.getMessage());
        c.close(Goodbye.Code.PROTOCOL_ERROR, e.getMessage());
        abort();
        return;
      }
      received.set(seq);
      unshared.received(change);
      try {
        if (!applier.offer(seq, change, frame::release, true) && !paused) {
          paused = true;
          c.setAutoRead(false);
        }
      } catch (OutOfSequenceException e) {
        log.warn("rejecting primary {}: {}", connection.remoteNodeId(), e.getMessage());
        c.close(Goodbye.Code.PROTOCOL_ERROR, e.getMessage());
        abort();
        return;
      } catch (IOException e) {
        // the applier stopped after a failure it has already reported
        return;
      }
      if (ackOnReceipt) {
        scheduleAck();
      }
    }

    @Override
    public void onClosed(PeerConnection c, String reason) {
      log.info("primary {} disconnected: {}", c.remoteNodeId(), reason);
      // what was received may already be acknowledged as received (MEMORY mode): apply it all
      ended.set(true);
      finish();
    }

    @Override
    public void onApplied(long appliedSeq) {
      scheduleAck();
    }

    @Override
    public void onAppliedAhead() {
      scheduleAck();
    }

    @Override
    public void onRoom() {
      connection.eventLoop().execute(() -> {
        if (paused) {
          paused = false;
          connection.setAutoRead(true);
        }
      });
    }

    @Override
    public void onFailure(long seq, IOException cause) {
      Goodbye.Code code = cause instanceof PathRefusedException ? Goodbye.Code.BAD_PATH : Goodbye.Code.APPLY_FAILED;
      String why = cause instanceof PathRefusedException ? cause.getMessage() : cause.toString();
      if (cause instanceof PathRefusedException) {
        // the peer's fault, refused: one warning, as for any bad input
        log.warn("change {} from {} refused: {}", seq, connection.remoteNodeId(), why);
      } else {
        log.error("change {} from {} failed: {}", seq, connection.remoteNodeId(), why);
      }
      connection.close(code, "change " + seq + " failed on the replica: " + why);
      abort();
    }

    private void scheduleAck() {
      if (ackScheduled.compareAndSet(false, true)) {
        try {
          connection.eventLoop().execute(this::sendAck);
        } catch (java.util.concurrent.RejectedExecutionException e) {
          // the I/O thread is gone, and the connection with it
        }
      }
    }

    /**
     * Runs on the I/O thread after the current read burst: one acknowledgement for all of it,
     * cumulative, plus the ranges of changes applied ahead of an earlier one.
     */
    private void sendAck() {
      ackScheduled.set(false);
      ChangeApplier.Acknowledgement now = applier.takeAcknowledgement(MAX_ACK_RANGES);
      long r = received.get();
      long a = Math.min(now.appliedSeq(), r);
      long[] ranges = now.appliedRanges();
      if (ranges.length == 0 && a == ackedApplied && (r == ackedReceived || !ackOnReceipt)) {
        return; // nothing new (receipt alone is nothing a SYNC or ASYNC primary waits for)
      }
      ackedReceived = r;
      ackedApplied = a;
      Ack.Builder ack = Ack.newBuilder().setReceivedSeq(r).setAppliedSeq(a);
      for (long bound : ranges) {
        ack.addAppliedRanges(bound);
      }
      connection.send(Frame.of(Envelope.newBuilder().setAck(ack).build()));
      if (now.more()) {
        scheduleAck();
      }
    }

    /** Handles a resync control message once every change before it is applied. */
    private boolean control(Frame frame, long receivedBefore) {
      Envelope header = frame.header();
      try {
        if (applier.failure() != null) {
          return false;
        }
        switch (header.getBodyCase()) {
          case RESYNC_START -> {
            syncState.resyncStarted(header.getResyncStart());
            applier.resyncTarget(true);
          }
          case RESYNC_DONE -> {
            // The primary numbers changes across connections: what it numbered before this one
            // (its last_seq may be far ahead) is covered by the resync itself. What must hold is
            // that every change that came on this connection before the message is applied (the
            // control step runs after exactly those).
            long expected = Math.min(header.getResyncDone().getLastSeq(), receivedBefore);
            if (applier.appliedSeq() < expected) {
              connection.close(Goodbye.Code.PROTOCOL_ERROR, "resync done at change "
                  + header.getResyncDone().getLastSeq() + " but only " + applier.appliedSeq() + " of "
                  + expected + " received applied");
              return false;
            }
            currentFaults.beforeResyncEnd();
            if (ResyncFlush.deferrable()) {
              // consistent now, with this boot recorded until the resync's data is on the disk
              applier.resyncTarget(false);
              syncState.resyncDone(GenerationIds.fromProto(header.getResyncDone().getGenerations()), false);
              resyncFlush.start(syncState.resyncsStarted());
            } else {
              // no boot id to tell a restarted machine by: the data on disk before the copy is consistent
              try {
                applier.makeAppliedDurable();
              } catch (IOException e) {
                syncState.flushFailed(e);
                throw e;
              }
              applier.resyncTarget(false);
              syncState.resyncDone(GenerationIds.fromProto(header.getResyncDone().getGenerations()), true);
            }
          }
          default -> throw new IllegalStateException("not a control message: " + header.getBodyCase());
        }
        return true;
      } catch (IOException e) {
        log.error("resync step {} failed on the replica: {}", header.getBodyCase(), e.toString());
        connection.close(Goodbye.Code.APPLY_FAILED, header.getBodyCase() + " failed on the replica: " + e);
        return false;
      }
    }

    /** Sends a frame from an apply thread, waiting while the connection's buffer is full. */
    private void sendBlocking(Envelope envelope) throws IOException {
      long deadline = System.nanoTime() + DRAIN_TIMEOUT.toNanos();
      synchronized (writable) {
        while (!connection.isWritable() && connection.isActive()) {
          if (System.nanoTime() > deadline) {
            throw new IOException("primary stopped reading the manifest");
          }
          try {
            writable.wait(50);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while sending the manifest");
          }
        }
      }
      if (!connection.isActive()) {
        throw new IOException("connection closed while sending the manifest");
      }
      connection.send(Frame.of(envelope));
    }

    @Override
    public void onWritabilityChanged(PeerConnection c, boolean isWritable) {
      synchronized (writable) {
        writable.notifyAll();
      }
    }

    /** Drops everything queued and stops: after a failure, a protocol error, or shutdown. */
    void abort() {
      discard = true;
      ended.set(true);
      finish();
    }

    /**
     * Winds the session down on its own thread (never an I/O or apply thread, which the applier's
     * close waits for): what was received is applied unless discarding, then the applier closes.
     */
    private void finish() {
      if (!finishing.compareAndSet(false, true)) {
        return;
      }
      Thread t = new Thread(() -> {
        try {
          if (!discard && !applier.awaitIdle(DRAIN_TIMEOUT)) {
            log.warn("changes from {} still unapplied after {} s; dropping them", connection.remoteNodeId(),
                DRAIN_TIMEOUT.toSeconds());
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        } finally {
          manifests.close();
          applier.close();
          lastSeenSeq = received.get();
          lastAppliedSeq = applier.appliedSeq();
          unfinishedSessions.decrementAndGet();
          stopped.complete(null);
        }
      }, "replica-finish-" + connection.remoteNodeId());
      t.setDaemon(true);
      t.start();
    }
  }
}
