package io.replicator.stream;

import io.replicator.ReplicationMode;
import io.replicator.SplitBrainPolicy;
import io.replicator.meta.GenerationIds;
import io.replicator.meta.SyncDecision;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.ResyncDone;
import io.replicator.transport.PeerConnection;
import io.replicator.transport.PeerListener;
import io.replicator.transport.PeerRefusedException;
import io.replicator.transport.TransportClient;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The link to one peer: connects, reconnects, and decides what each new connection is for (live
 * at once, a resync first, or refused: split brain, a newer peer, unrelated data). All of it runs
 * on the stream's control thread, never on an I/O thread: a decision may write metadata with an
 * fsync, and a lost link marks its unacknowledged changes durably.
 *
 * <p>Reconnecting: while the peer cannot be reached (nothing listens, the connection is cut
 * before the peer answers) it is probed every {@value #PROBE_MILLIS} ms for the first seconds of
 * the outage and then less and less often, so a peer that comes back is found within milliseconds
 * and a long outage costs little; a link lost after it was live is retried at once. A peer that
 * answers and refuses (split brain, a rival primary) is retried with exponential backoff.
 */
final class PeerLink {
  private static final Logger log = LoggerFactory.getLogger(PeerLink.class);
  /** Probe interval at the start of an outage. */
  static final long PROBE_MILLIS = 10;
  /** How long an outage is probed at the shortest interval before backing off. */
  private static final long FAST_PROBING_NANOS = TimeUnit.SECONDS.toNanos(5);

  private final StreamSettings settings;
  private final TransportClient client;
  private final PrimaryTracking tracking;
  private final SplitBrainPolicy splitBrainPolicy;
  private final SendWindow window;
  private final ResyncCoordinator resyncs;
  private final ScheduledExecutorService control;
  private final PeerListener listener;
  /** Whether writes wait for the peer while it is lost (BLOCK, or no leave to write alone). */
  private final BooleanSupplier blocksOnPeerLoss;

  private final ReentrantLock stateLock = new ReentrantLock();
  private final Condition stateChanged = stateLock.newCondition();
  /** The connection being set up or in use (live, or resyncing before it goes live), or null. */
  private volatile PeerConnection current;
  private volatile PeerConnection live;
  private volatile boolean closed;
  /** The first connection attempt ended without going live (unreachable, refused, resync failed). */
  private volatile boolean firstAttemptSettled;
  /** Why the last connection was refused (split brain, peer newer, unrelated), or null. */
  private volatile String problem;
  /** Why the last live connection was lost (the peer's goodbye: a full disk, say), or null. */
  private volatile String lossReason;
  private volatile long refusedDelayNanos;
  // control thread only
  private long unreachableSinceNanos;
  private long probeDelayNanos;

  PeerLink(StreamSettings settings, TransportClient client, PrimaryTracking tracking,
      SplitBrainPolicy splitBrainPolicy, SendWindow window, ResyncCoordinator resyncs,
      ScheduledExecutorService control, PeerListener listener, BooleanSupplier blocksOnPeerLoss) {
    this.settings = settings;
    this.client = client;
    this.tracking = tracking;
    this.splitBrainPolicy = splitBrainPolicy;
    this.window = window;
    this.resyncs = resyncs;
    this.control = control;
    this.listener = listener;
    this.blocksOnPeerLoss = blocksOnPeerLoss;
    this.refusedDelayNanos = settings.reconnectMin().toNanos();
  }

  // ---------------------------------------------------------------- state

  /** The connection new application changes go on, or null. */
  PeerConnection live() {
    return live;
  }

  /** See {@link ResyncLink#whileLive}: connection losses are handled on the same control thread. */
  boolean whileLive(PeerConnection c, ResyncLink.LinkAction action) throws IOException {
    java.util.concurrent.Future<Boolean> ran;
    try {
      ran = control.submit(() -> {
        if (live != c || !c.isActive()) {
          return false;
        }
        action.run();
        return true;
      });
    } catch (RejectedExecutionException e) {
      return false; // closing
    }
    try {
      return ran.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted while ending the resync");
    } catch (java.util.concurrent.ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException("ending the resync failed: " + cause, cause);
    }
  }

  String problem() {
    return problem;
  }

  String lossReason() {
    return lossReason;
  }

  /**
   * Waits until {@code ready} holds, checking it again whenever the link's state changes (or
   * {@link #signal} is called), up to the deadline; false when it passed.
   */
  boolean await(BooleanSupplier ready, long deadlineNanos) throws InterruptedException {
    stateLock.lock();
    try {
      while (!ready.getAsBoolean()) {
        long left = deadlineNanos - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        stateChanged.awaitNanos(left);
      }
      return true;
    } finally {
      stateLock.unlock();
    }
  }

  /** Something a waiter of {@link #await} looks at changed. */
  void signal() {
    stateLock.lock();
    try {
      stateChanged.signalAll();
    } finally {
      stateLock.unlock();
    }
  }

  /**
   * Waits (bounded) until the link is live or its first attempt settled without going live, so a
   * freshly opened file system does not report a connection still being set up.
   */
  void awaitLive(java.time.Duration timeout) {
    try {
      await(() -> live != null || firstAttemptSettled || closed, System.nanoTime() + timeout.toNanos());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The first attempt ended without going live; callers of {@link #awaitLive} stop waiting. */
  void settleFirstAttempt() {
    firstAttemptSettled = true;
    signal();
  }

  // ---------------------------------------------------------------- connecting

  /** Connects, waiting up to the connect timeout; keeps trying in the background when that fails. */
  void connectFirst() {
    CompletableFuture<PeerConnection> attempt = connect();
    try {
      PeerConnection c = attempt.get(settings.connectTimeout().toNanos(), TimeUnit.NANOSECONDS);
      // decided on the control thread like every later connection, and waited for here
      control.submit(() -> onConnected(c)).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      attempt.cancel(false);
      retryOnControl(null);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (!(cause instanceof RejectedExecutionException)) {
        logConnectFailure(cause);
        settleFirstAttempt();
        retryOnControl(cause);
      }
    } catch (TimeoutException e) {
      settleFirstAttempt();
      attempt.cancel(false);
      log.warn("peer {} did not answer within {} ms; going on alone and retrying",
          settings.peer(), settings.connectTimeout().toMillis());
      retryOnControl(null);
    }
  }

  private void retryOnControl(Throwable failure) {
    try {
      control.execute(() -> retryLater(failure));
    } catch (RejectedExecutionException e) {
      // closing
    }
  }

  private CompletableFuture<PeerConnection> connect() {
    io.replicator.proto.SyncState state = tracking.syncState();
    if (settings.follower()) {
      // says "I feed you as a follower": a secondary refuses it, as a follower refuses a pair link
      state = state.toBuilder().setFollower(true).build();
    }
    return client.connect(settings.peer(), tracking.generations().toProto(), state,
        settings.mode() != ReplicationMode.MEMORY, listener);
  }

  /** Schedules the next attempt: soon while the peer is unreachable, backing off when it refused. */
  private void retryLater(Throwable failure) {
    if (closed) {
      return;
    }
    long delay;
    if (failure instanceof PeerRefusedException) {
      delay = refusedDelayNanos;
      refusedDelayNanos = Math.min(refusedDelayNanos * 2, settings.reconnectMax().toNanos());
      delay = delay / 2 + ThreadLocalRandom.current().nextLong(delay / 2 + 1);
    } else {
      long now = System.nanoTime();
      if (unreachableSinceNanos == 0) {
        unreachableSinceNanos = now;
        probeDelayNanos = TimeUnit.MILLISECONDS.toNanos(PROBE_MILLIS);
      } else if (now - unreachableSinceNanos > FAST_PROBING_NANOS) {
        probeDelayNanos = Math.min(probeDelayNanos * 2, settings.reconnectMax().toNanos());
      }
      delay = probeDelayNanos;
    }
    log.debug("reconnecting to {} in {} ms ({})", settings.peer(), delay / 1_000_000,
        failure == null ? "no answer" : failure.getMessage());
    try {
      control.schedule(this::reconnect, delay, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      // closing
    }
  }

  private void reconnect() {
    if (closed) {
      return;
    }
    connect().whenCompleteAsync((c, e) -> {
      if (e != null) {
        Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null
            ? e.getCause() : e;
        logConnectFailure(cause);
        retryLater(cause);
      } else {
        onConnected(c);
      }
    }, control).exceptionally(e -> null);
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

  /** A handshaken connection: decide what it is for. On the control thread. */
  private void onConnected(PeerConnection c) {
    if (closed) {
      c.close(Goodbye.Code.SHUTDOWN, "closing");
      return;
    }
    if (!c.isActive()) {
      // lost between the handshake and this decision: its loss was handled before it was current
      retryLater(null);
      return;
    }
    current = c;
    unreachableSinceNanos = 0;
    io.replicator.proto.Hello peer = c.remoteHello();
    GenerationIds local = tracking.generations();
    GenerationIds remote = GenerationIds.fromProto(peer.getGenerations());
    SyncDecision d = SyncDecision.decide(
        new SyncDecision.Side(local, false, tracking.bitmap().dirtyBytes(), tracking.syncState().getPrimarySinceMillis()),
        new SyncDecision.Side(remote, peer.getSyncState().getDiscardLocal(), peer.getSyncState().getDirtyBytes(),
            peer.getSyncState().getPrimarySinceMillis()),
        splitBrainPolicy);
    if (peer.getSyncState().getFollower() || settings.follower()) {
      if (!peer.getSyncState().getFollower() || !settings.follower()) {
        String why = settings.follower()
            ? "peer '" + c.remoteNodeId() + "' is not a follower, but is configured as one here"
            : "peer '" + c.remoteNodeId() + "' is a follower, but is configured as this node's secondary";
        refuse(c, why);
        return;
      }
      // a follower's copy is never a source: what it holds only decides how much to send
      d = SyncDecision.decideForFollower(local, remote);
      // continued from the previous primary: the follower's report of what it holds must join
      d = tracking.continueFollower(d, peer.getSyncState().getCopyReport(), c.remoteNodeId());
    }
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
          resyncs.start(c, true);
        } else if (tracking.peerOutOfDate()) {
          resyncs.start(c, false);
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
          reachedSync();
          window.sendControl(c, Envelope.newBuilder().setResyncDone(ResyncDone.newBuilder()
              .setLastSeq(0).setGenerations(tracking.generations().toProto())).build());
          dropIfBehind(c);
        } else {
          goLive(c);
          reachedSync();
          dropIfBehind(c);
        }
      }
      case INCREMENTAL_LOCAL_SOURCE -> resyncs.start(c, tracking.peerNeedsFullResync());
      case FULL_LOCAL_SOURCE -> resyncs.start(c, true);
      default -> {
        String why = switch (d) {
          case SPLIT_BRAIN -> "split brain: this node and peer '" + c.remoteNodeId()
              + "' both changed data since generation " + Long.toHexString(local.bitmap())
              + "; choose the side to discard (start the other side with discard-local) or configure a policy";
          case UNRELATED -> "unrelated data: peer '" + c.remoteNodeId() + "' shares no generation with this node";
          default -> "peer '" + c.remoteNodeId() + "' holds newer data (generation "
              + Long.toHexString(remote.current()) + "): this node must not serve as its primary";
        };
        refuse(c, why);
      }
    }
  }

  private void refuse(PeerConnection c, String why) {
    if (!why.equals(problem)) {
      log.error("{}", why);
    } else {
      // the same refusal on every retry: said once, status keeps showing it
      log.debug("{}", why);
    }
    problem = why;
    current = null;
    settleFirstAttempt();
    c.close(Goodbye.Code.REFUSED, why);
  }

  /**
   * Makes {@code c} the connection every new change is sent on (a resync does this at its start).
   * False when {@code c} is gone already: its loss was handled, so nothing may be sent on it.
   */
  boolean goLive(PeerConnection c) {
    stateLock.lock();
    try {
      if (closed || c != current || !c.isActive() || !window.goLive(c)) {
        return false;
      }
      live = c;
      problem = null;
      stateChanged.signalAll();
      return true;
    } finally {
      stateLock.unlock();
    }
  }

  /**
   * A connection went live as in sync while a change was being marked as missed by the peer (the
   * two ran at the same time): the peer is behind on a link that believes otherwise. Dropping the
   * link makes the reconnect decide again, and that decision is an incremental resync.
   */
  void dropIfBehind(PeerConnection c) {
    if (tracking.peerOutOfDate() && !resyncs.running()) {
      log.info("peer {} came back while changes were marked for it; reconnecting to resync them", c.remoteNodeId());
      c.close(Goodbye.Code.UNSPECIFIED, "reconnecting to resync changes made while the link came up");
    }
  }

  /** A connection that reached sync: the next refusal starts backing off from the shortest delay. */
  void reachedSync() {
    refusedDelayNanos = settings.reconnectMin().toNanos();
  }

  // ---------------------------------------------------------------- losing

  /** The connection closed; handled on the control thread (marking changes lost takes an fsync). */
  void onClosed(PeerConnection c, String reason) {
    try {
      control.execute(() -> connectionLost(c, reason));
    } catch (RejectedExecutionException e) {
      connectionLost(c, reason); // closing: nothing more will be scheduled
    }
  }

  private void connectionLost(PeerConnection c, String reason) {
    List<SendWindow.Pending> lost = window.lose(c);
    boolean wasCurrent;
    stateLock.lock();
    try {
      wasCurrent = c == current;
      if (wasCurrent) {
        current = null;
      }
      if (live == c) {
        live = null;
      }
      stateChanged.signalAll();
    } finally {
      stateLock.unlock();
    }
    if (!wasCurrent && lost.isEmpty()) {
      return; // refused or replaced: nothing was sent on it
    }
    if (closed) {
      failAll(lost, new IOException("replicated file system closed before peer acknowledged"));
      return;
    }
    lossReason = reason;
    log.warn("lost peer {} ({}); {} change(s) unacknowledged; {}", c.remoteNodeId(), reason, lost.size(),
        blocksOnPeerLoss.getAsBoolean() ? "writes wait for it" : "going on alone");
    resyncs.linkLost(reason);
    if (!lost.isEmpty()) {
      // before any of these writers returns, the peer's lack of them must be durable
      try {
        tracking.startAlone("link lost with " + lost.size() + " change(s) unacknowledged: " + reason);
        for (SendWindow.Pending p : lost) {
          p.markLost(tracking);
        }
        tracking.flushBitmap();
      } catch (IOException e) {
        log.error("cannot record that peer is out of date", e);
        failAll(lost, new IOException("peer lost and its out-of-date mark could not be written", e));
        lost = List.of();
      }
    }
    if (blocksOnPeerLoss.getAsBoolean()) {
      failAll(lost, new IOException("peer " + settings.peer() + " was lost before acknowledging ("
          + reason + "); the change is made locally and recorded as not replicated"));
    } else {
      for (SendWindow.Pending p : lost) {
        p.done.complete(null);
      }
    }
    // a peer that was there a moment ago is most likely back at once (a restart): try now
    unreachableSinceNanos = 0;
    try {
      control.execute(this::reconnect);
    } catch (RejectedExecutionException e) {
      // closing
    }
  }

  static void failAll(List<SendWindow.Pending> pendings, IOException e) {
    for (SendWindow.Pending p : pendings) {
      p.done.completeExceptionally(e);
    }
  }

  /**
   * The idea of DRBD's ko-count: heartbeats prove the link is alive, not that the peer is
   * applying. A peer whose disk hangs (or a middlebox that loses a frame) would otherwise hold
   * every SYNC write forever; past the acknowledgement timeout the link is dropped, the
   * unacknowledged changes are marked dirty, and the peer-loss policy decides what writes do.
   */
  void checkAcknowledgements() {
    PeerConnection c = window.connection();
    SendWindow.Pending oldest = window.oldest();
    if (c == null || oldest == null) {
      return;
    }
    long age = System.nanoTime() - oldest.sentNanos;
    if (age < settings.ackTimeout().toNanos()) {
      return;
    }
    long ageMillis = age / 1_000_000;
    log.warn("peer {} has not acknowledged change {} for {} ms although the link is alive; dropping the link",
        c.remoteNodeId(), oldest.seq, ageMillis);
    c.close(Goodbye.Code.TIMEOUT, "change " + oldest.seq + " unacknowledged for " + ageMillis + " ms");
  }

  /** No more connecting; a connection in use is closed by the caller. */
  void close() {
    closed = true;
    signal();
  }
}
