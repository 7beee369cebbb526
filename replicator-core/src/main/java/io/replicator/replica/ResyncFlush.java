package io.replicator.replica;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a finished resync's data to the disk after the copy has recorded itself consistent, on a
 * thread of its own, so that the resync's end does not wait for the disk.
 *
 * <p>What covers the time in between is the boot the resync ran under, recorded with the copy
 * ({@link ReplicaSyncState#resyncDone}): a process that dies keeps its page cache, and a machine
 * that goes down before the flush ends comes back under another boot, as an inconsistent copy that
 * has every block compared. Without a boot id to record, the flush is not deferred: the resync's
 * end waits for it, as {@link ApplyStage#makeAppliedDurable} does.
 */
final class ResyncFlush implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ResyncFlush.class);
  /** How long closing waits for a flush under way before leaving its mark for the next start. */
  private static final long CLOSE_WAIT_SECONDS = 60;

  private final Path root;
  private final ApplyFaults faults;
  private final ReplicaSyncState syncState;
  /** Told when a flush failed: the copy is inconsistent now, and its primary must learn so. */
  private final Consumer<IOException> onFailure;
  private final ExecutorService thread;
  /** Once closed, a flush that outlived the wait records nothing: the metadata is another's now. */
  private boolean closed; // guarded by this

  ResyncFlush(Path root, ApplyFaults faults, ReplicaSyncState syncState, Consumer<IOException> onFailure) {
    this.root = root;
    this.faults = faults;
    this.syncState = syncState;
    this.onFailure = onFailure;
    // one thread, started on the first flush and gone after a minute idle; flushes queue in order
    ThreadPoolExecutor executor = new ThreadPoolExecutor(1, 1, 60, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
        r -> {
          Thread t = new Thread(r, "resync-flush " + root.getFileName());
          t.setDaemon(true);
          return t;
        });
    executor.allowCoreThreadTimeOut(true);
    this.thread = executor;
  }

  /** Whether a resync's end may be recorded before its data is flushed (a boot id to record). */
  static boolean deferrable() {
    return !ReplicaSyncState.BOOT_ID.isEmpty();
  }

  /** Flushes the file system in the background, then clears the mark of resync number {@code resync}. */
  void start(long resync) {
    if (root.getFileSystem() != FileSystems.getDefault()) {
      return; // not a durable file system (jimfs in tests): nothing to flush, and the mark is moot
    }
    try {
      thread.execute(() -> run(resync));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      log.warn("not flushing after a resync: closing (the next start flushes)");
    }
  }

  private void run(long resync) {
    long t0 = System.nanoTime();
    try {
      faults.beforeFlush(root);
      FileSystemFlush.flush(root);
      synchronized (this) {
        if (!closed) {
          syncState.resyncFlushed(resync);
        }
      }
      log.info("file system under {} flushed after a resync in {} ms", root, (System.nanoTime() - t0) / 1_000_000);
    } catch (IOException | RuntimeException e) {
      IOException cause = e instanceof IOException io ? io : new IOException(e);
      synchronized (this) {
        if (closed) {
          log.error("flushing {} after a resync failed after closing: {}", root, cause.toString());
          return;
        }
        syncState.flushFailed(cause);
      }
      onFailure.accept(cause);
    }
  }

  /** Waits (within a bound) for a flush under way; one still running then finishes on its own. */
  @Override
  public void close() {
    thread.shutdown();
    try {
      if (!thread.awaitTermination(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS)) {
        log.warn("the flush after a resync into {} did not end within {} s: the next start flushes again", root,
            CLOSE_WAIT_SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    synchronized (this) {
      closed = true;
    }
  }
}
