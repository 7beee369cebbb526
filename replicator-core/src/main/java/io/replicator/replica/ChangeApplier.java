package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.ChangePaths;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.CopyOption;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.FileOwnerAttributeView;
import java.nio.file.attribute.PosixFileAttributeView;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The secondary's apply engine: takes the primary's numbered changes in seq order, applies them
 * under the replica root, and tracks how far they are applied so the network layer can
 * acknowledge them.
 *
 * <h2>Design</h2>
 *
 * <ul>
 *   <li><b>Lanes, no dispatcher.</b> The caller (the connection's I/O thread) hands each change
 *       straight to one of N lanes, chosen by a hash of its path, so changes to one path run in
 *       seq order on one thread while different paths run in parallel; a change crosses one
 *       thread hand-off on its way in. {@link #offer} never blocks; it touches files only for a
 *       small write or a create whose lane is idle, which it applies itself when asked to.
 *   <li><b>File data and file forces in lanes.</b> Writes, truncates, creates and the {@code
 *       Force} of a file run in the file's lane. A lane takes a run of queued {@code Force}s at
 *       once and fsyncs each distinct file once (group commit), and forces of files in different
 *       lanes run in parallel. A {@code Force} of a directory (or of the root) waits in its lane
 *       until every earlier change is applied, so the directory's fsync covers every entry made
 *       before it.
 *   <li><b>Barriers.</b> Namespace and attribute changes (and the network layer's control steps,
 *       such as writing a resync manifest) run once every earlier change is applied, and nothing
 *       later starts before they finish: later changes wait in a holding queue. A barrier runs on
 *       the lane that finished the last earlier change (or on the first lane when all were idle),
 *       so it costs no extra thread. Attribute changes are barriers because a directory's times or
 *       permissions interact with changes to its children, which live in other lanes.
 *   <li><b>Channels.</b> Each lane keeps a small LRU of open channels for its paths, so a write
 *       stream opens its file once; barriers evict the channels of the paths they delete, rename
 *       or replace (all of them once the tree is known to hold symbolic links, since a link makes
 *       two paths name one file).
 *   <li><b>Durability.</b> Directories in which a name was created, removed or renamed are
 *       remembered as namespace-dirty; every {@code Force} fsyncs them after its files, so a
 *       durable file is also durably named.
 *   <li><b>Progress and back-pressure.</b> A ring indexed by seq records completions;
 *       {@link #appliedSeq()} is the highest seq below which everything is applied (cumulative,
 *       so a change applied early in one lane is acknowledged once everything before it is).
 *       Changes received but not yet covered by it hold budget (a count and their bytes): {@link
 *       #offer} says when it is spent, and {@link Listener#onRoom()} when it is free again;
 *       {@link #submit} blocks instead.
 *   <li><b>Failure.</b> The primary only sends changes that succeeded, so a change failing here
 *       means the replica is not what the primary thinks. The first failure is reported once,
 *       nothing after its seq is applied (earlier changes still finish), every queued payload is
 *       released, and no repair is attempted.
 * </ul>
 */
final class ChangeApplier implements Closeable, ApplyStage {

  private static final Logger log = LoggerFactory.getLogger(ChangeApplier.class);

  /** Told about progress, the first failure and free budget; all calls come from apply threads. */
  interface Listener {

    /**
     * Every change with a seq up to {@code appliedSeq} is applied (a Force: durable). Called
     * whenever the value advances, possibly skipping values, always increasing, under an internal
     * lock: it must be cheap and must not call {@link #submit} or {@link #close}.
     */
    void onApplied(long appliedSeq);

    /**
     * The change {@code seq} could not be applied; nothing after it will be. Called at most once.
     * A {@link PathRefusedException} means the primary sent a path the replica refuses.
     */
    void onFailure(long seq, IOException cause);

    /** After {@link #offer} said the budget was spent, enough of it is free again. Must be cheap. */
    default void onRoom() {}

    /**
     * A change was applied ahead of an earlier one that is still running; {@link
     * #takeAcknowledgement} reports it. Must be cheap.
     */
    default void onAppliedAhead() {}
  }

  /** A step of the network layer run in order with the changes (a barrier without a seq). */
  @FunctionalInterface
  interface ControlStep {
    void run();
  }

  /**
   * Tuning of the applier.
   *
   * @param applyThreads lanes applying changes in parallel
   * @param channelCacheSize open file channels kept across all lanes
   * @param maxQueuedChanges received changes not yet applied before the budget is spent
   * @param maxQueuedBytes write bytes received and not yet applied before the budget is spent
   *     (a single larger write is still accepted when nothing else is queued)
   * @param closeTimeout how long {@link #close} waits for the threads to stop
   */
  record Options(
      int applyThreads,
      int channelCacheSize,
      int maxQueuedChanges,
      long maxQueuedBytes,
      Duration closeTimeout) {

    Options {
      checkArgument(applyThreads > 0, "applyThreads must be positive: %s", applyThreads);
      checkArgument(channelCacheSize > 0, "channelCacheSize must be positive: %s", channelCacheSize);
      checkArgument(maxQueuedChanges > 0, "maxQueuedChanges must be positive: %s", maxQueuedChanges);
      checkArgument(maxQueuedBytes > 0, "maxQueuedBytes must be positive: %s", maxQueuedBytes);
      checkNotNull(closeTimeout, "closeTimeout");
    }

    static Options defaults() {
      return new Options(4, 256, 10_000, 64L << 20, Duration.ofSeconds(10));
    }

    Options withApplyThreads(int value) {
      return new Options(value, channelCacheSize, maxQueuedChanges, maxQueuedBytes, closeTimeout);
    }

    Options withChannelCacheSize(int value) {
      return new Options(applyThreads, value, maxQueuedChanges, maxQueuedBytes, closeTimeout);
    }

    Options withMaxQueuedChanges(int value) {
      return new Options(applyThreads, channelCacheSize, value, maxQueuedBytes, closeTimeout);
    }

    Options withMaxQueuedBytes(long value) {
      return new Options(applyThreads, channelCacheSize, maxQueuedChanges, value, closeTimeout);
    }

    Options withCloseTimeout(Duration value) {
      return new Options(applyThreads, channelCacheSize, maxQueuedChanges, maxQueuedBytes, value);
    }
  }

  /** Tells a lane to stop. */
  private static final Task STOP = new Task(0, null, () -> {}, null);

  private final PathGuard guard;
  private final Listener listener;
  private final Options options;
  private final ApplyFaults faults;
  private final boolean directorySyncSupported;
  private final Lane[] lanes;
  /** Directories whose entries changed since they were last fsynced. */
  private final Set<Path> namespaceDirty = ConcurrentHashMap.newKeySet();
  /** One lane at a time syncs the namespace-dirty directories (see {@link #syncNamespaceDirty}). */
  private final ReentrantLock directorySyncLock = new ReentrantLock();

  // Dispatch state, guarded by dispatchLock (held for a few instructions per change).
  private final ReentrantLock dispatchLock = new ReentrantLock();
  /** Lane tasks handed out and not finished; a barrier waits for 0. */
  private int laneTasksRunning;
  /** True from the start of a barrier to its end; nothing is handed to lanes meanwhile. */
  private boolean barrierRunning;
  /** Changes that arrived behind a barrier that has not finished, in seq order; its head waits to run. */
  private final ArrayDeque<Task> held = new ArrayDeque<>();

  // Progress, guarded by progressLock.
  private final ReentrantLock progressLock = new ReentrantLock();
  private final Condition progressChanged = progressLock.newCondition();
  // Ring slots by seq modulo its length; only seqs in (appliedSeq, receivedSeq] are live. It grows
  // when more changes than it holds are queued (offer accepts past the budget).
  private boolean[] doneRing;
  private int[] bytesRing;
  private long queuedBytes;
  /** offer reported a spent budget; onRoom is owed once it frees up. */
  private boolean roomOwed;
  /** Seqs applied ahead of appliedSeq and not yet reported by {@link #takeAcknowledgement}. */
  private long[] appliedAhead = new long[64];
  private int appliedAheadCount;
  private IOException failure;
  private long failureSeq;
  private volatile long receivedSeq;
  private volatile long appliedSeq;
  /** Changes above this seq are not applied; lowered by a failure. */
  private volatile long stopAfterSeq = Long.MAX_VALUE;
  private volatile boolean closed;
  private final AtomicBoolean closeStarted = new AtomicBoolean();

  private final LongAdder changesApplied = new LongAdder();
  private final LongAdder bytesWritten = new LongAdder();
  private final LongAdder fsyncs = new LongAdder();
  private final LongAdder forceGroups = new LongAdder();

  /**
   * Starts an applier (its threads) for an existing root directory.
   *
   * @throws IOException when the root cannot be resolved to a real directory
   */
  ChangeApplier(Path root, Listener listener, Options options) throws IOException {
    this(root, listener, options, ApplyFaults.NONE);
  }

  ChangeApplier(Path root, Listener listener, Options options, ApplyFaults faults)
      throws IOException {
    // the only writer of the tree, forgetting remembered directories after every barrier
    this.guard = new PathGuard(root, true);
    this.listener = checkNotNull(listener, "listener");
    this.options = checkNotNull(options, "options");
    this.faults = checkNotNull(faults, "faults");
    this.directorySyncSupported = probeDirectorySync(guard.root());
    int ring = Integer.highestOneBit(Math.max(16, options.maxQueuedChanges()) - 1) << 1;
    this.doneRing = new boolean[ring];
    this.bytesRing = new int[ring];
    int perLaneChannels = Math.max(1, options.channelCacheSize() / options.applyThreads());
    this.lanes = new Lane[options.applyThreads()];
    for (int i = 0; i < lanes.length; i++) {
      lanes[i] = new Lane(i, perLaneChannels);
    }
    for (Lane lane : lanes) {
      lane.thread.start();
    }
    log.info(
        "Applying changes under {} with {} lanes (directory fsync {})",
        guard.root(),
        lanes.length,
        directorySyncSupported ? "on" : "not supported by the provider");
  }

  /**
   * Hands over the next change, waiting while the budget is spent. Ownership of {@code release}
   * passes to the applier in every case: it runs exactly once, when the change's payload is no
   * longer needed (applied, skipped after a failure, discarded by close, or right away when this
   * method throws).
   *
   * <p>Called by one thread, with seqs consecutive after the first (any positive value). Never
   * does file I/O.
   *
   * @throws OutOfSequenceException on a gap, a repeat or a non-positive seq
   * @throws IOException when the applier is closed or has stopped after a failure
   * @throws InterruptedException when interrupted while waiting for budget
   */
  void submit(long seq, FileChange change, Runnable release)
      throws IOException, InterruptedException {
    checkNotNull(release, "release");
    boolean waited = false;
    try {
      checkNotNull(change, "change");
      progressLock.lockInterruptibly();
      try {
        checkRunning();
        int bytes = change instanceof FileChange.Write w ? w.length() : 0;
        while (receivedSeq != 0 && !hasRoom(bytes)) {
          progressChanged.await();
          checkRunning();
        }
      } finally {
        progressLock.unlock();
      }
      waited = true;
    } finally {
      if (!waited) {
        release.run();
      }
    }
    offer(seq, change, release);
  }

  /**
   * Hands over the next change without ever blocking; the same contract as {@link #submit}
   * otherwise. The change is accepted even past the budget.
   *
   * @return false when the budget is now spent: the caller should stop reading input until
   *     {@link Listener#onRoom()}
   */
  boolean offer(long seq, FileChange change, Runnable release) throws IOException {
    return offer(seq, change, release, false);
  }

  /**
   * {@link #offer}, and when {@code mayApplyHere}, a small write or a create whose lane is idle
   * (and no barrier pending) is applied on the calling thread instead of waking the lane: the
   * receiving thread of any synchronous mirror writes what it receives, and a hand-off to a lane
   * and back costs two thread wake-ups per write. Fsyncs, truncates, namespace changes and large
   * writes always go to a lane.
   */
  public boolean offer(long seq, FileChange change, Runnable release, boolean mayApplyHere) throws IOException {
    checkNotNull(release, "release");
    Task task = new Task(seq, change, release, null);
    boolean handedOver = false;
    boolean room;
    Lane here;
    try {
      checkNotNull(change, "change");
      room = reserve(task);
      here = dispatch(task, mayApplyHere && appliesHere(change));
      handedOver = true;
      releaseIfClosed();
    } finally {
      if (!handedOver) {
        task.release();
      }
    }
    if (here != null) {
      try {
        runData(here, task);
      } finally {
        laneTaskDone(here, false);
      }
    }
    return room;
  }

  /** Changes cheap enough to apply on the receiving thread: page-cache work without an fsync. */
  private static boolean appliesHere(FileChange change) {
    return (change instanceof FileChange.Write w && w.length() <= APPLY_HERE_BYTES)
        || change instanceof FileChange.CreateFile;
  }

  /** Largest write applied on the receiving thread. */
  private static final int APPLY_HERE_BYTES = 64 * 1024;

  /**
   * Runs {@code step} after every change handed over before it is applied, and before any handed
   * over after it; on an apply thread, so it may do I/O and block. It runs even after a failure
   * (it can ask {@link #failure()}) but not after close.
   */
  public void control(ControlStep step) throws IOException {
    checkNotNull(step, "step");
    progressLock.lock();
    try {
      if (closed) {
        throw new IOException("the applier is closed");
      }
    } finally {
      progressLock.unlock();
    }
    dispatch(new Task(0, null, () -> {}, step));
    releaseIfClosed();
  }

  /** The last seq handed to {@link #submit}; 0 before the first. */
  long receivedSeq() {
    return receivedSeq;
  }

  /** Every change up to this seq is applied; the first seq minus one before any is. */
  public long appliedSeq() {
    return appliedSeq;
  }

  /**
   * What to acknowledge now: the cumulative applied seq, and up to {@code maxRanges} ranges
   * {@code [first, last]} of changes applied ahead of it that were not reported before, in
   * ascending order (flattened into pairs). The rest stays for the next call.
   */
  public Acknowledgement takeAcknowledgement(int maxRanges) {
    progressLock.lock();
    try {
      long applied = appliedSeq;
      if (appliedAheadCount == 0) {
        return new Acknowledgement(applied, NO_RANGES, false);
      }
      java.util.Arrays.sort(appliedAhead, 0, appliedAheadCount);
      long[] ranges = new long[Math.min(appliedAheadCount, maxRanges) * 2];
      int n = 0;
      int i = 0;
      for (; i < appliedAheadCount; i++) {
        long seq = appliedAhead[i];
        if (seq <= applied) {
          continue; // covered by the cumulative seq since
        }
        if (n > 0 && ranges[n - 1] == seq - 1) {
          ranges[n - 1] = seq;
        } else if (n < ranges.length) {
          ranges[n++] = seq;
          ranges[n++] = seq;
        } else {
          break;
        }
      }
      int left = appliedAheadCount - i;
      System.arraycopy(appliedAhead, i, appliedAhead, 0, left);
      appliedAheadCount = left;
      return new Acknowledgement(applied, java.util.Arrays.copyOf(ranges, n), left > 0);
    } finally {
      progressLock.unlock();
    }
  }

  private static final long[] NO_RANGES = new long[0];

  /**
   * See {@link #takeAcknowledgement}.
   *
   * @param appliedSeq every change up to it is applied
   * @param appliedRanges pairs of bounds of changes applied ahead of it
   * @param more whether ranges were left for the next acknowledgement
   */
  record Acknowledgement(long appliedSeq, long[] appliedRanges, boolean more) {}

  /** Write bytes received and not yet applied. */
  public long queuedBytes() {
    progressLock.lock();
    try {
      return queuedBytes;
    } finally {
      progressLock.unlock();
    }
  }

  /** The failure that stopped the applier, or null. */
  public IOException failure() {
    progressLock.lock();
    try {
      return failure;
    } finally {
      progressLock.unlock();
    }
  }

  /** Changes applied (including each Force of a group). */
  long changesApplied() {
    return changesApplied.sum();
  }

  /** Bytes written by Write changes. */
  long bytesWritten() {
    return bytesWritten.sum();
  }

  /** fsync calls made on files and directories. */
  long fsyncs() {
    return fsyncs.sum();
  }

  /** Runs of Force changes executed together (one fsync per distinct file in each). */
  long forceGroups() {
    return forceGroups.sum();
  }

  /** Channels open in the caches right now. */
  int cachedChannels() {
    int total = 0;
    for (Lane lane : lanes) {
      total += lane.channels.size();
    }
    return total;
  }

  /**
   * Waits until everything received is applied, the applier failed, or it closed.
   *
   * @return true when everything received is applied
   */
  public boolean awaitIdle(Duration timeout) throws InterruptedException {
    long remaining = timeout.toNanos();
    progressLock.lock();
    try {
      while (appliedSeq != receivedSeq && failure == null && !closed) {
        if (remaining <= 0) {
          return false;
        }
        remaining = progressChanged.awaitNanos(remaining);
      }
      return appliedSeq == receivedSeq;
    } finally {
      progressLock.unlock();
    }
  }

  /**
   * Waits until every change up to {@code seq} is applied, the applier failed, or it closed.
   *
   * @return true when everything up to {@code seq} is applied
   */
  public boolean awaitApplied(long seq, Duration timeout) throws InterruptedException {
    long remaining = timeout.toNanos();
    progressLock.lock();
    try {
      while (appliedSeq < seq && receivedSeq != 0 && failure == null && !closed) {
        if (remaining <= 0) {
          return false;
        }
        remaining = progressChanged.awaitNanos(remaining);
      }
      return appliedSeq >= seq || receivedSeq == 0;
    } finally {
      progressLock.unlock();
    }
  }

  /**
   * Stops applying: changes still queued are released without being applied, the threads stop
   * (waiting at most the configured close timeout), cached channels close. Idempotent.
   */
  @Override
  public void close() {
    if (!closeStarted.compareAndSet(false, true)) {
      return;
    }
    progressLock.lock();
    try {
      closed = true;
      progressChanged.signalAll();
    } finally {
      progressLock.unlock();
    }
    releaseHeld();
    for (Lane lane : lanes) {
      releaseQueued(lane.queue);
      lane.queue.offer(STOP);
    }
    long deadline = System.nanoTime() + options.closeTimeout().toNanos();
    boolean stopped = true;
    for (Lane lane : lanes) {
      stopped &= join(lane.thread, deadline);
    }
    if (!stopped) {
      // Stuck in I/O (or a fault hook): an interrupt closes the channel it is blocked on.
      log.warn("Apply threads did not stop within {}; interrupting them", options.closeTimeout());
      for (Lane lane : lanes) {
        lane.thread.interrupt();
      }
      long grace = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
      for (Lane lane : lanes) {
        if (!join(lane.thread, grace)) {
          log.warn("{} still running after close", lane.thread.getName());
        }
      }
    }
    releaseHeld();
    for (Lane lane : lanes) {
      releaseQueued(lane.queue);
      lane.channels.closeAll();
    }
    log.info(
        "Applier for {} closed at received seq {}, applied seq {}",
        guard.root(),
        receivedSeq,
        appliedSeq);
  }

  // ---------------------------------------------------------------- progress and budget

  /** Numbers the task in; true while the budget holds after it. */
  private boolean reserve(Task task) throws IOException {
    long seq = task.seq;
    progressLock.lock();
    try {
      checkRunning();
      if (seq <= 0) {
        throw new OutOfSequenceException("seq " + seq + " is not positive");
      }
      long expected = receivedSeq + 1;
      if (receivedSeq != 0 && seq != expected) {
        throw new OutOfSequenceException(
            (seq <= receivedSeq ? "repeated" : "gap before") + " seq " + seq + ": expected " + expected);
      }
      if (receivedSeq == 0) {
        appliedSeq = seq - 1;
      }
      if (seq - appliedSeq > doneRing.length) {
        growRing();
      }
      int slot = slot(seq);
      doneRing[slot] = false;
      bytesRing[slot] = task.bytes;
      queuedBytes += task.bytes;
      receivedSeq = seq;
      boolean room = hasRoom(0);
      if (!room) {
        roomOwed = true;
      }
      return room;
    } finally {
      progressLock.unlock();
    }
  }

  /** Whether {@code bytes} more fit the budget (a single change of any size fits an empty queue). */
  private boolean hasRoom(int bytes) {
    return receivedSeq - appliedSeq < options.maxQueuedChanges()
        && (queuedBytes == 0 || queuedBytes + bytes <= options.maxQueuedBytes());
  }

  /** Doubles the ring, keeping the live slots; under progressLock. */
  private void growRing() {
    boolean[] done = new boolean[doneRing.length * 2];
    int[] bytes = new int[bytesRing.length * 2];
    for (long s = appliedSeq + 1; s <= receivedSeq; s++) {
      done[(int) (s & (done.length - 1))] = doneRing[slot(s)];
      bytes[(int) (s & (bytes.length - 1))] = bytesRing[slot(s)];
    }
    doneRing = done;
    bytesRing = bytes;
  }

  private void checkRunning() throws IOException {
    if (closed) {
      throw new IOException("the applier is closed");
    }
    if (failure != null) {
      throw new IOException("the applier stopped after seq " + failureSeq + " failed", failure);
    }
  }

  private void markApplied(long seq) {
    changesApplied.increment();
    boolean room = false;
    boolean ahead = false;
    progressLock.lock();
    try {
      doneRing[slot(seq)] = true;
      long applied = appliedSeq;
      while (applied < receivedSeq && doneRing[slot(applied + 1)]) {
        applied++;
        int slot = slot(applied);
        doneRing[slot] = false;
        queuedBytes -= bytesRing[slot];
      }
      if (seq > applied) {
        // applied ahead of an earlier change still running: reported on its own
        if (appliedAheadCount == appliedAhead.length) {
          appliedAhead = java.util.Arrays.copyOf(appliedAhead, appliedAhead.length * 2);
        }
        appliedAhead[appliedAheadCount++] = seq;
        ahead = true;
      }
      if (applied != appliedSeq) {
        appliedSeq = applied;
        progressChanged.signalAll();
        // Under the lock so that calls never go backwards when two lanes finish together.
        try {
          listener.onApplied(applied);
        } catch (RuntimeException e) {
          log.error("onApplied listener failed", e);
        }
        // Resume the input only once a good part of the budget is free, not at the first change.
        if (roomOwed && receivedSeq - appliedSeq <= options.maxQueuedChanges() / 2
            && queuedBytes <= options.maxQueuedBytes() / 2) {
          roomOwed = false;
          room = true;
        }
      }
    } finally {
      progressLock.unlock();
    }
    try {
      if (ahead) {
        listener.onAppliedAhead();
      }
      if (room) {
        listener.onRoom();
      }
    } catch (RuntimeException e) {
      log.error("applier listener failed", e);
    }
  }

  /**
   * While this replica is a resync target, a change that finds the tree not as the primary had it
   * (a file or parent the resync has not created yet, an extra entry it has not removed yet) is
   * skipped instead of stopping the applier: the resync reaches that path later and reconciles it
   * from the primary's state, which includes the change. Set in order with the changes.
   */
  public void resyncTarget(boolean on) {
    resyncTarget = on;
  }

  private volatile boolean resyncTarget;
  private final LongAdder skippedDuringResync = new LongAdder();

  /** True when {@code cause} is a namespace mismatch a running resync repairs. */
  private boolean skippable(Exception cause) {
    return resyncTarget && !(cause instanceof PathRefusedException)
        && (cause instanceof java.nio.file.NoSuchFileException
            || cause instanceof java.nio.file.NotDirectoryException
            || cause instanceof java.nio.file.DirectoryNotEmptyException
            || cause instanceof FileAlreadyExistsException);
  }

  /** Changes skipped because the tree was still being resynced. */
  long skippedDuringResync() {
    return skippedDuringResync.sum();
  }

  private void fail(long seq, Exception cause) {
    if (skippable(cause)) {
      log.debug("seq {} skipped while resyncing: {}", seq, cause.toString());
      skippedDuringResync.increment();
      markApplied(seq);
      return;
    }
    IOException error =
        cause instanceof IOException io
            ? io
            : new IOException("unexpected error applying seq " + seq + ": " + cause, cause);
    boolean report;
    progressLock.lock();
    try {
      stopAfterSeq = Math.min(stopAfterSeq, seq - 1);
      if (closed) {
        // I/O interrupted by close is not the replica diverging.
        log.debug("seq {} not applied during close: {}", seq, error.toString());
        return;
      }
      report = failure == null;
      if (report) {
        failure = error;
        failureSeq = seq;
      }
      progressChanged.signalAll();
    } finally {
      progressLock.unlock();
    }
    if (report) {
      // the listener says why, once, in the operator's terms; the trace is for whoever debugs
      log.debug("apply failure at seq {}; applying stops here", seq, error);
      try {
        listener.onFailure(seq, error);
      } catch (RuntimeException e) {
        log.error("onFailure listener failed", e);
      }
    } else {
      log.warn("Another apply failure at seq {} after the first one: {}", seq, error.toString());
    }
  }

  private boolean skipped(Task task) {
    return closed || (task.step == null && task.seq > stopAfterSeq);
  }

  private int slot(long seq) {
    return (int) (seq & (doneRing.length - 1));
  }

  /** Waits until every change before {@code seq} is applied (or the applier stopped). */
  private void awaitAppliedBefore(long seq) throws InterruptedException {
    progressLock.lock();
    try {
      while (appliedSeq < seq - 1 && failure == null && !closed) {
        progressChanged.await();
      }
    } finally {
      progressLock.unlock();
    }
  }

  // ---------------------------------------------------------------- dispatch

  /**
   * Hands a task to its lane, or holds it behind a barrier; a barrier with no lane task running
   * starts at once on the first lane. Called by the one submitting thread.
   */
  private void dispatch(Task task) {
    dispatch(task, false);
  }

  /**
   * As {@link #dispatch(Task)}; when {@code mayApplyHere} and the task's lane is idle, it is not
   * queued but counted as running, and its lane returned for the caller to run it (then {@link
   * #laneTaskDone}).
   */
  private Lane dispatch(Task task, boolean mayApplyHere) {
    Task startBarrier = null;
    Lane here = null;
    dispatchLock.lock();
    try {
      if (barrierRunning || !held.isEmpty()) {
        held.addLast(task);
      } else if (!task.isBarrier()) {
        laneTasksRunning++;
        Lane lane = lanes[laneOf(task)];
        lane.tasks++;
        if (mayApplyHere && lane.tasks == 1) {
          here = lane;
        } else {
          lane.queue.add(task);
        }
      } else if (laneTasksRunning == 0) {
        barrierRunning = true;
        startBarrier = task;
      } else {
        held.addLast(task);
      }
    } finally {
      dispatchLock.unlock();
    }
    if (startBarrier != null) {
      // Every lane is idle: the first one runs it, so it still runs off the caller's thread.
      lanes[0].queue.add(startBarrier);
    }
    return here;
  }

  /**
   * A lane task finished: when it was the last one and a barrier waits, run it here (or, when
   * {@code mayRunBarrier} is false, on the first lane).
   */
  private void laneTaskDone(Lane lane, boolean mayRunBarrier) {
    Task barrier = null;
    dispatchLock.lock();
    try {
      laneTasksRunning--;
      lane.tasks--;
      if (laneTasksRunning == 0 && !barrierRunning && !held.isEmpty()) {
        // The head of the held queue is a barrier: a lane task is only held behind one.
        barrier = held.pollFirst();
        barrierRunning = true;
      }
    } finally {
      dispatchLock.unlock();
    }
    if (barrier != null) {
      if (mayRunBarrier) {
        runBarrierChain(lane, barrier);
      } else {
        lanes[0].queue.add(barrier);
      }
    }
  }

  /**
   * Runs a barrier, then releases what was held behind it: lane tasks go to their lanes, and a
   * next barrier runs here too when no lane task precedes it.
   */
  private void runBarrierChain(Lane lane, Task first) {
    Task barrier = first;
    while (barrier != null) {
      runBarrier(lane, barrier);
      Task next = null;
      dispatchLock.lock();
      try {
        barrierRunning = false;
        while (!held.isEmpty()) {
          Task t = held.peekFirst();
          if (!t.isBarrier()) {
            held.pollFirst();
            laneTasksRunning++;
            Lane target = lanes[laneOf(t)];
            target.tasks++;
            target.queue.add(t);
          } else if (laneTasksRunning == 0) {
            next = held.pollFirst();
            barrierRunning = true;
            break;
          } else {
            break; // runs when the last lane task before it finishes
          }
        }
      } finally {
        dispatchLock.unlock();
      }
      barrier = next;
    }
  }

  private void releaseHeld() {
    List<Task> dropped;
    dispatchLock.lock();
    try {
      dropped = new ArrayList<>(held);
      held.clear();
    } finally {
      dispatchLock.unlock();
    }
    for (Task t : dropped) {
      t.release();
    }
  }

  /**
   * A relative target is stored as given; an absolute one names a place in the replicated tree
   * (the primary's wrapper maps "/" to its root), so it is mapped onto this replica's root.
   */
  private Path linkTarget(String target) {
    if (!target.startsWith("/")) {
      return guard.root().getFileSystem().getPath(target);
    }
    Path mapped = guard.root();
    for (String element : target.split("/")) {
      if (!element.isEmpty()) {
        mapped = mapped.resolve(element);
      }
    }
    return mapped;
  }

  private static boolean isBarrierChange(FileChange change) {
    return change.isNamespaceChange()
        || change instanceof FileChange.SetTimes
        || change instanceof FileChange.SetPermissions
        || change instanceof FileChange.SetOwner;
  }

  private int laneOf(Task task) {
    // Spread the String hash; paths differing in one character must not crowd one lane.
    return Math.floorMod(task.change.path().hashCode() * 0x9E3779B9, lanes.length);
  }

  private void runBarrier(Lane lane, Task task) {
    try {
      runBarrierTask(task);
    } finally {
      // a barrier may remove, rename or replace directories (a control step may do anything):
      // the guard reads ancestors again; nothing else runs while a barrier does
      guard.forgetDirectories();
    }
  }

  private void runBarrierTask(Task task) {
    if (task.step != null) {
      try {
        if (!closed) {
          task.step.run();
        }
      } catch (RuntimeException e) {
        log.error("Control step failed", e);
      } finally {
        task.release();
      }
      return;
    }
    if (skipped(task)) {
      task.release();
      return;
    }
    boolean applied = false;
    Exception error = null;
    try {
      faults.beforeApply(task.seq, task.change);
      applyBarrier(task.change);
      applied = true;
    } catch (IOException | RuntimeException e) {
      error = e;
    } finally {
      task.release();
    }
    if (applied) {
      markApplied(task.seq);
    } else {
      fail(task.seq, error);
    }
  }

  // ---------------------------------------------------------------- lanes

  /** Applies one data change in its lane. */
  private void runData(Lane lane, Task task) {
    if (skipped(task)) {
      task.release();
      return;
    }
    boolean applied = false;
    Exception error = null;
    try {
      faults.beforeApply(task.seq, task.change);
      applyData(lane, task.change);
      applied = true;
    } catch (IOException | RuntimeException e) {
      error = e;
    } finally {
      task.release();
    }
    if (applied) {
      markApplied(task.seq);
    } else {
      fail(task.seq, error);
    }
  }

  /**
   * Makes a run of Forces durable, each distinct file once (group commit). A Force of a directory
   * (or of the root) is not grouped: its entries may be made by changes in any lane, so it waits
   * until every change before it is applied, then syncs the directory.
   */
  private void runForces(Lane lane, List<Task> group) {
    forceGroups.increment();
    List<Task> files = new ArrayList<>(group.size());
    List<Path> filePaths = new ArrayList<>(group.size());
    for (int i = 0; i < group.size(); i++) {
      Task task = group.get(i);
      if (skipped(task)) {
        task.release();
        continue;
      }
      Path path;
      boolean directory;
      if (((FileChange.Force) task.change).orderOnly()) {
        // the Forces grouped before it are made durable first: it waits for every earlier change
        if (!syncFiles(lane, files, filePaths)) {
          task.release();
          releaseAll(group.subList(i + 1, group.size()));
          return;
        }
        files.clear();
        filePaths.clear();
        if (!orderBarrier(task)) {
          releaseAll(group.subList(i + 1, group.size()));
          return;
        }
        continue;
      }
      try {
        faults.beforeApply(task.seq, task.change);
        if (lane.channels.get(task.change.path()) != null) {
          // a file this lane holds open (it applied its writes): the fsync goes through that
          // channel, so there is no name to look up and it is no directory
          files.add(task);
          filePaths.add(null);
          continue;
        }
        path = guard.resolveFollowingLinks(task.change.path());
        directory = Files.isDirectory(path);
      } catch (IOException | RuntimeException e) {
        if (skippable(e)) {
          // not there yet on a copy being resynced: nothing of it to make durable
          task.release();
          markApplied(task.seq);
          continue;
        }
        // The Forces before this one are still made durable and acknowledged; none after it.
        boolean ok = syncFiles(lane, files, filePaths);
        task.release();
        if (ok) {
          fail(task.seq, e);
        }
        releaseAll(group.subList(i + 1, group.size()));
        return;
      }
      if (!directory) {
        files.add(task);
        filePaths.add(path);
        continue;
      }
      if (!syncFiles(lane, files, filePaths)) {
        task.release();
        releaseAll(group.subList(i + 1, group.size()));
        return;
      }
      if (!syncDirectoryForce(task, path)) {
        releaseAll(group.subList(i + 1, group.size()));
        return;
      }
    }
    syncFiles(lane, files, filePaths);
  }

  /** fsyncs the files of some Forces, then the namespace-dirty directories; false after a failure. */
  private boolean syncFiles(Lane lane, List<Task> forces, List<Path> paths) {
    if (forces.isEmpty()) {
      return true;
    }
    Exception error = null;
    try {
      Map<String, Boolean> metadataByPath = new LinkedHashMap<>();
      Map<String, Path> resolved = new LinkedHashMap<>();
      for (int i = 0; i < forces.size(); i++) {
        FileChange.Force force = (FileChange.Force) forces.get(i).change;
        metadataByPath.merge(force.path(), force.metadata(), Boolean::logicalOr);
        resolved.putIfAbsent(force.path(), paths.get(i));
      }
      for (Map.Entry<String, Boolean> entry : metadataByPath.entrySet()) {
        try {
          syncFile(lane, entry.getKey(), resolved.get(entry.getKey()), entry.getValue());
        } catch (IOException e) {
          if (!skippable(e)) {
            throw e;
          }
          // gone on a copy being resynced: the resync brings it back, durable with the rest
        }
      }
      syncNamespaceDirty(new HashSet<>());
    } catch (IOException | RuntimeException e) {
      error = e;
    } finally {
      releaseAll(forces);
    }
    if (error != null) {
      // Which Force's fsync failed does not matter: none of them is durable for sure.
      fail(forces.get(0).seq, error);
      return false;
    }
    for (Task task : forces) {
      markApplied(task.seq);
    }
    forces.clear();
    paths.clear();
    return true;
  }

  /** A Force of order only: applied once every earlier change is, with no fsync. Releases it. */
  private boolean orderBarrier(Task task) {
    try {
      awaitAppliedBefore(task.seq);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      task.release();
      fail(task.seq, new java.io.InterruptedIOException("interrupted before a barrier"));
      return false;
    }
    task.release();
    if (skipped(task)) {
      return false; // an earlier change failed meanwhile
    }
    markApplied(task.seq);
    return true;
  }

  /** A directory's Force: after every earlier change, the directory and the dirty ones. Releases it. */
  private boolean syncDirectoryForce(Task task, Path directory) {
    Exception error = null;
    try {
      awaitAppliedBefore(task.seq);
      if (skipped(task)) {
        return false; // an earlier change failed meanwhile
      }
      Set<Path> synced = new HashSet<>();
      Path real = directory.toRealPath();
      synced.add(real);
      syncDirectory(real);
      syncNamespaceDirty(synced);
    } catch (IOException | RuntimeException e) {
      error = e;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      error = new java.io.InterruptedIOException("interrupted before a directory fsync");
    } finally {
      task.release();
    }
    if (error != null && !skippable(error)) {
      fail(task.seq, error);
      return false;
    }
    markApplied(task.seq);
    return true;
  }

  private static void releaseAll(List<Task> tasks) {
    for (Task task : tasks) {
      task.release();
    }
  }

  // ---------------------------------------------------------------- applying

  private void applyBarrier(FileChange change) throws IOException {
    if (change instanceof FileChange.MakeDirectory m) {
      Path dir = guard.resolveNoFollow(m.path());
      try {
        Files.createDirectory(dir);
        markNamespaceDirty(dir);
      } catch (FileAlreadyExistsException e) {
        // Already there is fine (a change seen twice across a reconnect); anything else is not.
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
          throw e;
        }
      }
    } else if (change instanceof FileChange.Delete d) {
      Path path = guard.resolveNoFollow(d.path());
      evictChannels(d.path());
      Files.delete(path);
      markNamespaceDirty(path);
    } else if (change instanceof FileChange.Move m) {
      Path source = guard.resolveNoFollow(m.source());
      Path target = guard.resolveNoFollow(m.target());
      if (m.replay() && (!Files.exists(source, LinkOption.NOFOLLOW_LINKS)
          || (!m.replaceExisting() && Files.exists(target, LinkOption.NOFOLLOW_LINKS)))) {
        return; // this copy differs from what the rename was made on: the resync reconciles both names
      }
      evictChannels(m.source(), m.target());
      List<CopyOption> moveOptions = new ArrayList<>(2);
      if (m.atomic()) {
        moveOptions.add(StandardCopyOption.ATOMIC_MOVE);
      }
      if (m.replaceExisting()) {
        moveOptions.add(StandardCopyOption.REPLACE_EXISTING);
      }
      if (m.replay()) {
        try {
          Files.move(source, target, moveOptions.toArray(CopyOption[]::new));
        } catch (java.nio.file.FileSystemException e) {
          // a directory in the way, say: the resync reconciles both names whatever happened here
          log.debug("replayed rename {} -> {} skipped: {}", m.source(), m.target(), e.toString());
          return;
        }
      } else {
        Files.move(source, target, moveOptions.toArray(CopyOption[]::new));
      }
      markNamespaceDirty(source);
      markNamespaceDirty(target);
      renameDirtyDirectories(source, target);
    } else if (change instanceof FileChange.Copy c) {
      // The replica's source equals the primary's by construction, so copy it locally.
      Path source = guard.resolveFollowingLinks(c.source());
      Path target = guard.resolveNoFollow(c.target());
      List<CopyOption> copyOptions = new ArrayList<>(2);
      if (c.replaceExisting()) {
        evictChannels(c.target());
        copyOptions.add(StandardCopyOption.REPLACE_EXISTING);
      }
      if (c.copyAttributes()) {
        copyOptions.add(StandardCopyOption.COPY_ATTRIBUTES);
      }
      Files.copy(source, target, copyOptions.toArray(CopyOption[]::new));
      markNamespaceDirty(target);
    } else if (change instanceof FileChange.CreateSymbolicLink l) {
      Path link = guard.resolveNoFollow(l.path());
      // Never resolved here: the guard checks it whenever it is followed.
      Files.createSymbolicLink(link, linkTarget(l.target()));
      guard.noteSymbolicLink();
      markNamespaceDirty(link);
    } else if (change instanceof FileChange.CreateLink l) {
      Path link = guard.resolveNoFollow(l.path());
      Path existing = guard.resolveNoFollow(l.existing());
      Files.createLink(link, existing);
      markNamespaceDirty(link);
    } else if (change instanceof FileChange.SetTimes t) {
      Path path = guard.resolveFollowingLinks(t.path());
      view(path, BasicFileAttributeView.class, "basic")
          .setTimes(t.lastModified(), t.lastAccess(), t.creation());
    } else if (change instanceof FileChange.SetPermissions p) {
      Path path = guard.resolveFollowingLinks(p.path());
      view(path, PosixFileAttributeView.class, "posix").setPermissions(p.permissions());
    } else if (change instanceof FileChange.SetOwner o) {
      Path path = guard.resolveFollowingLinks(o.path());
      UserPrincipalLookupService principals = path.getFileSystem().getUserPrincipalLookupService();
      if (o.owner() != null) {
        view(path, FileOwnerAttributeView.class, "owner")
            .setOwner(principals.lookupPrincipalByName(o.owner()));
      }
      if (o.group() != null) {
        view(path, PosixFileAttributeView.class, "posix")
            .setGroup(principals.lookupPrincipalByGroupName(o.group()));
      }
    } else {
      throw new IllegalStateException("not a barrier: " + change);
    }
  }

  private void applyData(Lane worker, FileChange change) throws IOException {
    if (change instanceof FileChange.Write w) {
      FileChannel channel = worker.channel(w.path());
      ByteBuffer data = w.data().duplicate();
      long position = w.position();
      while (data.hasRemaining()) {
        position += channel.write(data, position);
      }
      bytesWritten.add(w.length());
    } else if (change instanceof FileChange.WriteFile f) {
      Path path = null;
      FileChannel channel = null;
      boolean modeSet = false;
      if (f.create() && worker.channels.get(f.path()) == null) {
        // the usual case, a file new to this copy: created exclusively, which never follows a link
        // at the end, so only the ancestors need checking; with its mode when the umask keeps it
        Path candidate = guard.resolveNoFollow(f.path());
        channel = createNewCached(worker, f.path(), candidate, f.mode());
        if (channel != null) {
          path = candidate;
          modeSet = f.mode() >= 0 && (f.mode() & ProcessUmask.BITS) == 0;
        }
      }
      if (channel == null) {
        path = guard.resolveFollowingLinks(f.path());
        channel = f.create() ? create(worker, f.path(), true) : worker.channel(f.path(), path);
      }
      ByteBuffer data = f.data().duplicate();
      long position = 0;
      for (FileChange.WriteFile.Piece piece : f.ranges()) {
        data.limit(data.position() + piece.length());
        position = piece.position();
        while (data.hasRemaining()) {
          position += channel.write(data, position);
        }
      }
      bytesWritten.add(f.payloadLength());
      if (f.size() >= 0 && (!f.create() || f.size() < position) && channel.size() > f.size()) {
        channel.truncate(f.size());
      }
      if (f.mode() >= 0 && !modeSet) {
        view(path, PosixFileAttributeView.class, "posix").setPermissions(ChangeProtos.toPermissions(f.mode()));
      }
      if (f.lastModified() != null) {
        // both times at once: with one left out the JDK reads the file's attributes first; access
        // times are not replicated anyway
        view(path, BasicFileAttributeView.class, "basic").setTimes(f.lastModified(), f.lastModified(), null);
      }
    } else if (change instanceof FileChange.Truncate t) {
      worker.channel(t.path()).truncate(t.size());
    } else if (change instanceof FileChange.CreateFile c) {
      create(worker, c.path(), c.truncate());
    } else {
      throw new IllegalStateException("not a data change: " + change);
    }
  }

  /**
   * {@link #createNew} at {@code path} (resolved from {@code changePath} without following a link
   * at the end), keeping the channel in the lane's cache and the directory for the next Force; null
   * when something is there already.
   */
  private FileChannel createNewCached(Lane worker, String changePath, Path path, int mode) throws IOException {
    FileChannel channel = createNew(path, mode);
    if (channel != null) {
      worker.channels.put(changePath, channel);
      markNamespaceDirty(path);
    }
    return channel;
  }

  /**
   * Creates a new regular file at {@code path} (never through a link), with {@code mode} (when not
   * negative) as the umask leaves it; null when something is there already.
   */
  private static FileChannel createNew(Path path, int mode) throws IOException {
    Set<StandardOpenOption> options = Set.of(StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW);
    try {
      if (mode >= 0) {
        try {
          return FileChannel.open(path, options,
              java.nio.file.attribute.PosixFilePermissions.asFileAttribute(ChangeProtos.toPermissions(mode)));
        } catch (UnsupportedOperationException e) {
          // no POSIX attributes at creation on this provider: the mode is set afterwards
        }
      }
      return FileChannel.open(path, options);
    } catch (FileAlreadyExistsException e) {
      return null;
    }
  }

  /** The process's umask, found once by creating a file that asks for every permission. */
  private static final class ProcessUmask {
    static final int BITS = probe();

    private static int probe() {
      try {
        Path probe = Files.createTempFile("replicator-umask", ".probe",
            java.nio.file.attribute.PosixFilePermissions.asFileAttribute(ChangeProtos.toPermissions(0777)));
        try {
          return 0777 & ~ChangeProtos.toMode(Files.getPosixFilePermissions(probe));
        } finally {
          Files.deleteIfExists(probe);
        }
      } catch (IOException | UnsupportedOperationException e) {
        return 0777; // unknown: every mode is set explicitly
      }
    }
  }

  /** Makes sure a regular file exists at {@code changePath} (emptied when {@code truncate}); its cached channel. */
  private FileChannel create(Lane worker, String changePath, boolean truncate) throws IOException {
    FileChannel cached = worker.channels.get(changePath);
    if (cached == null) {
      // the usual case, a file new to this copy: created exclusively, which never follows a link at
      // the end, so only the ancestors need checking (no lookups of a name that is not there yet)
      FileChannel created = createNewCached(worker, changePath, guard.resolveNoFollow(changePath), -1);
      if (created != null) {
        return created;
      }
    }
    Path path = guard.resolveFollowingLinks(changePath);
    if (cached != null) {
      if (Files.exists(path)) {
        if (truncate) {
          cached.truncate(0);
        }
        return cached;
      }
      // the name is gone (removed behind the replica's back): the cached channel writes to an
      // unlinked file, so drop it and create the file for real
      worker.channels.evictIf(p -> p.equals(changePath));
    }
    boolean existed = Files.exists(path);
    FileChannel channel =
        truncate
            ? FileChannel.open(
                path,
                StandardOpenOption.WRITE,
                StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING)
            : FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.CREATE);
    worker.channels.put(changePath, channel);
    if (!existed) {
      // Through a link the new name lives in the link's target directory.
      markNamespaceDirty(Files.isSymbolicLink(path) ? path.toRealPath() : path);
    }
    return channel;
  }

  private static <V extends FileAttributeView> V view(
      Path path, Class<V> type, String name) throws IOException {
    V view = Files.getFileAttributeView(path, type);
    if (view == null) {
      throw new IOException(
          "the replica's file system has no '" + name + "' attribute view for " + path);
    }
    return view;
  }

  /**
   * Closes cached channels that a delete, rename or replace of these paths makes stale: the paths
   * themselves and everything under them. Runs in a barrier, while every lane is idle.
   */
  private void evictChannels(String... changePaths) {
    Predicate<String> stale;
    if (guard.symbolicLinkSeen()) {
      // A link lets another path name the same file or directory: prefixes prove nothing.
      stale = path -> true;
    } else {
      stale =
          path -> {
            for (String changed : changePaths) {
              if (path.equals(changed) || path.startsWith(changed + "/")) {
                return true;
              }
            }
            return false;
          };
    }
    for (Lane lane : lanes) {
      lane.channels.evictIf(stale);
    }
  }

  // ---------------------------------------------------------------- durability

  /**
   * Whether a Force needs no fsync here: while a resync into this copy runs, the copy is
   * inconsistent (never promoted, whatever it holds), and everything applied before the resync's
   * end is written to disk by the flush that follows that end, under the boot recorded with the
   * resync (a machine that goes down first has every block compared). An application's Force then
   * costs its writes' application only, instead of fsyncs that queue behind the resync's writes.
   * Control steps are barriers, so no Force runs while the resync's end is recorded.
   */
  private boolean durabilityDeferred() {
    return resyncTarget && ResyncFlush.deferrable();
  }

  /** Remembers that the directory holding {@code entry} had an entry created, removed or renamed. */
  private void markNamespaceDirty(Path entry) {
    Path parent = entry.getParent();
    if (parent != null && directorySyncSupported) {
      namespaceDirty.add(parent);
    }
  }

  /** After a directory rename, pending directory syncs under it must follow it. */
  private void renameDirtyDirectories(Path source, Path target) {
    for (Path dirty : List.copyOf(namespaceDirty)) {
      if (dirty.startsWith(source)) {
        namespaceDirty.remove(dirty);
        namespaceDirty.add(target.resolve(source.relativize(dirty)));
      }
    }
  }

  /**
   * Makes everything applied so far durable, the whole file system at once. Called at a resync's
   * end, before this copy calls itself consistent: the resync's writes force nothing on their own,
   * and once the copy is consistent the source no longer knows which blocks it sent. Runs as a
   * barrier (no change is being applied meanwhile).
   */
  @Override
  public void makeAppliedDurable() throws IOException {
    if (!directorySyncSupported) {
      return; // not a durable file system (jimfs): nothing to flush
    }
    Path root = guard.root();
    faults.beforeFlush(root);
    directorySyncLock.lock();
    try {
      List<Path> dirty = List.copyOf(namespaceDirty);
      long t0 = System.nanoTime();
      FileSystemFlush.flush(root);
      fsyncs.increment();
      log.info("file system under {} flushed in {} ms", root, (System.nanoTime() - t0) / 1_000_000);
      dirty.forEach(namespaceDirty::remove); // their entries are durable too now
    } finally {
      directorySyncLock.unlock();
    }
  }

  /**
   * fsyncs every namespace-dirty directory. One lane at a time: a Force that finds a directory
   * dirty returns only after that directory's fsync, even when another lane took it from the set.
   */
  private void syncNamespaceDirty(Set<Path> alreadySynced) throws IOException {
    if (namespaceDirty.isEmpty()) {
      return;
    }
    if (durabilityDeferred()) {
      namespaceDirty.clear(); // written to disk by the flush after the resync's end
      return;
    }
    directorySyncLock.lock();
    try {
      for (Path directory : List.copyOf(namespaceDirty)) {
        // Remove before syncing: a failure leaves the applier stopped anyway.
        namespaceDirty.remove(directory);
        if (alreadySynced.add(directory)) {
          try {
            syncDirectory(directory);
          } catch (NoSuchFileException gone) {
            // Removed since; its removal made its own parent dirty.
            log.debug("Namespace-dirty directory {} is gone", directory);
          }
        }
      }
    } finally {
      directorySyncLock.unlock();
    }
  }

  /** fsyncs one file through the lane's cached channel when it has one. */
  private void syncFile(Lane lane, String changePath, Path path, boolean metadata) throws IOException {
    if (durabilityDeferred()) {
      return;
    }
    // path is null when the lane held the file open at the Force: named under the root for the hook
    faults.beforeSync(path != null ? path : guard.root().resolve(changePath));
    FileChannel cached = lane.channels.get(changePath);
    if (cached != null) {
      cached.force(metadata);
    } else {
      try (FileChannel channel = openForSync(path != null ? path : guard.resolveFollowingLinks(changePath))) {
        channel.force(metadata);
      }
    }
    fsyncs.increment();
  }

  private static FileChannel openForSync(Path path) throws IOException {
    try {
      return FileChannel.open(path, StandardOpenOption.READ);
    } catch (AccessDeniedException e) {
      // A write-only file: fsync works through any descriptor of the file.
      return FileChannel.open(path, StandardOpenOption.WRITE);
    }
  }

  private void syncDirectory(Path directory) throws IOException {
    if (!directorySyncSupported || durabilityDeferred()) {
      return;
    }
    faults.beforeSync(directory);
    try (FileChannel channel = FileChannel.open(directory, StandardOpenOption.READ)) {
      channel.force(true);
    }
    fsyncs.increment();
  }

  /**
   * Whether directories can be opened for an fsync on this provider. The default provider on
   * Linux can; jimfs cannot, and is not durable anyway, so a directory Force is a no-op there.
   */
  private static boolean probeDirectorySync(Path root) {
    try (FileChannel channel = FileChannel.open(root, StandardOpenOption.READ)) {
      return true;
    } catch (IOException | UnsupportedOperationException e) {
      log.debug("Directories under {} cannot be opened for fsync: {}", root, e.toString());
      return false;
    }
  }

  // ---------------------------------------------------------------- plumbing

  /** Releases every queued task, leaving a lane's stop token in place. */
  private static void releaseQueued(BlockingQueue<Task> queue) {
    queue.removeIf(task -> {
      if (task == STOP) {
        return false;
      }
      task.release();
      return true;
    });
  }

  /** A task handed over while close ran may have landed after close emptied the queues. */
  private void releaseIfClosed() {
    if (closed) {
      releaseHeld();
      for (Lane lane : lanes) {
        releaseQueued(lane.queue);
      }
    }
  }

  private static boolean join(Thread thread, long deadlineNanos) {
    // an interrupt of the closing thread must not cut the wait short: threads left running
    // would apply changes alongside the next session's applier
    boolean interrupted = false;
    try {
      while (thread.isAlive()) {
        long remaining = deadlineNanos - System.nanoTime();
        if (remaining <= 0) {
          break;
        }
        try {
          thread.join(TimeUnit.NANOSECONDS.toMillis(remaining) + 1);
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
    return !thread.isAlive();
  }

  /** One apply thread with its queue and its channels. */
  private final class Lane {
    final BlockingQueue<Task> queue = new LinkedBlockingQueue<>();
    /** Tasks handed to this lane and not finished (queued or running); guarded by dispatchLock. */
    int tasks;
    final ChannelCache channels;
    final Thread thread;

    Lane(int index, int channelCapacity) {
      this.channels = new ChannelCache(channelCapacity);
      this.thread = new Thread(this::run, "replica-apply-" + index);
      thread.setDaemon(true);
    }

    /** The cached write channel of a path, opening (never creating) the file on a miss. */
    FileChannel channel(String changePath) throws IOException {
      return channel(changePath, null);
    }

    /** As {@link #channel(String)}, with the path already resolved by the guard (null: resolve it here). */
    FileChannel channel(String changePath, Path resolved) throws IOException {
      FileChannel channel = channels.get(changePath);
      if (channel == null) {
        // No CREATE: a Write or Truncate of a missing file means the replica is out of date.
        Path path = resolved != null ? resolved : guard.resolveFollowingLinks(changePath);
        channel = FileChannel.open(path, StandardOpenOption.WRITE);
        channels.put(changePath, channel);
      }
      return channel;
    }

    private void run() {
      List<Task> forces = new ArrayList<>();
      try {
        while (true) {
          Task task = queue.take();
          if (task == STOP) {
            return;
          }
          if (task.isBarrier()) {
            // handed here because every lane was idle; more may follow behind it
            runBarrierChain(this, task);
            continue;
          }
          try {
            if (task.change instanceof FileChange.Force) {
              // Forces queued behind this one are satisfied by the same fsyncs (group commit).
              forces.add(task);
              while (queue.peek() != null && queue.peek().change instanceof FileChange.Force) {
                forces.add(queue.poll());
              }
              runForces(this, forces);
            } else {
              runData(this, task);
            }
          } catch (RuntimeException | Error e) {
            log.error("{} failed on {}", thread.getName(), task, e);
            fail(task.seq, new IOException("apply thread failed", e));
          } finally {
            int done = forces.isEmpty() ? 1 : forces.size();
            forces.clear();
            for (int i = 0; i < done; i++) {
              laneTaskDone(this, true);
            }
          }
        }
      } catch (InterruptedException e) {
        log.debug("{} interrupted", thread.getName());
      }
    }
  }

  /** A submitted change (or a control step) and the promise to release its payload exactly once. */
  private static final class Task {
    final long seq;
    final FileChange change;
    final ControlStep step;
    final int bytes;
    private final AtomicBoolean released = new AtomicBoolean();
    private final Runnable release;

    Task(long seq, FileChange change, Runnable release, ControlStep step) {
      this.seq = seq;
      this.change = change;
      this.step = step;
      this.bytes = change == null ? 0 : change.payloadLength();
      this.release = release;
    }

    /** Runs alone, after every earlier change and before every later one. */
    boolean isBarrier() {
      return step != null || isBarrierChange(change);
    }

    void release() {
      if (released.compareAndSet(false, true)) {
        try {
          release.run();
        } catch (RuntimeException e) {
          log.error("Releasing the payload of seq {} failed", seq, e);
        }
      }
    }

    @Override
    public String toString() {
      return step != null ? "control step"
          : "seq " + seq + " " + (change == null ? "-" : ChangePaths.printable(change.toString()));
    }
  }
}
