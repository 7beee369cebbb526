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
import io.replicator.meta.NodeMetadataStore;
import io.replicator.proto.Ack;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.NodeMetadata;
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
  private final NodeMetadataStore metadata;
  private final ScheduledExecutorService control;

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition windowFree = lock.newCondition();
  private final Condition connectedCondition = lock.newCondition();
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
  private volatile boolean peerOutOfDate;
  private volatile String outOfDateReason;
  private final Object markLock = new Object();

  /** One change (or the last chunk of a split write) waiting for its acknowledgement. */
  private static final class Pending {
    final long seq;
    final int bytes;
    final boolean force;
    final CompletableFuture<Void> done = new CompletableFuture<>();

    Pending(long seq, int bytes, boolean force) {
      this.seq = seq;
      this.bytes = bytes;
      this.force = force;
    }
  }

  private ReplicationStream(StreamSettings settings, TransportClient client, NodeMetadataStore metadata) {
    this.settings = settings;
    this.client = client;
    this.metadata = metadata;
    this.control = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "replicator-stream-" + settings.peer());
      t.setDaemon(true);
      return t;
    });
    this.reconnectDelayNanos = settings.reconnectMin().toNanos();
    NodeMetadata m = metadata.current();
    switch (metadata.found()) {
      case CORRUPT -> {
        peerOutOfDate = true;
        outOfDateReason = "node metadata was lost or corrupt";
      }
      case VALID -> {
        peerOutOfDate = m.getPeerOutOfDate();
        outOfDateReason = m.getOutOfDateReason();
      }
      case NONE -> {
        peerOutOfDate = false;
        outOfDateReason = "";
      }
    }
  }

  /**
   * Opens the stream: reads the metadata, connects (waiting up to the connect timeout), and keeps
   * reconnecting in the background when the peer is not there.
   *
   * @param rootHasData whether the primary's tree already holds files; with no metadata yet, the
   *     peer cannot be assumed to hold them and is marked out of date
   */
  public static ReplicationStream open(StreamSettings settings, TransportSettings transport,
      NodeMetadataStore metadata, boolean rootHasData) throws IOException {
    ReplicationStream stream = new ReplicationStream(settings, new TransportClient(transport), metadata);
    try {
      if (metadata.found() == NodeMetadataStore.Found.NONE) {
        NodeMetadata.Builder first = NodeMetadata.newBuilder().setFormat(1).setNodeId(transport.nodeId());
        if (rootHasData) {
          first.setPeerOutOfDate(true)
              .setOutOfDateReason("the data existed before replication started")
              .setOutOfDateSinceMillis(System.currentTimeMillis());
          stream.peerOutOfDate = true;
          stream.outOfDateReason = first.getOutOfDateReason();
        }
        metadata.write(first.build());
      } else if (metadata.found() == NodeMetadataStore.Found.CORRUPT) {
        stream.writeMark("node metadata was lost or corrupt");
      }
      stream.connectFirst();
    } catch (IOException | RuntimeException e) {
      stream.shutdown();
      throw e;
    }
    return stream;
  }

  private void connectFirst() {
    CompletableFuture<PeerConnection> attempt = client.connect(settings.peer(), null, this);
    try {
      onConnected(attempt.get(settings.connectTimeout().toNanos(), TimeUnit.NANOSECONDS));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      attempt.cancel(false);
      scheduleReconnect("interrupted while connecting");
    } catch (ExecutionException e) {
      logConnectFailure(e.getCause());
      scheduleReconnect(e.getCause().getMessage());
    } catch (TimeoutException e) {
      attempt.cancel(false);
      log.warn("peer {} did not answer within {} ms; going on alone and retrying",
          settings.peer(), settings.connectTimeout().toMillis());
      scheduleReconnect("connect timeout");
    }
  }

  // ---------------------------------------------------------------- ChangeSink

  @Override
  public void beforeLocalChange(FileChange change) throws IOException {
    if (liveConnection != null) {
      return;
    }
    if (settings.peerLossPolicy() == PeerLossPolicy.BLOCK) {
      awaitConnection();
      return;
    }
    ensureMarked("changes were made while the peer was disconnected");
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
        pending = new Pending(seq, bytes, force);
        inFlight.addLast(pending);
        inFlightBytes += bytes;
        if (settings.mode() == ReplicationMode.MEMORY && !force) {
          awaitingReceipt.addLast(pending);
        }
        c.send(payload == null ? Frame.of(header) : new Frame(header, payload));
      }
    } finally {
      lock.unlock();
    }
    if (pending == null) {
      // the link dropped after beforeLocalChange let this change through
      ensureMarked("changes were made while the peer was disconnected");
      if (settings.peerLossPolicy() == PeerLossPolicy.BLOCK) {
        throw new IOException("peer " + settings.peer() + " was lost; this change is made locally and "
            + "recorded as not replicated");
      }
      return Completion.DONE;
    }
    if (settings.mode() == ReplicationMode.ASYNC && !force) {
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

  private void awaitConnection() throws IOException {
    long deadline = System.nanoTime() + settings.blockTimeout().toNanos();
    lock.lock();
    try {
      while (connection == null && !closed) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new IOException("peer " + settings.peer() + " has not been connected for "
              + settings.blockTimeout().toMillis() + " ms; change refused (peer-loss policy BLOCK)");
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
    for (Pending p : done) {
      p.done.complete(null);
    }
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
    log.warn("lost peer {} ({}); {} change(s) unacknowledged; {}", c.remoteNodeId(), reason, lost.size(),
        settings.peerLossPolicy() == PeerLossPolicy.CONTINUE ? "going on alone" : "writes wait for it");
    if (!lost.isEmpty()) {
      // before any of these writers returns, the peer's lack of them must be durable
      try {
        ensureMarked("link lost with " + lost.size() + " change(s) unacknowledged: " + reason);
      } catch (IOException e) {
        log.error("cannot record that peer is out of date", e);
        failAll(lost, new IOException("peer lost and its out-of-date mark could not be written", e));
        lost = List.of();
      }
    }
    if (settings.peerLossPolicy() == PeerLossPolicy.BLOCK) {
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
    client.connect(settings.peer(), null, this).whenComplete((c, e) -> {
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
      log.warn("{}", e.getMessage());
    } else {
      log.debug("cannot reach peer {}: {}", settings.peer(), e.getMessage());
    }
  }

  private void onConnected(PeerConnection c) {
    lock.lock();
    try {
      if (closed) {
        c.close(Goodbye.Code.SHUTDOWN, "closing");
        return;
      }
      connection = c;
      liveConnection = c;
      reconnectDelayNanos = settings.reconnectMin().toNanos();
      connectedCondition.signalAll();
    } finally {
      lock.unlock();
    }
    log.info("connected to peer {} at {}{}", c.remoteNodeId(), c.remoteAddress(),
        peerOutOfDate ? " (peer is out of date: " + outOfDateReason + ")" : "");
  }

  // ---------------------------------------------------------------- out-of-date mark

  private void ensureMarked(String reason) throws IOException {
    if (peerOutOfDate) {
      return;
    }
    synchronized (markLock) {
      if (!peerOutOfDate) {
        writeMark(reason);
      }
    }
  }

  private void writeMark(String reason) throws IOException {
    synchronized (markLock) {
      metadata.write(metadata.current().toBuilder()
          .setFormat(1)
          .setPeerOutOfDate(true)
          .setOutOfDateReason(reason)
          .setOutOfDateSinceMillis(System.currentTimeMillis())
          .build());
      outOfDateReason = reason;
      peerOutOfDate = true;
      log.warn("peer {} marked out of date: {}", settings.peer(), reason);
    }
  }

  // ---------------------------------------------------------------- status and close

  @Override
  public ReplicationStatus status() {
    lock.lock();
    try {
      NodeState state;
      if (closed) {
        state = NodeState.STOPPED;
      } else if (connection == null) {
        state = settings.peerLossPolicy() == PeerLossPolicy.BLOCK ? NodeState.WAIT : NodeState.ALONE;
      } else {
        state = peerOutOfDate ? NodeState.ALONE : NodeState.PRIMARY;
      }
      return new ReplicationStatus(state, settings.mode(),
          Optional.of(connection != null ? connection.remoteNodeId() + "@" + connection.remoteAddress()
              : settings.peer().getHostString() + ":" + settings.peer().getPort()),
          connection != null, peerOutOfDate,
          peerOutOfDate ? Optional.ofNullable(outOfDateReason) : Optional.empty(),
          metadata.current().getGenerations().getCurrent(), 0, lastSeq, appliedSeq,
          inFlight.size(), inFlightBytes, Optional.empty());
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
      ensureMarked("closed with " + left.size() + " change(s) unacknowledged");
      failAll(left, new IOException("replicated file system closed before the peer acknowledged"));
    }
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
