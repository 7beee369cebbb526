package io.replicator.replica;

import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A delayed follower's receiving side of one session: every change goes into the spill log on one
 * writer thread, made durable once per batch, and counts as applied for the primary from then on
 * (the tree catches up after the delay, in {@link DelayedApply}). A change the log has no room for
 * stops the session: the primary's bitmap covers it and everything after it, so nothing is lost
 * and nothing waits.
 */
final class DelayIntake implements ApplyStage {
  private static final Logger log = LoggerFactory.getLogger(DelayIntake.class);
  /** Bytes received and not yet logged before the session stops reading. */
  private static final long MAX_QUEUED_BYTES = 16L << 20;

  private final DelayedApply delayed;
  private final ChangeApplier.Listener listener;
  private final Clock clock;
  private final Thread writer;

  // guarded by this
  private final ArrayDeque<Item> queue = new ArrayDeque<>();
  private long queuedBytes;
  private boolean stopped;
  private boolean busy;
  private boolean roomWanted;
  private IOException failure;
  private long appliedSeq;
  /** The catch-up resync's applier, after the log was full; only the writer thread touches it. */
  private ChangeApplier direct;

  /** A change to log, or a control step to run once everything before it is logged. */
  private record Item(long seq, FileChange change, Runnable release, ChangeApplier.ControlStep step) {}

  DelayIntake(DelayedApply delayed, ChangeApplier.Listener listener, Clock clock) {
    this.delayed = delayed;
    this.listener = listener;
    this.clock = clock;
    this.writer = new Thread(this::run, "replica-delay-intake");
    writer.setDaemon(true);
    writer.start();
  }

  @Override
  public boolean offer(long seq, FileChange change, Runnable release, boolean mayApplyHere) throws IOException {
    synchronized (this) {
      if (failure != null || stopped) {
        release.run();
        throw failure != null ? failure : new IOException("the delay intake is closed");
      }
      queue.add(new Item(seq, change, release, null));
      queuedBytes += change.payloadLength();
      notifyAll();
      if (queuedBytes >= MAX_QUEUED_BYTES) {
        roomWanted = true;
        return false;
      }
      return true;
    }
  }

  @Override
  public void control(ChangeApplier.ControlStep step) throws IOException {
    synchronized (this) {
      if (stopped) {
        throw new IOException("the delay intake is closed");
      }
      queue.add(new Item(0, null, () -> {}, step));
      notifyAll();
    }
  }

  @Override
  public synchronized long appliedSeq() {
    return appliedSeq;
  }

  @Override
  public synchronized ChangeApplier.Acknowledgement takeAcknowledgement(int maxRanges) {
    return new ChangeApplier.Acknowledgement(appliedSeq, new long[0], false);
  }

  @Override
  public synchronized long queuedBytes() {
    return queuedBytes;
  }

  @Override
  public synchronized IOException failure() {
    return failure;
  }

  /**
   * Called in order with the changes, on the writer thread. A resync that starts with nothing left
   * in the log after it was full is applied at once ({@link DelayedApply#catchingUp}); otherwise
   * the tree is reconciled later, when the log is applied.
   */
  @Override
  public void resyncTarget(boolean on) {
    try {
      if (on && direct == null && delayed.catchingUp()) {
        log.info("catch-up resync after the spill log was full: applied at once, not delayed");
        direct = delayed.directApplier(new ChangeApplier.Listener() {
          @Override
          public void onApplied(long seq) {
            synchronized (DelayIntake.this) {
              appliedSeq = Math.max(appliedSeq, seq);
              DelayIntake.this.notifyAll();
            }
            listener.onApplied(seq);
          }

          @Override
          public void onFailure(long seq, IOException cause) {
            fail(seq, cause);
          }
        });
      } else if (!on && direct != null) {
        closeDirect(true);
        delayed.caughtUp();
      }
    } catch (IOException e) {
      fail(appliedSeq(), e);
    }
  }

  /** The spill log is durable as it is written; a catch-up resync applied at once is flushed. */
  @Override
  public void makeAppliedDurable() throws IOException {
    ChangeApplier d = direct;
    if (d != null) {
      d.makeAppliedDurable();
    }
  }

  private void closeDirect(boolean settle) {
    ChangeApplier d = direct;
    direct = null;
    if (settle) {
      try {
        d.awaitIdle(Duration.ofSeconds(60));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    d.close();
  }

  @Override
  public synchronized boolean awaitIdle(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while ((!queue.isEmpty() || busy) && failure == null && !stopped) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return true;
  }

  @Override
  public synchronized boolean awaitApplied(long seq, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (appliedSeq < seq && failure == null && !stopped) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return appliedSeq >= seq;
  }

  @Override
  public void close() {
    List<Item> dropped;
    synchronized (this) {
      stopped = true;
      dropped = new ArrayList<>(queue);
      queue.clear();
      notifyAll();
    }
    for (Item i : dropped) {
      i.release().run();
    }
    try {
      writer.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (direct != null && !writer.isAlive()) {
      closeDirect(false);
    }
  }

  private void run() {
    List<Item> batch = new ArrayList<>();
    while (true) {
      synchronized (this) {
        while (queue.isEmpty() && !stopped) {
          try {
            wait();
          } catch (InterruptedException e) {
            return;
          }
        }
        if (stopped) {
          return;
        }
        batch.addAll(queue);
        queue.clear();
        busy = true;
      }
      try {
        logBatch(batch);
      } finally {
        batch.clear();
        synchronized (this) {
          busy = false;
          notifyAll();
        }
      }
    }
  }

  /** Logs the changes of a batch with one fsync, running control steps in order between them. */
  private void logBatch(List<Item> batch) {
    long lastLogged = -1;
    long bytes = 0;
    for (Item item : batch) {
      if (item.step() != null) {
        if (lastLogged >= 0 && !sync(lastLogged, bytes)) {
          return;
        }
        lastLogged = -1;
        bytes = 0;
        if (direct != null) {
          // a control step follows every change before it, applied
          try {
            direct.awaitIdle(Duration.ofSeconds(60));
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
        item.step().run();
        continue;
      }
      if (direct != null) {
        applyDirectly(item);
        continue;
      }
      try {
        if (failed()) {
          continue;
        }
        byte[] header = ChangeProtos.unnumbered(item.change()).toBuilder().setSeq(item.seq()).build().toByteArray();
        ByteBuffer payload = item.change().payloadLength() > 0 ? item.change().payload().duplicate()
            : ByteBuffer.allocate(0);
        if (!delayed.append(header, payload, clock.millis())) {
          fail(item.seq(), new IOException("the delayed follower's spill log is full ("
              + delayed.log().capacityBytes() + " bytes): this copy falls back to the primary's dirty bitmap "
              + "and cannot go back before this point"));
          continue;
        }
        lastLogged = item.seq();
        bytes += item.change().payloadLength();
      } catch (IOException | RuntimeException e) {
        fail(item.seq(), e instanceof IOException io ? io : new IOException(e.toString(), e));
      } finally {
        item.release().run();
      }
    }
    if (lastLogged >= 0) {
      sync(lastLogged, bytes);
    }
  }

  /** A change of the catch-up resync: to the tree at once; acknowledged as the applier applies it. */
  private void applyDirectly(Item item) {
    int length = item.change().payloadLength();
    boolean room = true;
    try {
      if (failed()) {
        item.release().run();
      } else {
        room = direct.offer(item.seq(), item.change(), item.release(), false);
      }
    } catch (IOException e) {
      fail(item.seq(), e);
    }
    if (!room) {
      try {
        direct.awaitIdle(Duration.ofSeconds(60));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    boolean wake;
    synchronized (this) {
      queuedBytes -= length;
      wake = roomWanted && queuedBytes < MAX_QUEUED_BYTES / 2;
      if (wake) {
        roomWanted = false;
      }
    }
    if (wake) {
      listener.onRoom();
    }
  }

  private synchronized boolean failed() {
    return failure != null;
  }

  /** Makes the logged changes durable and acknowledges them; false after a failure. */
  private boolean sync(long seq, long bytes) {
    try {
      delayed.sync();
    } catch (IOException e) {
      fail(seq, e);
      return false;
    }
    boolean room;
    synchronized (this) {
      appliedSeq = Math.max(appliedSeq, seq);
      queuedBytes -= bytes;
      room = roomWanted && queuedBytes < MAX_QUEUED_BYTES / 2;
      if (room) {
        roomWanted = false;
      }
      notifyAll();
    }
    listener.onApplied(seq);
    if (room) {
      listener.onRoom();
    }
    return true;
  }

  private void fail(long seq, IOException cause) {
    synchronized (this) {
      if (failure != null) {
        return;
      }
      failure = cause;
      notifyAll();
    }
    log.warn("delayed follower stops taking changes at {}: {}", seq, cause.getMessage());
    listener.onFailure(seq, cause);
  }
}
