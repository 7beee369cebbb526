package io.replicator.stream;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.replicator.NodeState;
import io.replicator.PeerLossPolicy;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.fs.ChangeSink;
import io.replicator.fs.LocalTree;
import io.replicator.meta.GenerationIds;
import io.replicator.SplitBrainPolicy;
import io.replicator.meta.SyncDecision;
import io.replicator.proto.Ack;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.ResyncDone;
import io.replicator.transport.Frame;
import io.replicator.transport.PeerConnection;
import io.replicator.transport.PeerListener;
import io.replicator.transport.PeerRefusedException;
import io.replicator.transport.TransportClient;
import io.replicator.transport.TransportSettings;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The primary's ordered stream of changes to its replica: it numbers each change, sends it without
 * waiting, keeps it in a bounded in-flight window, and completes it when the replica's cumulative
 * acknowledgement covers it (applied for SYNC and forces, received for MEMORY, at once for ASYNC).
 *
 * <h2>Peer loss</h2>
 * When the connection drops, every change still in flight is covered by a durable "peer out of
 * date" mark before its writer is released; a change made while disconnected is covered by the
 * mark before the local change is made ({@link #beforeLocalChange}). Under {@link
 * PeerLossPolicy#CONTINUE} writes then go on alone; under {@link PeerLossPolicy#BLOCK} they wait up
 * to a timeout for the peer and fail after it. The stream reconnects with exponential backoff, and
 * {@link #status()} never reports in sync while the mark is set.
 *
 * <h2>Order</h2>
 * Numbering and sending happen under one lock, so frames leave in sequence order; the file system
 * calls {@link #submit} under its per-file lock, so changes to one file are numbered in the order
 * they took effect. Waiting for acknowledgements happens outside both locks.
 */
public final class ReplicationStream implements ChangeSink, PeerListener {
  private static final Logger log = LoggerFactory.getLogger(ReplicationStream.class);

  private final StreamSettings settings;
  private final TransportClient client;
  private final PrimaryTracking tracking;
  private final SplitBrainPolicy splitBrainPolicy;
  private final ScheduledExecutorService control;
  private final CompletableFuture<LocalTree> tree = new CompletableFuture<>();
  private final ResyncBudget resyncBudget;

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition windowFree = lock.newCondition();
  private final Condition connectedCondition = lock.newCondition();
  // set by whoever owns the role decision (the local agent); read without the lock on the hot path
  private volatile boolean aloneAllowed = true;
  private volatile String suspendedReason;
  // all guarded by lock
  private PeerConnection connection;
  private long lastSeq;
  private long receivedSeq;
  private long appliedSeq;
  private long inFlightBytes;
  private final ArrayDeque<Pending> inFlight = new ArrayDeque<>();
  private final ArrayDeque<Pending> awaitingReceipt = new ArrayDeque<>();
  private boolean closed;
  private long reconnectDelayNanos;

  private volatile PeerConnection liveConnection;
  /** The first connection attempt ended without going live (unreachable, refused, resync failed). */
  private volatile boolean firstAttemptSettled;
  /** Why the last connection was refused (split brain, peer newer, unrelated), or null. */
  private volatile String problem;
  /** Why the last live connection was lost (the peer's goodbye: a full disk, say), or null. */
  private volatile String lossReason;
  /** The resync in progress, or null. */
  private volatile ResyncSource resync;
  /** Where manifest entries from the peer go (the running resync or verify), or null. */
  private volatile ManifestChannel manifestChannel;

  /** One change (or the last chunk of a split write) waiting for its acknowledgement. */
  private static final class Pending {
    final long seq;
    final int bytes;
    final boolean force;
    final CompletableFuture<Void> done = new CompletableFuture<>();
    final long sentNanos = System.nanoTime();
    /** What to mark in the bitmap should the peer never acknowledge it (a Write without its data). */
    final FileChange lost;
    final long writePosition;
    /** Runs once the peer applied the change (resync clears its bits here); may be null. */
    final Runnable onApplied;

    Pending(long seq, int bytes, boolean force, FileChange change, Runnable onApplied) {
      this.seq = seq;
      this.bytes = bytes;
      this.force = force;
      this.lost = change instanceof FileChange.Write w ? null : change;
      this.writePosition = change instanceof FileChange.Write w ? w.position() : -1;
      this.path = change.path();
      this.onApplied = onApplied;
    }

    final String path;

    void markLost(PrimaryTracking tracking) {
      if (lost != null) {
        tracking.mark(lost);
      } else if (writePosition >= 0) {
        tracking.bitmap().markWrite(path, writePosition, bytes);
      }
    }
  }

  private ReplicationStream(StreamSettings settings, TransportClient client, PrimaryTracking tracking,
      SplitBrainPolicy splitBrainPolicy) {
    this.settings = settings;
    this.client = client;
    this.tracking = tracking;
    this.splitBrainPolicy = splitBrainPolicy;
    this.control = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "replicator-stream-" + settings.peer());
      t.setDaemon(true);
      return t;
    });
    this.reconnectDelayNanos = settings.reconnectMin().toNanos();
    this.resyncBudget = new ResyncBudget(settings.windowBytes());
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
      stream.control.scheduleWithFixedDelay(stream::flushBitmap, 1, 1, TimeUnit.SECONDS);
      long every = Math.max(50, settings.ackTimeout().toMillis() / 10);
      stream.control.scheduleWithFixedDelay(stream::checkAcknowledgements, every, every, TimeUnit.MILLISECONDS);
      stream.connectFirst();
    } catch (RuntimeException e) {
      stream.shutdown();
      tracking.close();
      throw e;
    }
    return stream;
  }

  /** Hands over the primary's own tree once the file system exists; resync reads through it. */
  public void attach(LocalTree localTree) {
    tree.complete(localTree);
  }

  /**
   * Waits (bounded) until the stream is live on a connection or its first attempt settled
   * without one, so a freshly opened file system does not report a connection still being set up.
   */
  public void awaitLive(java.time.Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      while (liveConnection == null && !firstAttemptSettled && !closed) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return;
        }
        connectedCondition.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      lock.unlock();
    }
  }

  /** The first attempt ended without going live; callers of {@link #awaitLive} stop waiting. */
  void settleFirstAttempt() {
    lock.lock();
    try {
      firstAttemptSettled = true;
      connectedCondition.signalAll();
    } finally {
      lock.unlock();
    }
  }

  LocalTree awaitTree() throws InterruptedException {
    try {
      return tree.get();
    } catch (ExecutionException e) {
      throw new IllegalStateException(e);
    }
  }

  PrimaryTracking tracking() {
    return tracking;
  }

  private void flushBitmap() {
    try {
      tracking.flushBitmap();
    } catch (IOException e) {
      log.error("cannot save the dirty bitmap: {}", e.toString());
    }
  }

  private void connectFirst() {
    CompletableFuture<PeerConnection> attempt = client.connect(settings.peer(),
        tracking.generations().toProto(), tracking.syncState(), this);
    try {
      onConnected(attempt.get(settings.connectTimeout().toNanos(), TimeUnit.NANOSECONDS));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      attempt.cancel(false);
      scheduleReconnect("interrupted while connecting");
    } catch (ExecutionException e) {
      logConnectFailure(e.getCause());
      settleFirstAttempt();
      scheduleReconnect(e.getCause().getMessage());
    } catch (TimeoutException e) {
      settleFirstAttempt();
      attempt.cancel(false);
      log.warn("peer {} did not answer within {} ms; going on alone and retrying",
          settings.peer(), settings.connectTimeout().toMillis());
      scheduleReconnect("connect timeout");
    }
  }

  // ---------------------------------------------------------------- ChangeSink

  @Override
  public void beforeLocalChange(FileChange change) throws IOException {
    if (suspendedReason != null || (liveConnection == null && blocksOnPeerLoss())) {
      awaitWritable();
    }
    PeerConnection live = liveConnection;
    tracking.beforeLocalChange(change, live != null);
    PeerConnection now = liveConnection;
    if (live == null && now != null) {
      // the peer came back while this change was being marked as one it misses
      behindOnLiveConnection(now);
    }
  }

  /**
   * A connection went live as in sync while a change was being marked as missed by the peer (the
   * two ran at the same time): the peer is behind on a link that believes otherwise. Dropping the
   * link makes the reconnect decide again, and that decision is an incremental resync.
   */
  private void behindOnLiveConnection(PeerConnection c) {
    if (tracking.peerOutOfDate() && resync == null) {
      log.info("peer {} came back while changes were marked for it; reconnecting to resync them", c.remoteNodeId());
      c.close(Goodbye.Code.UNSPECIFIED, "reconnecting to resync changes made while the link came up");
    }
  }

  @Override
  public Completion submit(FileChange change) throws IOException {
    if (change instanceof FileChange.Write w && w.length() > TransportSettings.MAX_PAYLOAD) {
      return submitSplit(w);
    }
    return submitOne(change);
  }

  private Completion submitSplit(FileChange.Write w) throws IOException {
    ByteBuffer data = w.data().duplicate();
    Completion last = Completion.DONE;
    long position = w.position();
    while (data.hasRemaining()) {
      int n = Math.min(data.remaining(), TransportSettings.MAX_PAYLOAD);
      ByteBuffer chunk = data.slice();
      chunk.limit(n);
      // acknowledgements are cumulative: waiting for the last chunk waits for all of them
      last = submitOne(new FileChange.Write(w.path(), position, chunk));
      position += n;
      data.position(data.position() + n);
    }
    return last;
  }

  private Completion submitOne(FileChange change) throws IOException {
    return submitOne(change, null, null);
  }

  /**
   * Numbers and sends a resync change on the live connection; {@code onApplied} runs when the
   * peer applied it. Returns null when the link is gone (the resync stops there).
   */
  Completion submitResync(PeerConnection expected, FileChange change, Runnable onApplied) throws IOException {
    return submitOne(change, onApplied, expected);
  }

  /** Waits until resync may add {@code bytes}: the in-flight bytes stay within the adaptive budget. */
  void awaitResyncRoom(long bytes) throws InterruptedException {
    resyncBudget.adjust(System.nanoTime());
    lock.lock();
    try {
      while (connection != null && !closed && !inFlight.isEmpty()
          && inFlightBytes + bytes > resyncBudget.bytes()) {
        windowFree.await();
      }
    } finally {
      lock.unlock();
    }
  }

  private Completion submitOne(FileChange change, Runnable onApplied, PeerConnection resyncConnection)
      throws IOException {
    boolean fromResync = resyncConnection != null;
    int bytes = change instanceof FileChange.Write w ? w.length() : 0;
    boolean force = change instanceof FileChange.Force;
    Pending pending;
    lock.lock();
    try {
      awaitWindow(bytes);
      PeerConnection c = connection;
      if (closed) {
        throw new IOException("replicated file system is closed");
      }
      if (fromResync && c != resyncConnection) {
        c = null; // the resync's link is gone: a newer connection runs its own resync
      }
      if (c == null) {
        pending = null;
      } else {
        long seq = ++lastSeq;
        ByteBuf payload = null;
        if (bytes > 0) {
          payload = PooledByteBufAllocator.DEFAULT.directBuffer(bytes, bytes);
          payload.writeBytes(((FileChange.Write) change).data().duplicate());
        }
        Envelope header = Envelope.newBuilder().setChange(ChangeProtos.toProto(seq, change)).build();
        pending = new Pending(seq, bytes, force, change, onApplied);
        inFlight.addLast(pending);
        inFlightBytes += bytes;
        if (settings.mode() == ReplicationMode.MEMORY && !force && onApplied == null) {
          awaitingReceipt.addLast(pending);
        }
        c.send(payload == null ? Frame.of(header) : new Frame(header, payload));
      }
    } finally {
      lock.unlock();
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
    ResyncSource r = resync;
    if (r != null && !fromResync && change.isNamespaceChange()) {
      // a rename or delete during resync may move data the resync has not reached yet
      r.touched(change);
    }
    if (settings.mode() == ReplicationMode.ASYNC && !force && !fromResync) {
      return Completion.DONE;
    }
    return () -> await(pending);
  }

  /** Waits, holding {@code lock}, until the window has room for {@code bytes} more. */
  private void awaitWindow(int bytes) throws IOException {
    boolean interrupted = false;
    try {
      while (connection != null && !closed && !inFlight.isEmpty()
          && (inFlight.size() >= settings.windowChanges() || inFlightBytes + bytes > settings.windowBytes())) {
        try {
          windowFree.await();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        // the change is already made locally: it must still be numbered and sent, so the
        // interrupt is kept for the wait on its acknowledgement
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Lets the agent that owns the role decision gate writes: {@code aloneAllowed} false makes writes
   * wait for the peer as under {@link PeerLossPolicy#BLOCK} (no quorum to write alone); a
   * non-null {@code suspendedReason} makes every write wait (fenced), up to the block timeout.
   */
  public void gate(boolean aloneAllowed, String suspendedReason) {
    lock.lock();
    try {
      boolean changed = this.aloneAllowed != aloneAllowed
          || !java.util.Objects.equals(this.suspendedReason, suspendedReason);
      this.aloneAllowed = aloneAllowed;
      this.suspendedReason = suspendedReason;
      connectedCondition.signalAll();
      if (changed) {
        log.info("writes {}{}", suspendedReason != null ? "suspended: " + suspendedReason : "allowed",
            suspendedReason == null && !aloneAllowed ? " while the peer is connected" : "");
      }
    } finally {
      lock.unlock();
    }
  }

  private boolean blocksOnPeerLoss() {
    return settings.peerLossPolicy() == PeerLossPolicy.BLOCK || !aloneAllowed;
  }

  private void awaitWritable() throws IOException {
    long deadline = System.nanoTime() + settings.blockTimeout().toNanos();
    lock.lock();
    try {
      while (!closed && (suspendedReason != null || (connection == null && blocksOnPeerLoss()))) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          String why = suspendedReason;
          if (why != null) {
            throw new IOException("writes are suspended (" + why + ") and were not resumed within "
                + settings.blockTimeout().toMillis() + " ms; change refused");
          }
          throw new IOException("peer " + settings.peer() + " has not been connected for "
              + settings.blockTimeout().toMillis() + " ms; change refused ("
              + (aloneAllowed ? "peer-loss policy BLOCK" : "no quorum to write alone") + ")");
        }
        try {
          connectedCondition.awaitNanos(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted while waiting for peer " + settings.peer());
        }
      }
      if (closed) {
        throw new IOException("replicated file system is closed");
      }
    } finally {
      lock.unlock();
    }
  }

  private static void await(Pending pending) throws IOException {
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

  // ---------------------------------------------------------------- PeerListener

  @Override
  public void onFrame(PeerConnection c, Frame frame) {
    try {
      Envelope header = frame.header();
      if (header.getBodyCase() == Envelope.BodyCase.ACK) {
        onAck(c, header.getAck());
      } else if (header.getBodyCase() == Envelope.BodyCase.MANIFEST_ENTRY
          || header.getBodyCase() == Envelope.BodyCase.MANIFEST_END) {
        ManifestChannel m = manifestChannel;
        if (m == null || !m.onFrame(c, header)) {
          c.close(Goodbye.Code.PROTOCOL_ERROR, "manifest data that nobody asked for");
        }
      } else {
        c.close(Goodbye.Code.PROTOCOL_ERROR, "a replica does not send " + header.getBodyCase());
      }
    } finally {
      frame.release();
    }
  }

  private void onAck(PeerConnection c, Ack ack) {
    List<Pending> done = new ArrayList<>();
    lock.lock();
    try {
      if (c != connection) {
        return;
      }
      if (ack.getAppliedSeq() > lastSeq || ack.getReceivedSeq() > lastSeq
          || ack.getAppliedSeq() > ack.getReceivedSeq()) {
        c.close(Goodbye.Code.PROTOCOL_ERROR, "acknowledgement " + ack.getReceivedSeq() + "/"
            + ack.getAppliedSeq() + " beyond the last change sent (" + lastSeq + ")");
        return;
      }
      receivedSeq = Math.max(receivedSeq, ack.getReceivedSeq());
      appliedSeq = Math.max(appliedSeq, ack.getAppliedSeq());
      while (!awaitingReceipt.isEmpty() && awaitingReceipt.peekFirst().seq <= receivedSeq) {
        done.add(awaitingReceipt.pollFirst());
      }
      while (!inFlight.isEmpty() && inFlight.peekFirst().seq <= appliedSeq) {
        Pending p = inFlight.pollFirst();
        inFlightBytes -= p.bytes;
        done.add(p);
      }
      if (!done.isEmpty()) {
        windowFree.signalAll();
      }
    } finally {
      lock.unlock();
    }
    long now = System.nanoTime();
    for (Pending p : done) {
      p.done.complete(null);
      if (p.onApplied != null && p.seq <= ack.getAppliedSeq()) {
        p.onApplied.run();
      } else if (p.onApplied == null) {
        resyncBudget.applicationLatency(now - p.sentNanos);
      }
    }
  }

  /**
   * The idea of DRBD's ko-count: heartbeats prove the link is alive, not that the peer is
   * applying. A peer whose disk hangs (or a middlebox that loses a frame) would otherwise hold
   * every SYNC write forever; past the acknowledgement timeout the link is dropped, the
   * unacknowledged changes are marked dirty, and the peer-loss policy decides what writes do.
   */
  private void checkAcknowledgements() {
    PeerConnection overdue;
    long seq;
    long ageMillis;
    lock.lock();
    try {
      Pending oldest = inFlight.peekFirst();
      if (connection == null || oldest == null
          || System.nanoTime() - oldest.sentNanos < settings.ackTimeout().toNanos()) {
        return;
      }
      overdue = connection;
      seq = oldest.seq;
      ageMillis = (System.nanoTime() - oldest.sentNanos) / 1_000_000;
    } finally {
      lock.unlock();
    }
    log.warn("peer {} has not acknowledged change {} for {} ms although the link is alive; dropping the link",
        overdue.remoteNodeId(), seq, ageMillis);
    overdue.close(Goodbye.Code.TIMEOUT, "change " + seq + " unacknowledged for " + ageMillis + " ms");
  }

  @Override
  public void onClosed(PeerConnection c, String reason) {
    // leave the event loop: the out-of-date mark is written with an fsync
    try {
      control.execute(() -> connectionLost(c, reason));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      connectionLost(c, reason); // closing: nothing more will be scheduled
    }
  }

  @Override
  public void onWritabilityChanged(PeerConnection c, boolean writable) {
    // the byte window bounds what we queue; nothing more to do here
  }

  private void connectionLost(PeerConnection c, String reason) {
    List<Pending> lost;
    lock.lock();
    try {
      if (c != connection) {
        return;
      }
      connection = null;
      liveConnection = null;
      lost = new ArrayList<>(inFlight);
      inFlight.clear();
      awaitingReceipt.clear();
      inFlightBytes = 0;
      windowFree.signalAll();
    } finally {
      lock.unlock();
    }
    if (closed) {
      failAll(lost, new IOException("replicated file system closed before peer acknowledged"));
      return;
    }
    lossReason = reason;
    log.warn("lost peer {} ({}); {} change(s) unacknowledged; {}", c.remoteNodeId(), reason, lost.size(),
        blocksOnPeerLoss() ? "writes wait for it" : "going on alone");
    ManifestChannel m = manifestChannel;
    if (m != null) {
      m.linkLost(reason);
    }
    if (!lost.isEmpty()) {
      // before any of these writers returns, the peer's lack of them must be durable
      try {
        tracking.startAlone("link lost with " + lost.size() + " change(s) unacknowledged: " + reason);
        for (Pending p : lost) {
          p.markLost(tracking);
        }
        tracking.flushBitmap();
      } catch (IOException e) {
        log.error("cannot record that peer is out of date", e);
        failAll(lost, new IOException("peer lost and its out-of-date mark could not be written", e));
        lost = List.of();
      }
    }
    if (blocksOnPeerLoss()) {
      failAll(lost, new IOException("peer " + settings.peer() + " was lost before acknowledging ("
          + reason + "); the change is made locally and recorded as not replicated"));
    } else {
      for (Pending p : lost) {
        p.done.complete(null);
      }
    }
    scheduleReconnect(reason);
  }

  private static void failAll(List<Pending> pendings, IOException e) {
    for (Pending p : pendings) {
      p.done.completeExceptionally(e);
    }
  }

  private void scheduleReconnect(String why) {
    long delay;
    lock.lock();
    try {
      if (closed) {
        return;
      }
      delay = reconnectDelayNanos;
      reconnectDelayNanos = Math.min(reconnectDelayNanos * 2, settings.reconnectMax().toNanos());
    } finally {
      lock.unlock();
    }
    long jittered = delay / 2 + ThreadLocalRandom.current().nextLong(delay / 2 + 1);
    log.debug("reconnecting to {} in {} ms ({})", settings.peer(), jittered / 1_000_000, why);
    control.schedule(this::reconnect, jittered, TimeUnit.NANOSECONDS);
  }

  private void reconnect() {
    if (closed) {
      return;
    }
    client.connect(settings.peer(), tracking.generations().toProto(), tracking.syncState(), this)
        .whenComplete((c, e) -> {
      if (e != null) {
        logConnectFailure(e);
        scheduleReconnect(e.getMessage());
      } else {
        onConnected(c);
      }
    });
  }

  private void logConnectFailure(Throwable e) {
    if (e instanceof PeerRefusedException) {
      // the peer's reason (split brain, newer data) is what the operator must see in status
      problem = e.getMessage();
      log.warn("{}", e.getMessage());
    } else {
      log.debug("cannot reach peer {}: {}", settings.peer(), e.getMessage());
    }
  }

  private void onConnected(PeerConnection c) {
    if (closed) {
      c.close(Goodbye.Code.SHUTDOWN, "closing");
      return;
    }
    io.replicator.proto.Hello peer = c.remoteHello();
    GenerationIds local = tracking.generations();
    GenerationIds remote = GenerationIds.fromProto(peer.getGenerations());
    SyncDecision d = SyncDecision.decide(
        new SyncDecision.Side(local, false, tracking.bitmap().dirtyBytes(), tracking.syncState().getPrimarySinceMillis()),
        new SyncDecision.Side(remote, peer.getSyncState().getDiscardLocal(), peer.getSyncState().getDirtyBytes(),
            peer.getSyncState().getPrimarySinceMillis()),
        splitBrainPolicy);
    log.info("connected to peer {} at {}: local {} / peer {} -> {}", c.remoteNodeId(), c.remoteAddress(), local,
        remote, d);
    if (peer.getSyncState().getDiscardLocal() && d != SyncDecision.FULL_LOCAL_SOURCE) {
      // the operator chose to discard the peer's data: whatever the ids say, overwrite it
      log.warn("peer {} discards its own data: full resync from this node", c.remoteNodeId());
      d = SyncDecision.FULL_LOCAL_SOURCE;
    }
    switch (d) {
      case IN_SYNC -> {
        if (tracking.peerNeedsFullResync() || peer.getSyncState().getInconsistent()) {
          startResync(c, true);
        } else if (tracking.peerOutOfDate()) {
          startResync(c, false);
        } else if (local.current() == 0) {
          // two fresh nodes, both empty: take a first generation together, nothing to send
          try {
            tracking.firstGeneration();
          } catch (IOException e) {
            log.error("cannot record the first generation: {}", e.toString());
            c.close(Goodbye.Code.APPLY_FAILED, "primary cannot write its metadata");
            return;
          }
          goLive(c);
          resetBackoff();
          sendControl(c, Envelope.newBuilder().setResyncDone(ResyncDone.newBuilder()
              .setLastSeq(0).setGenerations(tracking.generations().toProto())).build());
          behindOnLiveConnection(c);
        } else {
          goLive(c);
          resetBackoff();
          behindOnLiveConnection(c);
        }
      }
      case INCREMENTAL_LOCAL_SOURCE -> startResync(c, tracking.peerNeedsFullResync());
      case FULL_LOCAL_SOURCE -> startResync(c, true);
      default -> {
        String why = switch (d) {
          case SPLIT_BRAIN -> "split brain: this node and peer '" + c.remoteNodeId()
              + "' both changed data since generation " + Long.toHexString(local.bitmap())
              + "; choose the side to discard (start the other side with discard-local) or configure a policy";
          case UNRELATED -> "unrelated data: peer '" + c.remoteNodeId() + "' shares no generation with this node";
          default -> "peer '" + c.remoteNodeId() + "' holds newer data (generation "
              + Long.toHexString(remote.current()) + "): this node must not serve as its primary";
        };
        problem = why;
        log.error("{}", why);
        settleFirstAttempt();
        c.close(Goodbye.Code.REFUSED, why);
      }
    }
  }

  /** Makes {@code c} the connection that every new change is sent on. */
  void goLive(PeerConnection c) {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      connection = c;
      liveConnection = c;
      problem = null;
      connectedCondition.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private void startResync(PeerConnection c, boolean full) {
    ResyncSource r = new ResyncSource(this, c, full, c.remoteHello().getSyncState(),
        new ResyncRate(settings.resyncBytesPerSecond(), this::awaitResyncRoom, System::nanoTime));
    resync = r;
    manifestChannel = r.manifestChannel();
    resyncBudget.resyncRunning(true);
    Thread t = new Thread(() -> {
      try {
        r.run();
      } finally {
        resyncBudget.resyncRunning(false);
        if (resync == r) {
          resync = null;
        }
      }
    }, "replicator-resync");
    t.setDaemon(true);
    t.start();
  }

  /** Sends a control message in order with the changes around it. */
  void sendControl(PeerConnection c, Envelope envelope) {
    lock.lock();
    try {
      c.send(Frame.of(envelope));
    } finally {
      lock.unlock();
    }
  }

  /**
   * The resync reached its end: every change is acknowledged. The peer is told its new generation,
   * and only once a barrier after that message is acknowledged (so the peer recorded it) does this
   * node clear its bitmap; a link lost in between leaves the bits, and the next resync is a cheap
   * incremental one instead of a full comparison.
   */
  void resyncCompleted(PeerConnection c) throws IOException {
    long last;
    lock.lock();
    try {
      last = lastSeq;
    } finally {
      lock.unlock();
    }
    GenerationIds next = tracking.generationsAfterResync();
    sendControl(c, Envelope.newBuilder().setResyncDone(ResyncDone.newBuilder()
        .setLastSeq(last).setGenerations(next.toProto())).build());
    Completion barrier = submitResync(c, new FileChange.Force("", false), null);
    if (barrier == null) {
      throw new ManifestChannel.LinkLostException("link lost before the peer recorded the end of the resync");
    }
    barrier.await();
    tracking.resyncCompleted(next);
    resetBackoff();
    // cleared before the resync's waiters wake, so status() reports in sync to them
    resync = null;
    manifestChannel = null;
  }

  /** A connection that reached sync: the next loss starts reconnecting from the shortest delay. */
  private void resetBackoff() {
    lock.lock();
    try {
      reconnectDelayNanos = settings.reconnectMin().toNanos();
    } finally {
      lock.unlock();
    }
  }

  private final Object maintenance = new Object();

  @Override
  public io.replicator.VerifyReport verify() throws IOException {
    synchronized (maintenance) {
      PeerConnection c = liveConnection;
      if (c == null) {
        throw new IOException("verify needs the peer, and it is not connected" + (problem != null ? ": " + problem : ""));
      }
      if (resync != null) {
        throw new IOException("a resync is running; verify after it ends");
      }
      ManifestChannel mc = new ManifestChannel(this, c);
      manifestChannel = mc;
      try {
        io.replicator.VerifyReport report = new OnlineVerify(mc, awaitTree(), tracking.bitmap()).run();
        tracking.flushBitmap();
        log.info("verify against {}: {} path(s), {} byte(s) compared; {} block(s) and {} path(s) differ",
            c.remoteNodeId(), report.pathsCompared(), report.bytesCompared(), report.blocksDiffering(),
            report.pathsDiffering());
        return report;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while verifying");
      } finally {
        if (manifestChannel == mc) {
          manifestChannel = null;
        }
      }
    }
  }

  @Override
  public void resync() throws IOException {
    synchronized (maintenance) {
      ResyncSource running = resync;
      if (running == null) {
        PeerConnection c = liveConnection;
        if (c == null) {
          throw new IOException("resync needs the peer, and it is not connected" + (problem != null ? ": " + problem : ""));
        }
        if (!tracking.peerOutOfDate()) {
          return;
        }
        startResync(c, tracking.peerNeedsFullResync());
        running = resync;
      }
      try {
        running.done().get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while waiting for the resync");
      } catch (ExecutionException e) {
        throw new IOException("resync did not complete: " + e.getCause().getMessage(), e.getCause());
      }
    }
  }

  ReplicationMode mode() {
    return settings.mode();
  }

  // ---------------------------------------------------------------- status and close

  @Override
  public ReplicationStatus status() {
    lock.lock();
    try {
      ResyncSource r = resync;
      boolean outOfDate = tracking.peerOutOfDate();
      NodeState state;
      if (closed) {
        state = NodeState.STOPPED;
      } else if (r != null && connection != null) {
        state = NodeState.SYNC_SOURCE;
      } else if (suspendedReason != null) {
        state = NodeState.WAIT;
      } else if (connection == null) {
        state = blocksOnPeerLoss() ? NodeState.WAIT : NodeState.ALONE;
      } else {
        state = outOfDate ? NodeState.ALONE : NodeState.PRIMARY;
      }
      String lost = lossReason;
      // while disconnected, why the link went down (the peer could not apply a change, its disk is
      // full) is what the operator needs next to what is left to resync
      String why = suspendedReason != null ? "writes suspended: " + suspendedReason
          : problem != null ? problem
          : !outOfDate ? null
          : connection == null && lost != null ? tracking.outOfDateReason() + "; peer lost: " + lost
          : tracking.outOfDateReason();
      return new ReplicationStatus(state, settings.mode(),
          Optional.of(connection != null ? connection.remoteNodeId() + "@" + connection.remoteAddress()
              : settings.peer().getHostString() + ":" + settings.peer().getPort()),
          connection != null, outOfDate, Optional.ofNullable(why),
          tracking.generations().current(), tracking.bitmap().dirtyBytes(), lastSeq, appliedSeq,
          inFlight.size(), inFlightBytes, r == null ? Optional.empty() : Optional.of(r.progress()));
    } finally {
      lock.unlock();
    }
  }

  /** Waits for the in-flight changes to be acknowledged (bounded), then says goodbye and stops. */
  @Override
  public void close() throws IOException {
    PeerConnection c;
    lock.lock();
    try {
      if (closed) {
        return;
      }
      long deadline = System.nanoTime() + settings.drainTimeout().toNanos();
      while (connection != null && !inFlight.isEmpty()) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        try {
          windowFree.awaitNanos(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      closed = true;
      c = connection;
      connectedCondition.signalAll();
      windowFree.signalAll();
    } finally {
      lock.unlock();
    }
    if (c != null) {
      c.close(Goodbye.Code.SHUTDOWN, "primary closing");
    }
    shutdown();
    lock.lock();
    List<Pending> left;
    try {
      left = new ArrayList<>(inFlight);
      inFlight.clear();
      awaitingReceipt.clear();
    } finally {
      lock.unlock();
    }
    if (!left.isEmpty()) {
      tracking.startAlone("closed with " + left.size() + " change(s) unacknowledged");
      for (Pending p : left) {
        p.markLost(tracking);
      }
      failAll(left, new IOException("replicated file system closed before the peer acknowledged"));
    }
    boolean peerHasEverything = left.isEmpty() && c != null && resync == null && !tracking.peerOutOfDate();
    tracking.close(peerHasEverything);
    java.util.function.Consumer<Boolean> hook = onClose;
    if (hook != null) {
      hook.accept(peerHasEverything);
    }
  }

  private volatile java.util.function.Consumer<Boolean> onClose;

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
}
