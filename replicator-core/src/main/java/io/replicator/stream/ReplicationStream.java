package io.replicator.stream;

import io.netty.buffer.ByteBuf;
import io.replicator.NodeState;
import io.replicator.PeerLossPolicy;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.SplitBrainPolicy;
import io.replicator.change.FileChange;
import io.replicator.fs.ChangeSink;
import io.replicator.fs.LocalTree;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.transport.Frame;
import io.replicator.transport.PeerConnection;
import io.replicator.transport.PeerListener;
import io.replicator.transport.TransportClient;
import io.replicator.transport.TransportSettings;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The primary's ordered stream of changes to its replica, as the file system sees it: each change
 * is checked against the peer-loss policy, numbered and sent without waiting, and completed when
 * the replica's acknowledgement covers it (applied for SYNC and forces, received for MEMORY, at
 * once for ASYNC).
 *
 * <h2>Parts</h2>
 * <ul>
 *   <li>{@link SendWindow}: sequence numbers, the in-flight window, acknowledgements into
 *       completions (on the connection's I/O thread, without the writers' lock);
 *   <li>{@link PeerLink}: connecting, reconnecting and the decision on each connection, on one
 *       control thread;
 *   <li>{@link ResyncCoordinator}: resync and verify, which reach the rest only through {@link
 *       ResyncLink};
 *   <li>{@link PrimaryTracking}: generations, the dirty bitmap and the activity log;
 *   <li>{@link FollowerSpill}: an ASYNC follower's changes queued on disk while its window is full.
 * </ul>
 *
 * <h2>Peer loss</h2>
 * When the connection drops, every change still in flight is covered by a durable "peer out of
 * date" mark before its writer is released; a change made while disconnected is covered by the
 * mark before the local change is made ({@link #beforeLocalChange}). Under {@link
 * PeerLossPolicy#CONTINUE} writes then go on alone; under {@link PeerLossPolicy#BLOCK} they wait up
 * to a timeout for the peer and fail after it. {@link #status()} never reports in sync while the
 * mark is set.
 *
 * <h2>Order</h2>
 * The file system calls {@link #submit} under its per-file lock, and the window numbers and sends
 * in one step, so changes to one file are numbered and sent in the order they took effect.
 * Waiting for acknowledgements happens outside every lock.
 */
public final class ReplicationStream implements ChangeSink, PeerListener {
  private static final Logger log = LoggerFactory.getLogger(ReplicationStream.class);

  private final StreamSettings settings;
  private final TransportClient client;
  private final PrimaryTracking tracking;
  private final ScheduledExecutorService control;
  private final CompletableFuture<LocalTree> tree = new CompletableFuture<>();
  private final ResyncBudget resyncBudget;
  private final SendWindow window;
  private final ResyncCoordinator resyncs;
  private final PeerLink link;
  /** An ASYNC follower's spill, or null; set by {@link #open} before the stream is shared. */
  private FollowerSpill spill;

  // set by whoever owns the role decision (the local agent); read without a lock on the hot path
  private volatile boolean aloneAllowed = true;
  private volatile String suspendedReason;
  private volatile boolean closed;
  private volatile java.util.function.Consumer<Boolean> onClose;
  /** When {@link #drain} ran before close, its deadline (System.nanoTime), else 0. */
  private volatile long drainDeadline;

  private ReplicationStream(StreamSettings settings, TransportClient client, PrimaryTracking tracking,
      SplitBrainPolicy splitBrainPolicy) {
    this.settings = settings;
    this.client = client;
    this.tracking = tracking;
    this.control = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "replicator-stream-" + settings.peer());
      t.setDaemon(true);
      return t;
    });
    this.resyncBudget = new ResyncBudget(settings.windowBytes());
    this.window = new SendWindow(settings.mode(), settings.windowBytes(), settings.windowChanges(),
        resyncBudget::applicationLatency, settings.follower() && settings.mode() == ReplicationMode.ASYNC);
    this.resyncs = new ResyncCoordinator(new Link(), settings.resyncBytesPerSecond());
    this.link = new PeerLink(settings, client, tracking, splitBrainPolicy, window, resyncs, control, this,
        this::blocksOnPeerLoss);
  }

  /**
   * Opens the stream: reads the metadata, connects (waiting up to the connect timeout), and keeps
   * reconnecting in the background when the peer is not there.
   *
   * @param rootHasData whether the primary's tree already holds files; with no metadata yet, the
   *     peer cannot be assumed to hold them and is marked out of date
   */
  public static ReplicationStream open(StreamSettings settings, TransportSettings transport,
      java.nio.file.Path metadataDirectory, boolean rootHasData, SplitBrainPolicy splitBrainPolicy,
      TrackingSettings trackingSettings) throws IOException {
    PrimaryTracking tracking = PrimaryTracking.open(metadataDirectory, transport.nodeId(), rootHasData,
        trackingSettings);
    ReplicationStream stream = new ReplicationStream(settings, new TransportClient(transport), tracking,
        splitBrainPolicy);
    try {
      if (settings.spills()) {
        stream.spill = FollowerSpill.open(settings.peer().toString(), metadataDirectory.resolve(SPILL_DIRECTORY),
            settings.followerSpillBytes(), stream.window, tracking, stream.resyncs, stream.control);
      }
      stream.control.scheduleWithFixedDelay(stream::flushBitmap, 1, 1, TimeUnit.SECONDS);
      long every = Math.max(50, settings.ackTimeout().toMillis() / 10);
      stream.control.scheduleWithFixedDelay(stream.link::checkAcknowledgements, every, every,
          TimeUnit.MILLISECONDS);
      stream.link.connectFirst();
    } catch (IOException | RuntimeException e) {
      stream.shutdown();
      tracking.close();
      throw e;
    }
    return stream;
  }

  /** Where an ASYNC follower's spill lives, under the follower's metadata directory. */
  static final String SPILL_DIRECTORY = "spill";

  /** Hands over the primary's own tree once the file system exists; resync reads through it. */
  public void attach(LocalTree localTree) {
    tree.complete(localTree);
  }

  /**
   * Waits (bounded) until the stream is live on a connection or its first attempt settled
   * without one, so a freshly opened file system does not report a connection still being set up.
   */
  public void awaitLive(java.time.Duration timeout) {
    link.awaitLive(timeout);
  }

  LocalTree awaitTree() throws InterruptedException {
    try {
      return tree.get();
    } catch (ExecutionException e) {
      throw new IllegalStateException(e);
    }
  }

  private void flushBitmap() {
    try {
      tracking.flushBitmap();
    } catch (IOException e) {
      log.error("cannot save the dirty bitmap: {}", e.toString());
    }
  }

  // ---------------------------------------------------------------- ChangeSink

  @Override
  public void beforeLocalChange(FileChange change) throws IOException {
    if (suspendedReason != null || (link.live() == null && blocksOnPeerLoss())) {
      awaitWritable();
    }
    PeerConnection live = link.live();
    tracking.beforeLocalChange(change, live != null);
    PeerConnection now = link.live();
    if (live == null && now != null) {
      // the peer came back while this change was being marked as one it misses
      link.dropIfBehind(now);
    }
  }

  @Override
  public Completion submit(FileChange change) throws IOException {
    if (change instanceof FileChange.Write w && w.length() > TransportSettings.MAX_PAYLOAD) {
      return submitSplit(w);
    }
    return submitOne(change, null, null);
  }

  private Completion submitSplit(FileChange.Write w) throws IOException {
    ByteBuffer data = w.data().duplicate();
    Completion last = Completion.DONE;
    long position = w.position();
    while (data.hasRemaining()) {
      int n = Math.min(data.remaining(), TransportSettings.MAX_PAYLOAD);
      ByteBuffer chunk = data.slice();
      chunk.limit(n);
      // acknowledgements of the chunks complete them in order on one file: waiting for the last
      // chunk waits for all of them
      last = submitOne(new FileChange.Write(w.path(), position, chunk), null, null);
      position += n;
      data.position(data.position() + n);
    }
    return last;
  }

  /**
   * Numbers and sends a change; from resync ({@code resyncConnection} set) only on that
   * connection, with {@code onApplied} run once the peer applied it, and null when it is gone.
   */
  private Completion submitOne(FileChange change, Runnable onApplied, PeerConnection resyncConnection)
      throws IOException {
    boolean fromResync = resyncConnection != null;
    SendWindow.Pending pending;
    if (spill != null && !fromResync) {
      pending = spill.submit(change);
      if (pending == FollowerSpill.SPILLED) {
        return Completion.DONE; // an ASYNC follower: nothing waits for it
      }
    } else {
      // the copy is made before the window's lock, and only when there is a link to send on
      ByteBuf payload = change.payloadLength() > 0 && window.connection() != null ? SendWindow.copy(change) : null;
      pending = window.send(change, payload, onApplied, resyncConnection);
    }
    if (pending == null) {
      if (fromResync) {
        return null;
      }
      // the link dropped after beforeLocalChange let this change through
      tracking.startAlone("changes were made while the peer was disconnected");
      tracking.mark(change);
      if (blocksOnPeerLoss()) {
        throw new IOException("peer " + settings.peer() + " was lost; this change is made locally and "
            + "recorded as not replicated");
      }
      return Completion.DONE;
    }
    if (!fromResync) {
      // a verify compares in order with every change; a rename or delete during resync may move
      // data the resync has not reached yet
      resyncs.touched(pending.seq, change);
    }
    // an ASYNC follower's forces do not wait either: a copy in another site must not slow the pair
    if (settings.mode() == ReplicationMode.ASYNC && (!pending.force || settings.follower()) && !fromResync) {
      return Completion.DONE;
    }
    return () -> await(pending);
  }

  private static void await(SendWindow.Pending pending) throws IOException {
    try {
      pending.done.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      // the change stays in flight: it will be acknowledged or covered by the out-of-date mark
      throw new ClosedByInterruptException();
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw new IOException(io.getMessage(), io);
      }
      throw new IOException(cause);
    }
  }

  // ---------------------------------------------------------------- write gate

  /**
   * Lets the agent that owns the role decision gate writes: {@code aloneAllowed} false makes writes
   * wait for the peer as under {@link PeerLossPolicy#BLOCK} (no quorum to write alone); a
   * non-null {@code suspendedReason} makes every write wait (fenced), up to the block timeout.
   */
  public void gate(boolean aloneAllowed, String suspendedReason) {
    boolean changed = this.aloneAllowed != aloneAllowed
        || !java.util.Objects.equals(this.suspendedReason, suspendedReason);
    this.aloneAllowed = aloneAllowed;
    this.suspendedReason = suspendedReason;
    link.signal();
    if (changed) {
      log.info("writes {}{}", suspendedReason != null ? "suspended: " + suspendedReason : "allowed",
          suspendedReason == null && !aloneAllowed ? " while the peer is connected" : "");
    }
  }

  private boolean blocksOnPeerLoss() {
    return settings.peerLossPolicy() == PeerLossPolicy.BLOCK || !aloneAllowed;
  }

  private boolean writable() {
    return closed || (suspendedReason == null && (link.live() != null || !blocksOnPeerLoss()));
  }

  private void awaitWritable() throws IOException {
    boolean ready;
    try {
      ready = link.await(this::writable, System.nanoTime() + settings.blockTimeout().toNanos());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for peer " + settings.peer());
    }
    if (closed) {
      throw new IOException("replicated file system is closed");
    }
    if (!ready) {
      String why = suspendedReason;
      if (why != null) {
        throw new IOException("writes are suspended (" + why + ") and were not resumed within "
            + settings.blockTimeout().toMillis() + " ms; change refused");
      }
      throw new IOException("peer " + settings.peer() + " has not been connected for "
          + settings.blockTimeout().toMillis() + " ms; change refused ("
          + (aloneAllowed ? "peer-loss policy BLOCK" : "no quorum to write alone") + ")");
    }
  }

  // ---------------------------------------------------------------- PeerListener

  @Override
  public void onFrame(PeerConnection c, Frame frame) {
    try {
      Envelope header = frame.header();
      if (header.getBodyCase() == Envelope.BodyCase.ACK) {
        String problem = window.onAck(c, header.getAck());
        if (problem != null) {
          c.close(Goodbye.Code.PROTOCOL_ERROR, problem);
        }
      } else if (header.getBodyCase() == Envelope.BodyCase.MANIFEST_BATCH
          || header.getBodyCase() == Envelope.BodyCase.MANIFEST_END) {
        if (!resyncs.onManifestFrame(c, header)) {
          c.close(Goodbye.Code.PROTOCOL_ERROR, "manifest data that nobody asked for");
        }
      } else {
        c.close(Goodbye.Code.PROTOCOL_ERROR, "a replica does not send " + header.getBodyCase());
      }
    } finally {
      frame.release();
    }
  }

  @Override
  public void onClosed(PeerConnection c, String reason) {
    // leave the I/O thread: the out-of-date mark is written with an fsync
    link.onClosed(c, reason);
    FollowerSpill s = spill;
    if (s != null) {
      try {
        // queued after the loss's own handling, and before any reconnect is decided
        control.execute(() -> s.linkLost(c));
      } catch (java.util.concurrent.RejectedExecutionException e) {
        // closing: close() marks what is still spilled
      }
    }
  }

  @Override
  public void onWritabilityChanged(PeerConnection c, boolean writable) {
    // the byte window bounds what we queue; nothing more to do here
  }

  // ---------------------------------------------------------------- resync and verify

  @Override
  public io.replicator.VerifyReport verify() throws IOException {
    return resyncs.verify();
  }

  @Override
  public void resync() throws IOException {
    resyncs.resync();
  }

  ReplicationMode mode() {
    return settings.mode();
  }

  // ---------------------------------------------------------------- copy marks (ReplicaStreams)

  /** Where a copy mark went in this stream: behind change {@code seq} on {@code connection}. */
  record MarkSent(PeerConnection connection, long seq) {}

  /**
   * Sends a copy mark behind every change numbered so far (the caller keeps new changes out while
   * it does); null when there is no live connection or changes are spilled ahead of it.
   */
  MarkSent sendMark(Envelope mark) {
    PeerConnection c = link.live();
    if (c == null || closed) {
      return null;
    }
    FollowerSpill s = spill;
    long seq = s != null ? s.sendWhenNothingSpilled(c, mark) : window.sendBehindNumbered(c, mark);
    return seq < 0 ? null : new MarkSent(c, seq);
  }

  /**
   * Whether the copy on {@code c} holds every change this stream numbered up to its applied
   * acknowledgement: live on {@code c}, no resync running, nothing marked as missed.
   */
  boolean inSyncOn(PeerConnection c) {
    return !closed && c != null && link.live() == c && c.isActive() && !resyncs.running()
        && !tracking.peerOutOfDate();
  }

  long appliedSeq() {
    return window.appliedSeq();
  }

  PeerConnection live() {
    return link.live();
  }

  /** Waits, up to the drain timeout, for what was sent to be acknowledged (as {@link #close} does first). */
  void drain() {
    drainDeadline = System.nanoTime() + settings.drainTimeout().toNanos();
    drainUntil(drainDeadline);
  }

  private void drainUntil(long deadlineNanos) {
    if (spill != null) {
      spill.awaitDrained(deadlineNanos);
    }
    window.drain(Math.max(0, deadlineNanos - System.nanoTime()));
  }

  /**
   * Before a follower's stream opens in {@code dir} on a node that was the secondary: the
   * follower held {@code heldGeneration} and may lack {@code blocks} (the secondary's record of
   * mark epoch {@code epoch}); its next connection resyncs incrementally when its own report of
   * that epoch joins them, and by checksum otherwise.
   */
  public static void continueFollower(java.nio.file.Path dir, String nodeId, long epoch, long heldGeneration,
      io.replicator.meta.DirtyBitmap blocks) throws IOException {
    PrimaryTracking.continueFrom(dir, nodeId, epoch, heldGeneration, blocks);
  }

  /** The generation a copy in sync holds. */
  long generation() {
    return tracking.generations().current();
  }

  // ---------------------------------------------------------------- status and close

  @Override
  public ReplicationStatus status() {
    PeerConnection connection = window.connection();
    boolean resyncing = resyncs.running();
    boolean outOfDate = tracking.peerOutOfDate();
    NodeState state;
    if (closed) {
      state = NodeState.STOPPED;
    } else if (resyncing && connection != null) {
      state = NodeState.SYNC_SOURCE;
    } else if (suspendedReason != null) {
      state = NodeState.WAIT;
    } else if (connection == null) {
      state = blocksOnPeerLoss() ? NodeState.WAIT : NodeState.ALONE;
    } else {
      state = outOfDate ? NodeState.ALONE : NodeState.PRIMARY;
    }
    String lost = link.lossReason();
    String problem = link.problem();
    // while disconnected, why the link went down (the peer could not apply a change, its disk is
    // full) is what the operator needs next to what is left to resync
    String why = suspendedReason != null ? "writes suspended: " + suspendedReason
        : problem != null ? problem
        : !outOfDate ? null
        : connection == null && lost != null ? tracking.outOfDateReason() + "; peer lost: " + lost
        : tracking.outOfDateReason();
    long inFlight = window.inFlightChanges();
    long inFlightBytes = window.inFlightBytes();
    long spilled = spilledChanges();
    if (spilled > 0) {
      // a spilled change is not acknowledged either: the follower is not in sync while any is left
      long spilledBytes = spilledBytes();
      inFlight += spilled;
      inFlightBytes += spilledBytes;
      String backlog = spilled + " change(s), " + spilledBytes + " bytes spilled on this node's disk, waiting for "
          + "room on the link";
      why = why == null ? backlog : why + "; " + backlog;
    }
    return new ReplicationStatus(state, settings.mode(),
        Optional.of(connection != null ? connection.remoteNodeId() + "@" + connection.remoteAddress()
            : settings.peer().getHostString() + ":" + settings.peer().getPort()),
        connection != null, outOfDate, Optional.ofNullable(why),
        tracking.generations().current(), tracking.bitmap().dirtyBytes(), window.lastSeq(), window.appliedSeq(),
        inFlight, inFlightBytes, resyncs.progress(), resyncs.verifyProgress());
  }

  /** Bytes (records on disk) of an ASYNC follower's changes spilled and not yet sent; 0 without a spill. */
  public long spilledBytes() {
    FollowerSpill s = spill;
    return s == null ? 0 : s.bytes();
  }

  /** An ASYNC follower's changes spilled and not yet sent; 0 without a spill. */
  public long spilledChanges() {
    FollowerSpill s = spill;
    return s == null ? 0 : s.changes();
  }

  /** Waits for the in-flight changes to be acknowledged (bounded), then says goodbye and stops. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    // one drain timeout in all: when drain() ran first (a hand-over's last marks), its deadline stands
    drainUntil(drainDeadline != 0 ? drainDeadline : System.nanoTime() + settings.drainTimeout().toNanos());
    closed = true;
    link.close();
    PeerConnection[] connection = new PeerConnection[1];
    List<SendWindow.Pending> left = window.close(connection);
    PeerConnection c = connection[0];
    if (c != null) {
      c.close(Goodbye.Code.SHUTDOWN, "primary closing");
    }
    shutdown();
    long spilledLeft = 0;
    if (spill != null) {
      try {
        spilledLeft = spill.close();
      } catch (IOException e) {
        log.error("cannot mark the follower's spilled changes: {}", e.toString());
        spilledLeft = 1; // the activity log still covers them: never report a clean hand-over
      }
    }
    if (!left.isEmpty()) {
      tracking.startAlone("closed with " + left.size() + " change(s) unacknowledged");
      for (SendWindow.Pending p : left) {
        p.markLost(tracking);
      }
      PeerLink.failAll(left, new IOException("replicated file system closed before the peer acknowledged"));
    }
    boolean peerHasEverything = left.isEmpty() && spilledLeft == 0 && c != null && !resyncs.running() && !tracking.peerOutOfDate();
    tracking.close(peerHasEverything);
    java.util.function.Consumer<Boolean> hook = onClose;
    if (hook != null) {
      hook.accept(peerHasEverything);
    }
  }

  /** Runs {@code hook} after close, with whether the peer had everything (a clean hand-over). */
  public void onClose(java.util.function.Consumer<Boolean> hook) {
    this.onClose = hook;
  }

  private void shutdown() {
    control.shutdownNow();
    client.close();
    try {
      control.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The stream as resync and verify see it. */
  private final class Link implements ResyncLink {
    @Override
    public LocalTree awaitTree() throws InterruptedException {
      return ReplicationStream.this.awaitTree();
    }

    @Override
    public PrimaryTracking tracking() {
      return tracking;
    }

    @Override
    public PeerConnection liveConnection() {
      return link.live();
    }

    @Override
    public String problem() {
      return link.problem();
    }

    @Override
    public void goLive(PeerConnection c) {
      link.goLive(c);
    }

    @Override
    public void sendControl(PeerConnection c, Envelope message) {
      window.sendControl(c, message);
    }

    @Override
    public Completion submitResync(PeerConnection c, FileChange change, Runnable onApplied) throws IOException {
      return submitOne(change, onApplied, c);
    }

    @Override
    public void awaitResyncRoom(long bytes) throws InterruptedException {
      resyncBudget.adjust(System.nanoTime());
      window.awaitRoom(bytes, resyncBudget.bytes());
    }

    @Override
    public void resyncRunning(boolean running) {
      resyncBudget.resyncRunning(running);
    }

    @Override
    public long lastSeq() {
      return window.lastSeq();
    }

    @Override
    public void settleFirstAttempt() {
      link.settleFirstAttempt();
    }

    @Override
    public void reachedSync() {
      link.reachedSync();
    }

    @Override
    public boolean whileLive(PeerConnection c, ResyncLink.LinkAction action) throws IOException {
      return link.whileLive(c, action);
    }
  }
}
