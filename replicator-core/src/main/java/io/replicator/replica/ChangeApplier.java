package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.ChangePaths;
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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
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
 *   <li><b>Threads.</b> The network thread calls {@link #submit}; it never touches files. One
 *       dispatcher thread takes changes in seq order and hands each data change (write,
 *       truncate, create file) to one of N apply workers chosen by a hash of its path, so changes
 *       to one path run in seq order on one worker while different paths run in parallel.
 *   <li><b>Barriers.</b> Namespace changes, attribute changes and {@code Force} run on the
 *       dispatcher itself once every earlier change is applied (the dispatcher waits until no
 *       data change is in flight), and nothing later is dispatched before they finish. Attribute
 *       changes are barriers too because a directory's times or permissions interact with
 *       changes to its children, which live on other workers. Consecutive {@code Force}s already
 *       queued when the first one runs form one group: each distinct file is fsynced once.
 *   <li><b>Channels.</b> Each worker keeps a small LRU of open channels for its paths, so a
 *       write stream opens its file once; barriers evict the channels of the paths they delete,
 *       rename or replace (all of them once the tree is known to hold symbolic links, since a
 *       link makes two paths name one file).
 *   <li><b>Durability.</b> Directories in which a name was created, removed or renamed are
 *       remembered as namespace-dirty; every {@code Force} fsyncs them after its files, so a
 *       durable file is also durably named.
 *   <li><b>Progress and back-pressure.</b> A ring indexed by seq records completions;
 *       {@link #appliedSeq()} is the highest seq below which everything is applied. Changes
 *       received but not yet covered by it hold budget (a count and their bytes), and
 *       {@code submit} blocks while the budget is spent.
 *   <li><b>Failure.</b> The primary only sends changes that succeeded, so a change failing here
 *       means the replica is not what the primary thinks. The first failure is reported once,
 *       nothing after its seq is applied (earlier changes still finish), every queued payload is
 *       released, and no repair is attempted.
 * </ul>
 */
final class ChangeApplier implements Closeable {

  private static final Logger log = LoggerFactory.getLogger(ChangeApplier.class);

  /** Told about progress and the first failure; both calls come from apply threads. */
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
  }

  /**
   * Tuning of the applier.
   *
   * @param applyThreads workers applying data changes in parallel
   * @param channelCacheSize open file channels kept across all workers
   * @param maxQueuedChanges received changes not yet applied before {@code submit} blocks
   * @param maxQueuedBytes write bytes received and not yet applied before {@code submit} blocks
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

  /** Tells the dispatcher and the workers to stop. */
  private static final Task STOP = new Task(0, null, () -> {});

  private final PathGuard guard;
  private final Listener listener;
  private final Options options;
  private final ApplyFaults faults;
  private final boolean directorySyncSupported;

  // Capacity one above the budget: the budget bounds the tasks, the extra slot is for STOP.
  private final BlockingQueue<Task> incoming;
  private final Worker[] workers;
  private final Thread dispatcher;
  /** Data changes handed to workers and not finished; the dispatcher waits for 0 at a barrier. */
  private final AtomicInteger inFlight = new AtomicInteger();
  /** Directories whose entries changed since they were last fsynced. */
  private final Set<Path> namespaceDirty = ConcurrentHashMap.newKeySet();

  private final ReentrantLock progressLock = new ReentrantLock();
  private final Condition progressChanged = progressLock.newCondition();
  // Ring slots by seq modulo the budget; only seqs in (appliedSeq, receivedSeq] are live.
  private final boolean[] doneRing;
  private final int[] bytesRing;
  private long queuedBytes;
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
    this.guard = new PathGuard(root);
    this.listener = checkNotNull(listener, "listener");
    this.options = checkNotNull(options, "options");
    this.faults = checkNotNull(faults, "faults");
    this.directorySyncSupported = probeDirectorySync(guard.root());
    this.doneRing = new boolean[options.maxQueuedChanges()];
    this.bytesRing = new int[options.maxQueuedChanges()];
    this.incoming = new ArrayBlockingQueue<>(options.maxQueuedChanges() + 1);
    int perWorkerChannels = Math.max(1, options.channelCacheSize() / options.applyThreads());
    this.workers = new Worker[options.applyThreads()];
    for (int i = 0; i < workers.length; i++) {
      workers[i] = new Worker(i, perWorkerChannels);
    }
    this.dispatcher = new Thread(this::dispatchLoop, "replica-dispatch");
    dispatcher.setDaemon(true);
    dispatcher.start();
    for (Worker worker : workers) {
      worker.thread.start();
    }
    log.info(
        "Applying changes under {} with {} threads (directory fsync {})",
        guard.root(),
        workers.length,
        directorySyncSupported ? "on" : "not supported by the provider");
  }

  /**
   * Hands over the next change. Ownership of {@code release} passes to the applier in every
   * case: it runs exactly once, when the change's payload is no longer needed (applied, skipped
   * after a failure, discarded by close, or right away when this method throws).
   *
   * <p>Called by one thread, with seqs consecutive after the first (any positive value). Blocks
   * while the queued budget is spent; never does file I/O.
   *
   * @throws OutOfSequenceException on a gap, a repeat or a non-positive seq
   * @throws IOException when the applier is closed or has stopped after a failure
   * @throws InterruptedException when interrupted while waiting for budget
   */
  void submit(long seq, FileChange change, Runnable release)
      throws IOException, InterruptedException {
    checkNotNull(release, "release");
    Task task = new Task(seq, change, release);
    boolean handedOver = false;
    try {
      checkNotNull(change, "change");
      reserve(task);
      if (!incoming.offer(task)) {
        // The budget bounds the queue, so this is a bug, not back-pressure.
        throw new IllegalStateException("dispatch queue full at seq " + seq);
      }
      handedOver = true;
      if (closed) {
        // close() may have drained the queue just before our offer: nobody else will.
        releaseQueued(incoming);
      }
    } finally {
      if (!handedOver) {
        task.release();
      }
    }
  }

  /** The last seq handed to {@link #submit}; 0 before the first. */
  long receivedSeq() {
    return receivedSeq;
  }

  /** Every change up to this seq is applied; the first seq minus one before any is. */
  long appliedSeq() {
    return appliedSeq;
  }

  /** The failure that stopped the applier, or null. */
  IOException failure() {
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

  /** Groups of consecutive Force changes executed together. */
  long forceGroups() {
    return forceGroups.sum();
  }

  /** Channels open in the caches right now. */
  int cachedChannels() {
    int total = 0;
    for (Worker worker : workers) {
      total += worker.channels.size();
    }
    return total;
  }

  /**
   * Waits until everything received is applied, the applier failed, or it closed.
   *
   * @return true when everything received is applied
   */
  boolean awaitIdle(Duration timeout) throws InterruptedException {
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
    releaseQueued(incoming);
    incoming.offer(STOP);
    LockSupport.unpark(dispatcher);
    long deadline = System.nanoTime() + options.closeTimeout().toNanos();
    boolean stopped = join(dispatcher, deadline);
    for (Worker worker : workers) {
      stopped &= join(worker.thread, deadline);
    }
    if (!stopped) {
      // Stuck in I/O (or a fault hook): an interrupt closes the channel it is blocked on.
      log.warn("Apply threads did not stop within {}; interrupting them", options.closeTimeout());
      dispatcher.interrupt();
      for (Worker worker : workers) {
        worker.thread.interrupt();
      }
      long grace = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
      join(dispatcher, grace);
      for (Worker worker : workers) {
        if (!join(worker.thread, grace)) {
          log.warn("{} still running after close", worker.thread.getName());
        }
      }
    }
    releaseQueued(incoming);
    for (Worker worker : workers) {
      releaseQueued(worker.queue);
      worker.channels.closeAll();
    }
    log.info(
        "Applier for {} closed at received seq {}, applied seq {}",
        guard.root(),
        receivedSeq,
        appliedSeq);
  }

  // ---------------------------------------------------------------- progress and budget

  private void reserve(Task task) throws IOException, InterruptedException {
    long seq = task.seq;
    int slots = doneRing.length;
    progressLock.lockInterruptibly();
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
      while (receivedSeq != 0
          && (receivedSeq - appliedSeq >= slots
              || (queuedBytes > 0 && queuedBytes + task.bytes > options.maxQueuedBytes()))) {
        progressChanged.await();
        checkRunning();
      }
      if (receivedSeq == 0) {
        appliedSeq = seq - 1;
      }
      int slot = slot(seq);
      doneRing[slot] = false;
      bytesRing[slot] = task.bytes;
      queuedBytes += task.bytes;
      receivedSeq = seq;
    } finally {
      progressLock.unlock();
    }
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
      if (applied != appliedSeq) {
        appliedSeq = applied;
        progressChanged.signalAll();
        // Under the lock so that calls never go backwards when two workers finish together.
        try {
          listener.onApplied(applied);
        } catch (RuntimeException e) {
          log.error("onApplied listener failed", e);
        }
      }
    } finally {
      progressLock.unlock();
    }
  }

  private void fail(long seq, Exception cause) {
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
    return closed || task.seq > stopAfterSeq;
  }

  private int slot(long seq) {
    return (int) (seq % doneRing.length);
  }

  // ---------------------------------------------------------------- dispatcher

  private void dispatchLoop() {
    try {
      while (true) {
        Task task = incoming.take();
        if (task == STOP) {
          return;
        }
        if (skipped(task)) {
          task.release();
        } else if (isBarrier(task.change)) {
          try {
            awaitWorkersIdle();
          } catch (InterruptedException e) {
            task.release();
            throw e;
          }
          if (skipped(task)) {
            // An earlier change failed while we waited.
            task.release();
          } else if (task.change instanceof FileChange.Force) {
            runForceGroup(collectForceGroup(task));
          } else {
            runBarrier(task);
          }
        } else {
          inFlight.incrementAndGet();
          Worker worker = workers[stripe(task.change.path())];
          if (!worker.queue.offer(task)) {
            throw new IllegalStateException("worker queue full at seq " + task.seq);
          }
        }
      }
    } catch (InterruptedException e) {
      log.debug("Dispatcher interrupted");
    } catch (RuntimeException | Error e) {
      log.error("Dispatcher died", e);
      fail(appliedSeq + 1, new IOException("dispatcher died", e));
    } finally {
      for (Worker worker : workers) {
        worker.queue.offer(STOP);
      }
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

  private static boolean isBarrier(FileChange change) {
    return change.isNamespaceChange()
        || change instanceof FileChange.Force
        || change instanceof FileChange.SetTimes
        || change instanceof FileChange.SetPermissions
        || change instanceof FileChange.SetOwner;
  }

  private int stripe(String path) {
    // Spread the String hash; paths differing in one character must not crowd one worker.
    return Math.floorMod(path.hashCode() * 0x9E3779B9, workers.length);
  }

  /** Parks until every dispatched data change is finished, which also makes the caches idle. */
  private void awaitWorkersIdle() throws InterruptedException {
    // When closed nothing more is applied, so there is nothing to wait for.
    while (inFlight.get() != 0 && !closed) {
      LockSupport.park(this);
      if (Thread.interrupted()) {
        throw new InterruptedException();
      }
    }
  }

  private List<Task> collectForceGroup(Task first) {
    List<Task> group = new ArrayList<>();
    group.add(first);
    // Forces that arrived while the earlier changes drained are satisfied by the same fsyncs.
    while (incoming.peek() != null && incoming.peek().change instanceof FileChange.Force) {
      group.add(incoming.poll());
    }
    return group;
  }

  private void runBarrier(Task task) {
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

  private void runForceGroup(List<Task> group) {
    forceGroups.increment();
    Task failedBefore = null;
    Exception error = null;
    List<Task> ready = new ArrayList<>(group.size());
    for (Task task : group) {
      if (skipped(task)) {
        task.release();
        continue;
      }
      try {
        faults.beforeApply(task.seq, task.change);
        ready.add(task);
      } catch (IOException | RuntimeException e) {
        // The Forces before this one are still made durable and acknowledged; none after it.
        failedBefore = task;
        error = e;
        break;
      }
    }
    if (failedBefore != null) {
      for (Task task : group.subList(group.indexOf(failedBefore), group.size())) {
        task.release();
      }
    }
    if (!ready.isEmpty()) {
      boolean durable = false;
      Exception syncError = null;
      try {
        Map<String, Boolean> metadataByPath = new LinkedHashMap<>();
        for (Task task : ready) {
          FileChange.Force force = (FileChange.Force) task.change;
          metadataByPath.merge(force.path(), force.metadata(), Boolean::logicalOr);
        }
        syncAll(metadataByPath);
        durable = true;
      } catch (IOException | RuntimeException e) {
        syncError = e;
      } finally {
        for (Task task : ready) {
          task.release();
        }
      }
      if (durable) {
        for (Task task : ready) {
          markApplied(task.seq);
        }
      } else {
        // Which Force's fsync failed does not matter: none of the group is durable for sure.
        fail(ready.get(0).seq, syncError);
        return;
      }
    }
    if (failedBefore != null) {
      fail(failedBefore.seq, error);
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
      evictChannels(m.source(), m.target());
      List<CopyOption> moveOptions = new ArrayList<>(2);
      if (m.atomic()) {
        moveOptions.add(StandardCopyOption.ATOMIC_MOVE);
      }
      if (m.replaceExisting()) {
        moveOptions.add(StandardCopyOption.REPLACE_EXISTING);
      }
      Files.move(source, target, moveOptions.toArray(CopyOption[]::new));
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

  private void applyData(Worker worker, FileChange change) throws IOException {
    if (change instanceof FileChange.Write w) {
      FileChannel channel = worker.channel(w.path());
      ByteBuffer data = w.data().duplicate();
      long position = w.position();
      while (data.hasRemaining()) {
        position += channel.write(data, position);
      }
      bytesWritten.add(w.length());
    } else if (change instanceof FileChange.Truncate t) {
      worker.channel(t.path()).truncate(t.size());
    } else if (change instanceof FileChange.CreateFile c) {
      FileChannel cached = worker.channels.get(c.path());
      Path path = guard.resolveFollowingLinks(c.path());
      if (cached != null) {
        if (Files.exists(path)) {
          if (c.truncate()) {
            cached.truncate(0);
          }
          return;
        }
        // the name is gone (removed behind the replica's back): the cached channel writes to an
        // unlinked file, so drop it and create the file for real
        worker.channels.evictIf(changePath -> changePath.equals(c.path()));
      }
      boolean existed = Files.exists(path);
      FileChannel channel =
          c.truncate()
              ? FileChannel.open(
                  path,
                  StandardOpenOption.WRITE,
                  StandardOpenOption.CREATE,
                  StandardOpenOption.TRUNCATE_EXISTING)
              : FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.CREATE);
      worker.channels.put(c.path(), channel);
      if (!existed) {
        // Through a link the new name lives in the link's target directory.
        markNamespaceDirty(Files.isSymbolicLink(path) ? path.toRealPath() : path);
      }
    } else {
      throw new IllegalStateException("not a data change: " + change);
    }
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
   * themselves and everything under them. Runs while the workers are idle.
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
    for (Worker worker : workers) {
      worker.channels.evictIf(stale);
    }
  }

  // ---------------------------------------------------------------- durability

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

  /** fsyncs each path once (files first), then every namespace-dirty directory. */
  private void syncAll(Map<String, Boolean> metadataByPath) throws IOException {
    Set<Path> syncedDirectories = new HashSet<>();
    for (Map.Entry<String, Boolean> entry : metadataByPath.entrySet()) {
      String changePath = entry.getKey();
      Path path = guard.resolveFollowingLinks(changePath);
      if (Files.isDirectory(path)) {
        Path real = path.toRealPath();
        if (syncedDirectories.add(real)) {
          syncDirectory(real);
        }
      } else {
        syncFile(changePath, path, entry.getValue());
      }
    }
    for (Path directory : List.copyOf(namespaceDirty)) {
      // Remove before syncing: a failure leaves the applier stopped anyway.
      namespaceDirty.remove(directory);
      if (syncedDirectories.add(directory)) {
        try {
          syncDirectory(directory);
        } catch (NoSuchFileException gone) {
          // Removed since; its removal made its own parent dirty.
          log.debug("Namespace-dirty directory {} is gone", directory);
        }
      }
    }
  }

  private void syncFile(String changePath, Path path, boolean metadata) throws IOException {
    faults.beforeSync(path);
    // A worker-owned channel is safe to use: the workers are idle during a barrier.
    FileChannel cached = workers[stripe(changePath)].channels.get(changePath);
    if (cached != null) {
      cached.force(metadata);
    } else {
      try (FileChannel channel = openForSync(path)) {
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
    if (!directorySyncSupported) {
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

  private static void releaseQueued(BlockingQueue<Task> queue) {
    for (Task task; (task = queue.poll()) != null; ) {
      task.release();
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
  private final class Worker {
    final BlockingQueue<Task> queue = new ArrayBlockingQueue<>(options.maxQueuedChanges() + 1);
    final ChannelCache channels;
    final Thread thread;

    Worker(int index, int channelCapacity) {
      this.channels = new ChannelCache(channelCapacity);
      this.thread = new Thread(this::run, "replica-apply-" + index);
      thread.setDaemon(true);
    }

    /** The cached write channel of a path, opening (never creating) the file on a miss. */
    FileChannel channel(String changePath) throws IOException {
      FileChannel channel = channels.get(changePath);
      if (channel == null) {
        // No CREATE: a Write or Truncate of a missing file means the replica is out of date.
        channel = FileChannel.open(guard.resolveFollowingLinks(changePath), StandardOpenOption.WRITE);
        channels.put(changePath, channel);
      }
      return channel;
    }

    private void run() {
      try {
        while (true) {
          Task task = queue.take();
          if (task == STOP) {
            return;
          }
          runData(task);
        }
      } catch (InterruptedException e) {
        log.debug("{} interrupted", thread.getName());
      }
    }

    private void runData(Task task) {
      try {
        if (skipped(task)) {
          task.release();
          return;
        }
        boolean applied = false;
        Exception error = null;
        try {
          faults.beforeApply(task.seq, task.change);
          applyData(this, task.change);
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
      } finally {
        if (inFlight.decrementAndGet() == 0) {
          LockSupport.unpark(dispatcher);
        }
      }
    }
  }

  /** A submitted change and the promise to release its payload exactly once. */
  private static final class Task {
    final long seq;
    final FileChange change;
    final int bytes;
    private final AtomicBoolean released = new AtomicBoolean();
    private final Runnable release;

    Task(long seq, FileChange change, Runnable release) {
      this.seq = seq;
      this.change = change;
      this.bytes = change instanceof FileChange.Write w ? w.length() : 0;
      this.release = release;
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
      return "seq " + seq + " " + (change == null ? "-" : ChangePaths.printable(change.toString()));
    }
  }
}
