package io.replicator.stream;

import io.replicator.meta.GenerationIds;
import io.replicator.proto.CopyMark;
import io.replicator.proto.CopyPosition;
import io.replicator.proto.Envelope;
import io.replicator.transport.PeerConnection;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.StampedLock;

/**
 * The primary's copy marks: while it has followers, a barrier every {@link #INTERVAL} that goes
 * into every copy's stream at the same point (no change is before it in one stream and after it in
 * another), carrying where each copy in sync stands. Each replica keeps by mark what it received
 * ({@link io.replicator.replica.UnsharedChanges}), so after a failover or a swap the new primary
 * knows from the generation ids and these positions what a follower may lack, and resyncs it from
 * a bitmap (DRBD 9's per-peer bitmaps) instead of by checksum.
 *
 * <p>Writers hold the barrier's read side only while their change is numbered into the streams
 * ({@link #enter}); a mark takes the write side for as long as it takes to queue one small frame
 * per stream, and skips its turn rather than wait behind a writer held up by a full window.
 */
final class CopyMarks implements AutoCloseable {
  static final Duration INTERVAL = Duration.ofMillis(200);
  /** Marks kept per copy while unconfirmed; older ones are forgotten (a coarser, still safe, position). */
  private static final int MAX_UNCONFIRMED = 4096;

  private final long epoch = GenerationIds.randomId();
  private final StampedLock barrier = new StampedLock();
  private final List<Copy> copies;
  private final ScheduledExecutorService timer;
  private long number; // the timer thread's

  private record Sent(long number, PeerConnection connection, long seq) {}

  private static final class Copy {
    final String name;
    final boolean secondary;
    final ReplicationStream stream;
    final ArrayDeque<Sent> unconfirmed = new ArrayDeque<>();
    CopyPosition last;

    Copy(String name, boolean secondary, ReplicationStream stream) {
      this.name = name;
      this.secondary = secondary;
      this.stream = stream;
    }
  }

  CopyMarks(ReplicationStream pair, List<ReplicaStreams.Follower> followers) {
    List<Copy> list = new ArrayList<>();
    list.add(new Copy("", true, pair));
    for (ReplicaStreams.Follower f : followers) {
      list.add(new Copy(f.name(), false, f.stream()));
    }
    this.copies = List.copyOf(list);
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "replicator-copy-marks");
      t.setDaemon(true);
      return t;
    });
    long every = INTERVAL.toMillis();
    timer.scheduleWithFixedDelay(this::emit, every, every, TimeUnit.MILLISECONDS);
  }

  long epoch() {
    return epoch;
  }

  /** A writer numbers its change into the streams: no mark in between. */
  long enter() {
    return barrier.readLock();
  }

  void exit(long stamp) {
    barrier.unlockRead(stamp);
  }

  /** Puts the next mark into every live stream; on the timer thread (and in tests). */
  synchronized void emit() {
    long stamp;
    try {
      stamp = barrier.tryWriteLock(20, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    if (stamp == 0) {
      return; // a writer waits for room in a window: the next turn
    }
    try {
      long n = ++number;
      CopyMark.Builder m = CopyMark.newBuilder().setEpoch(epoch).setNumber(n);
      for (Copy c : copies) {
        confirm(c);
        if (c.last != null) {
          m.addPositions(c.last);
        }
      }
      Envelope mark = Envelope.newBuilder().setCopyMark(m).build();
      for (Copy c : copies) {
        ReplicationStream.MarkSent sent = c.stream.sendMark(mark);
        if (sent != null) {
          c.unconfirmed.addLast(new Sent(n, sent.connection(), sent.seq()));
          if (c.unconfirmed.size() > MAX_UNCONFIRMED) {
            c.unconfirmed.removeFirst();
          }
        }
      }
    } finally {
      barrier.unlockWrite(stamp);
    }
  }

  /**
   * Moves a copy's position to the newest mark it applied everything before. Only a copy in sync
   * on the connection the mark went on counts: then every change before the mark was either sent
   * on that connection ahead of it or resynced since, and its applied acknowledgement covers them.
   */
  private static void confirm(Copy c) {
    PeerConnection live = c.stream.live();
    while (!c.unconfirmed.isEmpty() && c.unconfirmed.peekFirst().connection() != live) {
      c.unconfirmed.removeFirst(); // another connection's numbers: never confirmed
    }
    if (live == null || !c.stream.inSyncOn(live)) {
      return;
    }
    long applied = c.stream.appliedSeq();
    Sent passed = null;
    while (!c.unconfirmed.isEmpty() && c.unconfirmed.peekFirst().seq() <= applied) {
      passed = c.unconfirmed.removeFirst();
    }
    if (passed != null && c.stream.inSyncOn(live)) {
      c.last = CopyPosition.newBuilder().setName(c.name).setSecondary(c.secondary)
          .setGeneration(c.stream.generation()).setMark(passed.number()).build();
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
    try {
      timer.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
