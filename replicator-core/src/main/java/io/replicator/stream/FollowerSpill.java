package io.replicator.stream;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replicator.change.FileChange;
import io.replicator.transport.PeerConnection;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An ASYNC follower's burst buffer (what DRBD Proxy sells): when its window is full, its changes
 * queue in order in a bounded {@link SpillQueue} on this node's disk instead of dropping the
 * follower to its dirty bitmap, and the stream's control thread sends them on as acknowledgements
 * free room. Only when the queue would pass its bound, or the link is lost with changes queued,
 * does the follower fall back to its bitmap: the connection is given up and every queued change is
 * marked dirty.
 *
 * <h2>Order</h2>
 * Once a change is queued, every later one is queued behind it until the queue has drained (one
 * FIFO), and a queued change leaves the queue only once it is numbered in the window, so the
 * follower gets changes in the order they took effect. Writers hold {@code routeLock} only to
 * choose between the window and the queue and to append (a buffered write); nobody waits for the
 * network under it.
 *
 * <h2>Crash</h2>
 * Appends are not fsynced. A queued change was made locally after {@link
 * PrimaryTracking#beforeLocalChange} recorded its extent in the follower's activity log, so a crash
 * of the primary is covered like a change in flight: the hot extents join the bitmap on the next
 * open. On top of that, a spill left by a process that stopped without closing is read back at
 * open and marked dirty (what the page cache kept of it).
 *
 * <h2>Resync</h2>
 * A resync's own changes never queue (they wait for room), and application changes do not queue
 * while a resync runs: the resync orders its reads against the sequence numbers of the changes
 * around them, which a change numbered late would break. A full window then falls back as before.
 */
final class FollowerSpill {
  private static final Logger log = LoggerFactory.getLogger(FollowerSpill.class);

  /** What {@link #submit} returns for a change that was queued: nothing to wait for. */
  static final SendWindow.Pending SPILLED = new SendWindow.Pending(0, new FileChange.Force("/", false), null);

  private final String peer;
  private final SpillQueue queue;
  private final SendWindow window;
  private final PrimaryTracking tracking;
  private final ResyncCoordinator resyncs;
  private final ScheduledExecutorService control;
  private final long boundBytes;

  private final ReentrantLock routeLock = new ReentrantLock();
  /** The connection the queued changes are for, null while nothing is queued; under routeLock. */
  private PeerConnection spillFor;
  /** The queue is being given up: writers leave their changes to the bitmap; under routeLock. */
  private boolean givenUp;
  /** Whether changes go to the queue (spillFor set); read by writers before the lock to skip a copy. */
  private volatile boolean spilling;
  private final AtomicBoolean drainScheduled = new AtomicBoolean();

  private FollowerSpill(String peer, SpillQueue queue, SendWindow window, PrimaryTracking tracking,
      ResyncCoordinator resyncs, ScheduledExecutorService control, long boundBytes) {
    this.peer = peer;
    this.queue = queue;
    this.window = window;
    this.tracking = tracking;
    this.resyncs = resyncs;
    this.control = control;
    this.boundBytes = boundBytes;
  }

  /**
   * Opens the spill in {@code directory}; changes left there by a process that did not close are
   * marked dirty in {@code tracking} and dropped.
   */
  static FollowerSpill open(String peer, Path directory, long boundBytes, SendWindow window,
      PrimaryTracking tracking, ResyncCoordinator resyncs, ScheduledExecutorService control) throws IOException {
    SpillQueue queue = SpillQueue.open(directory, boundBytes);
    FollowerSpill spill = new FollowerSpill(peer, queue, window, tracking, resyncs, control, boundBytes);
    try {
      if (!queue.isEmpty()) {
        spill.markAll("the primary stopped with " + queue.changes() + " change(s) spilled and not sent");
      }
      queue.clear();
    } catch (IOException | RuntimeException e) {
      queue.close();
      throw e;
    }
    window.onRoom(spill::roomFreed);
    control.scheduleWithFixedDelay(spill::drainIfSpilling, 100, 100, java.util.concurrent.TimeUnit.MILLISECONDS);
    return spill;
  }

  // ---------------------------------------------------------------- writers

  /**
   * Sends an application change, or queues it behind earlier queued ones or when the window is
   * full. Returns the window's pending change, {@link #SPILLED}, or null when it was not sent
   * (no link, or the follower falls back to its bitmap): the caller marks it as today.
   */
  SendWindow.Pending submit(FileChange change) throws IOException {
    // the copy is made before the lock, and only when it is likely to be sent at once
    ByteBuf payload = !spilling && change.payloadLength() > 0 && window.connection() != null
        ? SendWindow.copy(change) : null;
    routeLock.lock();
    try {
      if (spillFor == null) {
        SendWindow.Pending p = window.offer(change, payload, null);
        payload = null; // the window released it, or sends it
        if (p != SendWindow.NO_ROOM) {
          return p;
        }
        PeerConnection c = window.connection();
        if (c == null) {
          return null;
        }
        if (resyncs.running()) {
          window.giveUp(c, "the follower's window is full during a resync: it falls back to its dirty bitmap");
          return null;
        }
        spillFor = c;
        spilling = true;
        log.info("follower {}'s window is full: spilling its changes to this node's disk (up to {} bytes)",
            peer, boundBytes);
      }
      if (givenUp) {
        return null;
      }
      boolean appended;
      try {
        appended = queue.append(change);
      } catch (IOException e) {
        log.error("cannot spill a change for follower {}: {}", peer, e.toString());
        appended = false;
      }
      if (!appended) {
        // from here on the follower misses a suffix of the stream: the queued changes are marked on
        // the control thread (reading them back is no writer's job), this one by the caller
        givenUp = true;
        window.giveUp(spillFor, "follower's spill of " + boundBytes + " bytes is full: it falls back to its "
            + "dirty bitmap");
        requestDrain();
        return null;
      }
      return SPILLED;
    } finally {
      routeLock.unlock();
      if (payload != null) {
        payload.release();
      }
    }
  }

  /**
   * Sends {@code envelope} behind every change numbered so far when nothing is spilled (a spilled
   * change was made before it and would follow it); -1 otherwise. See {@link SendWindow#sendBehindNumbered}.
   */
  long sendWhenNothingSpilled(PeerConnection c, io.replicator.proto.Envelope envelope) {
    routeLock.lock();
    try {
      if (spillFor != null || givenUp) {
        return -1;
      }
      return window.sendBehindNumbered(c, envelope);
    } finally {
      routeLock.unlock();
    }
  }

  // ---------------------------------------------------------------- the drainer (control thread)

  private void roomFreed() {
    if (spilling) {
      requestDrain();
    }
  }

  private void requestDrain() {
    if (drainScheduled.compareAndSet(false, true)) {
      try {
        control.execute(this::drain);
      } catch (RejectedExecutionException e) {
        drainScheduled.set(false); // closing
      }
    }
  }

  private void drainIfSpilling() {
    if (spilling) {
      drain();
    }
  }

  /** Sends queued changes while the window has room; on the control thread. */
  private void drain() {
    drainScheduled.set(false);
    while (true) {
      SpillQueue.Head head;
      try {
        head = queue.peek();
      } catch (IOException e) {
        log.error("cannot read follower {}'s spill back: {}", peer, e.toString());
        giveUp("its spill could not be read back");
        return;
      }
      String why = null;
      routeLock.lock();
      try {
        if (head == null) {
          if (queue.isEmpty()) {
            if (spilling && !givenUp) {
              log.info("follower {}'s spill is drained", peer);
              spillFor = null;
              spilling = false;
            }
            if (!givenUp) {
              return;
            }
          } else {
            continue; // appended since the peek
          }
        }
        if (givenUp) {
          why = "its spill was full";
        } else if (resyncs.running()) {
          why = "a resync started with changes spilled";
        } else {
          ByteBuf payload = head.change().payloadLength() > 0 ? Unpooled.wrappedBuffer(head.change().payload()) : null;
          SendWindow.Pending p = window.offer(head.change(), payload, spillFor);
          if (p == SendWindow.NO_ROOM) {
            return; // the next acknowledgement asks again
          }
          if (p == null) {
            why = "the link was lost with changes spilled";
          } else {
            queue.remove();
            resyncs.touched(p.seq, head.change());
            continue;
          }
        }
      } catch (IOException e) {
        why = "its spill could not be sent: " + e.getMessage();
      } finally {
        routeLock.unlock();
      }
      giveUp(why);
      return;
    }
  }

  /**
   * The link the spill was for is gone (or never will take its changes): give it up and mark what
   * is queued as missed by the follower. On the control thread.
   */
  private void giveUp(String why) {
    PeerConnection c;
    routeLock.lock();
    try {
      givenUp = true; // writers leave their changes to the bitmap from now on
      c = spillFor;
    } finally {
      routeLock.unlock();
    }
    window.giveUp(c, "follower falls back to its dirty bitmap: " + why);
    long n = queue.changes();
    try {
      if (n > 0) {
        markAll(n + " spilled change(s) not sent: " + why);
      }
      queue.clear();
    } catch (IOException e) {
      // the out-of-date mark may not be durable: the activity log still covers a crash
      log.error("cannot mark follower {}'s spilled changes as missed: {}", peer, e.toString());
      try {
        queue.clear();
      } catch (IOException ignored) {
        // the files go at the next open
      }
    }
    routeLock.lock();
    try {
      spillFor = null;
      spilling = false;
      givenUp = false;
    } finally {
      routeLock.unlock();
    }
    log.warn("follower {} falls back to its dirty bitmap: {}; {} spilled change(s) marked", peer, why, n);
  }

  /** Marks every queued change in the follower's bitmap, durably. */
  private void markAll(String reason) throws IOException {
    tracking.startAlone(reason);
    queue.forEach(false, h -> {
      if (h.change() instanceof FileChange.Write w) {
        tracking.markWrite(w.path(), w.position(), h.payloadLength());
      } else {
        tracking.mark(h.change());
      }
    });
    tracking.flushBitmap();
  }

  /** The connection {@code c} closed: on the control thread, before any reconnect is decided. */
  void linkLost(PeerConnection c) {
    boolean mine;
    routeLock.lock();
    try {
      mine = spillFor == c && c != null;
    } finally {
      routeLock.unlock();
    }
    if (mine) {
      giveUp("the link was lost with changes spilled");
    }
  }

  // ---------------------------------------------------------------- status and close

  long bytes() {
    return queue.bytes();
  }

  long changes() {
    return queue.changes();
  }

  /** Waits (polling, up to the deadline) for the queue to drain into the window. */
  void awaitDrained(long deadlineNanos) {
    while (spilling && System.nanoTime() < deadlineNanos) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /**
   * After the control thread stopped: marks whatever is still queued as missed and deletes the
   * files. Returns how many changes were marked.
   */
  long close() throws IOException {
    long n = queue.changes();
    try {
      if (n > 0) {
        markAll("closed with " + n + " change(s) spilled and not sent");
      }
      queue.clear();
    } finally {
      queue.close();
    }
    return n;
  }
}
