package io.replicator.stream;

import io.netty.buffer.ByteBuf;
import io.replicator.ReplicationMode;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.proto.Ack;
import io.replicator.proto.Envelope;
import io.replicator.transport.Frame;
import io.replicator.transport.PayloadBuffers;
import io.replicator.transport.PeerConnection;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One peer's window of changes: numbers each change, sends it on the peer's live connection,
 * keeps it until an acknowledgement covers it, and turns acknowledgements into completions. A
 * second peer would be a second window; nothing here is shared between peers.
 *
 * <h2>Threads</h2>
 * <ul>
 *   <li>Writers number and send under {@code sendLock}, which is held only to give out the next
 *       sequence number and queue the frame in that order (payloads are copied before it is
 *       taken, and nobody waits while holding it).
 *   <li>The connection's I/O thread records each acknowledgement and completes the changes it
 *       covers without taking {@code sendLock} (after BookKeeper's per-channel client: the I/O
 *       thread only retires what the acknowledgement names and wakes its waiters).
 *   <li>The control thread takes back what a lost connection left unacknowledged.
 * </ul>
 *
 * <h2>Acknowledgements</h2>
 * The peer acknowledges cumulatively (everything up to a sequence number received, or applied)
 * and, for changes it applied ahead of an earlier one still running (a file's fsync in another
 * lane), by range; a change completes as soon as either covers it. The window bounds the span of
 * sequence numbers in flight and their payload bytes; writers wait while it is full.
 */
final class SendWindow {

  /** One change (or the last chunk of a split write) waiting for its acknowledgement. */
  static final class Pending {
    /** Given when the change is numbered; published to other threads through the ring. */
    long seq;
    final int bytes;
    final boolean force;
    final CompletableFuture<Void> done = new CompletableFuture<>();
    /** When it was numbered and sent (not when it began to wait for room); set with {@link #seq}. */
    long sentNanos;
    /** Runs once the peer applied the change (resync clears its bits here); may be null. */
    final Runnable onApplied;
    /** What to mark should the peer never acknowledge it: the change, or for a Write its range. */
    private final FileChange lost;
    private final String path;
    private final long writePosition;
    private final AtomicBoolean retired = new AtomicBoolean();

    Pending(int bytes, FileChange change, Runnable onApplied) {
      this.bytes = bytes;
      this.force = change instanceof FileChange.Force;
      // a Write keeps no reference to its data, which the application may reuse; a resync's
      // WriteFile lost is its whole path to reconcile again
      this.lost = change instanceof FileChange.Write ? null
          : change instanceof FileChange.WriteFile f ? new FileChange.CreateFile(f.path(), false) : change;
      this.path = change.path();
      this.writePosition = change instanceof FileChange.Write w ? w.position() : -1;
      this.onApplied = onApplied;
    }

    /** Sets the bits (or dirty path) of a change the peer may never have applied. */
    void markLost(PrimaryTracking tracking) {
      if (lost != null) {
        tracking.mark(lost);
      } else {
        tracking.markWrite(path, writePosition, bytes);
      }
    }
  }

  /** What the I/O thread does with the applications' acknowledgement latencies. */
  interface LatencyListener {
    void applicationLatency(long nanos);
  }

  private final ReplicationMode mode;
  private final long windowBytes;
  private final int windowChanges;
  private final LatencyListener latencies;

  private final ReentrantLock sendLock = new ReentrantLock();
  /** The connection new changes go on, or null; written under sendLock. */
  private volatile PeerConnection connection;
  /** The last sequence number given out; written under sendLock. */
  private volatile long lastSeq;
  private volatile boolean closed;

  /** Changes in flight by sequence number modulo its length; a slot is cleared when retired. */
  private final AtomicReferenceArray<Pending> ring;
  private final int mask;
  /** Every sequence number up to this one is retired (acknowledged, or handed back as lost). */
  private volatile long retiredUpTo;
  private volatile long receivedSeq;
  private volatile long appliedSeq;
  private final AtomicLong inFlightBytes = new AtomicLong();
  private final AtomicInteger inFlightChanges = new AtomicInteger();
  /** MEMORY writes, completed on receipt before they are retired on application; in seq order. */
  private final ConcurrentLinkedQueue<Pending> awaitingReceipt = new ConcurrentLinkedQueue<>();

  private final ReentrantLock roomLock = new ReentrantLock();
  private final Condition roomFree = roomLock.newCondition();
  /** Writers waiting for room; the I/O thread takes roomLock only when there are some. */
  private final AtomicInteger roomWaiters = new AtomicInteger();

  /**
   * A follower's window never makes writers wait: when it is full, the connection is given up (every
   * change from then on is left to the dirty bitmap) rather than holding the pair's writes.
   */
  private final boolean dropWhenFull;
  /** The connection given up because the window was full; guarded by sendLock. */
  private PeerConnection overflowed;
  /** Told on the I/O thread when an acknowledgement freed room, or null. */
  private volatile Runnable roomListener;

  SendWindow(ReplicationMode mode, long windowBytes, int windowChanges, LatencyListener latencies) {
    this(mode, windowBytes, windowChanges, latencies, false);
  }

  SendWindow(ReplicationMode mode, long windowBytes, int windowChanges, LatencyListener latencies,
      boolean dropWhenFull) {
    this.dropWhenFull = dropWhenFull;
    this.mode = mode;
    this.windowBytes = windowBytes;
    this.windowChanges = windowChanges;
    this.latencies = latencies;
    // room for the whole window, and for the writers that pass the soft check at the same time
    int capacity = Integer.highestOneBit(Math.max(64, windowChanges * 2) - 1) << 1;
    this.ring = new AtomicReferenceArray<>(capacity);
    this.mask = capacity - 1;
  }

  // ---------------------------------------------------------------- the connection

  /** The connection changes go on, or null. */
  PeerConnection connection() {
    return connection;
  }

  /** Makes {@code c} the connection every new change is sent on. False when closed. */
  boolean goLive(PeerConnection c) {
    sendLock.lock();
    try {
      if (closed) {
        return false;
      }
      connection = c;
      return true;
    } finally {
      sendLock.unlock();
    }
  }

  /**
   * The connection {@code c} is gone: nothing more is sent on it, and every change it left
   * unacknowledged is handed back, in sequence order, for the caller to account for and release.
   * Empty when {@code c} was not the window's connection.
   */
  List<Pending> lose(PeerConnection c) {
    List<Pending> lost = new ArrayList<>();
    sendLock.lock();
    try {
      if (c != connection) {
        return lost;
      }
      connection = null;
      takeAll(lost);
    } finally {
      sendLock.unlock();
    }
    wakeRoomWaiters();
    return lost;
  }

  /** Under sendLock: retires everything in flight into {@code into}. */
  private void takeAll(List<Pending> into) {
    long last = lastSeq;
    for (long s = retiredUpTo + 1; s <= last; s++) {
      Pending p = ring.get(slot(s));
      if (p != null && p.seq == s && p.retired.compareAndSet(false, true)) {
        into.add(p);
      }
      ring.set(slot(s), null);
    }
    retiredUpTo = last;
    inFlightChanges.set(0);
    inFlightBytes.set(0);
    awaitingReceipt.clear();
  }

  /** Sends a frame that is not a change (resync control) in order with the changes around it. */
  void sendControl(PeerConnection c, Envelope envelope) {
    sendLock.lock();
    try {
      c.send(Frame.of(envelope));
    } finally {
      sendLock.unlock();
    }
  }

  /**
   * Sends {@code envelope} on {@code c} behind every change numbered so far, and returns the last
   * of them; -1 when {@code c} is not (or no longer) the connection changes go on.
   */
  long sendBehindNumbered(PeerConnection c, Envelope envelope) {
    sendLock.lock();
    try {
      if (closed || c == null || c != connection || c == overflowed) {
        return -1;
      }
      c.send(Frame.of(envelope));
      return lastSeq;
    } finally {
      sendLock.unlock();
    }
  }

  // ---------------------------------------------------------------- sending

  /**
   * Numbers {@code change} and sends it with {@code payload} (its data, already copied; released
   * here whatever happens) on the live connection, waiting first while the window is full.
   * Returns null when there is no connection, or it is not {@code expected} (a resync's own).
   *
   * @throws IOException when the window is closed
   */
  Pending send(FileChange change, ByteBuf payload, Runnable onApplied, PeerConnection expected)
      throws IOException {
    return send(change, payload, onApplied, expected, false);
  }

  /**
   * Like {@link #send}, but never waits and never gives up the connection: returns {@link #NO_ROOM}
   * when the window is full (the payload is released, the change is not numbered).
   */
  Pending offer(FileChange change, ByteBuf payload, PeerConnection expected) throws IOException {
    return send(change, payload, null, expected, true);
  }

  /** What {@link #offer} returns when the window is full. */
  static final Pending NO_ROOM = new Pending(0, new FileChange.Force("/", false), null);

  /**
   * Sends nothing more on {@code c} (when it is still the window's connection) and closes it with
   * {@code why}: from here on what the peer misses is a suffix of the stream, left to the bitmap.
   */
  void giveUp(PeerConnection c, String why) {
    boolean close = false;
    sendLock.lock();
    try {
      if (c != null && c == connection && c != overflowed) {
        overflowed = c;
        close = true;
      }
    } finally {
      sendLock.unlock();
    }
    if (close) {
      c.close(io.replicator.proto.Goodbye.Code.TIMEOUT, why);
    }
  }

  /** Runs {@code listener} on the I/O thread after an acknowledgement freed room (keep it short). */
  void onRoom(Runnable listener) {
    this.roomListener = listener;
  }

  private Pending send(FileChange change, ByteBuf payload, Runnable onApplied, PeerConnection expected,
      boolean refuseWhenFull) throws IOException {
    int bytes = change.payloadLength();
    // everything but giving out the number is done before the lock: a writer that holds it and
    // loses its processor holds up every other writer
    io.replicator.proto.Change body = ChangeProtos.unnumbered(change);
    Pending p = new Pending(bytes, change, onApplied);
    boolean handedOver = false;
    try {
      while (true) {
        if (!dropWhenFull && !refuseWhenFull) {
          awaitRoom(bytes);
        }
        PeerConnection wake = null;
        PeerConnection givenUp = null;
        sendLock.lock();
        try {
          if (closed) {
            throw new IOException("replicated file system is closed");
          }
          PeerConnection c = connection;
          if (c == null || c == overflowed || (expected != null && c != expected)) {
            return null;
          }
          long seq = lastSeq + 1;
          if (refuseWhenFull && (seq - retiredUpTo > ring.length() || !hasRoom(bytes, windowBytes))) {
            return NO_ROOM;
          }
          if (dropWhenFull && (seq - retiredUpTo > ring.length() || !hasRoom(bytes, windowBytes))) {
            // from this change on nothing more goes on c, so what the follower misses is a suffix of
            // the stream (never a gap): the changes in flight are handed back when c is lost, and
            // this one and the next are marked by the caller
            overflowed = c;
            givenUp = c;
            return null;
          }
          if (seq - retiredUpTo > ring.length()) {
            continue; // the oldest change still holds its slot: wait for it (outside the lock)
          }
          ByteBuf data = payload;
          if (bytes > 0 && data == null) {
            // connected after the caller decided not to copy: copy now (rare)
            data = copy(change);
          }
          p.seq = seq;
          p.sentNanos = System.nanoTime();
          ring.set(slot(seq), p);
          inFlightChanges.incrementAndGet();
          inFlightBytes.addAndGet(bytes);
          if (mode == ReplicationMode.MEMORY && !p.force && onApplied == null) {
            awaitingReceipt.add(p);
          }
          lastSeq = seq;
          handedOver = true;
          if (c.queue(Frame.change(body, seq, data))) {
            wake = c;
          }
        } finally {
          sendLock.unlock();
          if (givenUp != null) {
            givenUp.close(io.replicator.proto.Goodbye.Code.TIMEOUT, "the follower's window of " + windowBytes
                + " bytes / " + windowChanges + " changes is full: it falls back to its dirty bitmap");
          }
        }
        if (wake != null) {
          wake.flushQueued();
        }
        return p;
      }
    } finally {
      if (!handedOver && payload != null) {
        payload.release();
      }
    }
  }

  /**
   * A copy of a write's data for the frame (the application may reuse its buffer). Small ones go
   * to the heap: the buffer is freed by the I/O thread, and a pooled direct buffer allocated by
   * one thread and freed by another takes the pool's shared lock both times; large ones to kept
   * direct memory ({@link PayloadBuffers}).
   */
  static ByteBuf copy(FileChange change) {
    int n = change.payloadLength();
    if (n <= SMALL_COPY) {
      byte[] b = new byte[n];
      change.payload().duplicate().get(b);
      return io.netty.buffer.Unpooled.wrappedBuffer(b);
    }
    ByteBuf b = PayloadBuffers.SENT.take(n);
    b.writeBytes(change.payload().duplicate());
    return b;
  }

  private static final int SMALL_COPY = 64 * 1024;

  /** Waits until {@code bytes} more fit (or nothing is in flight, or the link or window is gone). */
  private void awaitRoom(int bytes) {
    if (hasRoom(bytes, windowBytes)) {
      return;
    }
    boolean interrupted = false;
    roomLock.lock();
    roomWaiters.incrementAndGet();
    try {
      while (!hasRoom(bytes, windowBytes)) {
        try {
          roomFree.await();
        } catch (InterruptedException e) {
          // the change is already made locally: it must still be numbered and sent, so the
          // interrupt is kept for the wait on its acknowledgement
          interrupted = true;
        }
      }
    } finally {
      roomWaiters.decrementAndGet();
      roomLock.unlock();
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private boolean hasRoom(long bytes, long byteLimit) {
    if (connection == null || closed || inFlightChanges.get() == 0) {
      return true;
    }
    return lastSeq - retiredUpTo < Math.min(windowChanges, ring.length() - 1)
        && inFlightBytes.get() + bytes <= byteLimit;
  }

  /** Waits until {@code bytes} more stay within {@code budget} (resync's share of the window). */
  void awaitRoom(long bytes, long budget) throws InterruptedException {
    if (hasRoom(bytes, budget)) {
      return;
    }
    roomLock.lock();
    roomWaiters.incrementAndGet();
    try {
      while (!hasRoom(bytes, budget)) {
        roomFree.await();
      }
    } finally {
      roomWaiters.decrementAndGet();
      roomLock.unlock();
    }
  }

  private void wakeRoomWaiters() {
    if (roomWaiters.get() > 0) {
      roomLock.lock();
      try {
        roomFree.signalAll();
      } finally {
        roomLock.unlock();
      }
    }
  }

  // ---------------------------------------------------------------- acknowledgements

  /**
   * Records an acknowledgement that arrived on {@code c}, on its I/O thread, and completes every
   * change it covers. Returns why it cannot be believed (the caller drops the link), or null.
   */
  String onAck(PeerConnection c, Ack ack) {
    if (c != connection) {
      return null; // a connection already replaced: its changes were handed back
    }
    long last = lastSeq;
    long received = ack.getReceivedSeq();
    long applied = ack.getAppliedSeq();
    if (applied > last || received > last || applied > received) {
      return "acknowledgement " + received + "/" + applied + " beyond the last change sent (" + last + ")";
    }
    int ranges = ack.getAppliedRangesCount();
    if (ranges % 2 != 0) {
      return "acknowledgement with an odd number of range bounds";
    }
    for (int i = 0; i < ranges; i += 2) {
      long first = ack.getAppliedRanges(i);
      long end = ack.getAppliedRanges(i + 1);
      if (first > end || first <= applied || end > received) {
        return "acknowledged range " + first + ".." + end + " outside " + applied + ".." + received;
      }
    }
    if (received > receivedSeq) {
      receivedSeq = received;
    }
    if (applied > appliedSeq) {
      appliedSeq = applied;
    }
    long now = System.nanoTime();
    if (mode == ReplicationMode.MEMORY) {
      for (Pending p; (p = awaitingReceipt.peek()) != null && p.seq <= received; ) {
        awaitingReceipt.poll();
        p.done.complete(null);
      }
    }
    // in sequence order: a change of a file is completed after the earlier changes of that file
    long upTo = retiredUpTo;
    for (long s = upTo + 1; s <= applied; s++) {
      retire(s, now);
    }
    upTo = Math.max(upTo, applied);
    for (int i = 0; i < ranges; i += 2) {
      for (long s = ack.getAppliedRanges(i); s <= ack.getAppliedRanges(i + 1); s++) {
        retire(s, now);
      }
    }
    // past changes that ranges retired earlier
    while (upTo < last && ring.get(slot(upTo + 1)) == null) {
      upTo++;
    }
    retiredUpTo = upTo;
    wakeRoomWaiters();
    Runnable listener = roomListener;
    if (listener != null) {
      listener.run();
    }
    return null;
  }

  private void retire(long seq, long now) {
    int slot = slot(seq);
    Pending p = ring.get(slot);
    if (p == null || p.seq != seq || !p.retired.compareAndSet(false, true)) {
      return;
    }
    ring.compareAndSet(slot, p, null);
    inFlightChanges.decrementAndGet();
    inFlightBytes.addAndGet(-p.bytes);
    try {
      // before the waiter wakes: it may rely on what onApplied records (the end of a resync does)
      if (p.onApplied != null) {
        p.onApplied.run();
      } else {
        latencies.applicationLatency(now - p.sentNanos);
      }
    } finally {
      p.done.complete(null);
    }
  }

  private int slot(long seq) {
    return (int) (seq & mask);
  }

  // ---------------------------------------------------------------- state

  long lastSeq() {
    return lastSeq;
  }

  long appliedSeq() {
    return appliedSeq;
  }

  int inFlightChanges() {
    return inFlightChanges.get();
  }

  long inFlightBytes() {
    return inFlightBytes.get();
  }

  /** The oldest change not yet acknowledged, or null. */
  Pending oldest() {
    long last = lastSeq;
    for (long s = retiredUpTo + 1; s <= last; s++) {
      Pending p = ring.get(slot(s));
      if (p != null && p.seq == s && !p.retired.get()) {
        return p;
      }
    }
    return null;
  }

  /** Waits up to {@code nanos} for everything in flight on a live connection to be acknowledged. */
  void drain(long nanos) {
    long deadline = System.nanoTime() + nanos;
    roomLock.lock();
    roomWaiters.incrementAndGet();
    try {
      while (connection != null && inFlightChanges.get() > 0) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return;
        }
        try {
          roomFree.awaitNanos(Math.min(left, 50_000_000));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    } finally {
      roomWaiters.decrementAndGet();
      roomLock.unlock();
    }
  }

  /**
   * Closes the window: nothing more is sent, waiting writers are released, and what is still in
   * flight is handed back. Returns the connection it was sending on (or null) first in {@code
   * connectionOut}.
   */
  List<Pending> close(PeerConnection[] connectionOut) {
    List<Pending> left = new ArrayList<>();
    sendLock.lock();
    try {
      closed = true;
      connectionOut[0] = connection;
      takeAll(left);
    } finally {
      sendLock.unlock();
    }
    wakeRoomWaiters();
    return left;
  }
}
