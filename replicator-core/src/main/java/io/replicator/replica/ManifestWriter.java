package io.replicator.replica;

import io.replicator.proto.Envelope;
import io.replicator.proto.ManifestBatch;
import io.replicator.proto.ManifestCredit;
import io.replicator.proto.ManifestEnd;
import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ManifestRequest;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Answers one connection's manifest requests on a thread of its own, so the replica keeps applying
 * changes (and the application's writes keep being acknowledged) while a large tree is walked. A
 * request is answered in its turn: walking starts once every change received before it is applied.
 * Entries go out in batches of bounded size, no more batches ahead than the primary granted
 * (credit), so the primary compares as they arrive and neither side buffers the tree.
 */
final class ManifestWriter implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ManifestWriter.class);
  /** A batch is sent once its entries reach this many bytes (the header limit is 64 KiB). */
  static final int BATCH_BYTES = 32 * 1024;
  static final int DEFAULT_CREDIT = 8;
  static final int MAX_CREDIT = 64;
  /** How long the writer waits for the changes ahead of a request, or for credit, before giving up. */
  private static final Duration PATIENCE = Duration.ofSeconds(120);

  /** What the writer needs from its connection. */
  interface Peer {
    /** Sends one envelope, waiting while the connection's buffer is full. */
    void send(Envelope envelope) throws IOException;

    /** Waits until every change up to {@code seq} is applied; false when that will not happen. */
    boolean awaitApplied(long seq, Duration timeout) throws InterruptedException;

    /** How far changes are applied now. */
    long appliedSeq();

    /** Called before a request's tree is walked (fault injection in tests). */
    default void beforeWalk(ManifestRequest request) throws IOException {}

    /** The manifest could not be written: the connection must end with this reason. */
    void failed(String reason);
  }

  private record Job(ManifestRequest request, long startAfter) {}

  private final Path root;
  private final Peer peer;
  private final LinkedBlockingQueue<Job> jobs = new LinkedBlockingQueue<>();
  private final Thread thread;
  private final Object creditLock = new Object();
  // guarded by creditLock
  private long currentRequest = -1;
  private long credit;
  private boolean cancelled;
  private volatile boolean closed;

  ManifestWriter(Path root, Peer peer, String name) {
    this.root = root;
    this.peer = peer;
    this.thread = new Thread(this::run, "replica-manifest-" + name);
    thread.setDaemon(true);
  }

  /**
   * Queues a request (called in order with the changes, on the receiving thread): it is walked once
   * every change up to {@code startAfter} is applied. False when the request is refused (its reason
   * is reported through {@link Peer#failed}).
   */
  boolean submit(ManifestRequest request, long startAfter) {
    String problem = ReplicaManifest.problem(request);
    if (problem != null) {
      peer.failed(problem);
      return false;
    }
    if (request.getCredit() > MAX_CREDIT) {
      peer.failed("manifest credit " + request.getCredit() + " above " + MAX_CREDIT);
      return false;
    }
    synchronized (this) {
      if (thread.getState() == Thread.State.NEW && !closed) {
        thread.start();
      }
    }
    jobs.add(new Job(request, startAfter));
    return true;
  }

  /** A credit from the primary (on the I/O thread): more batches may go, or the manifest stops. */
  void credit(ManifestCredit c) {
    synchronized (creditLock) {
      if (c.getRequestId() != currentRequest) {
        return; // for a manifest already finished: nothing left to send
      }
      if (c.getCancel()) {
        cancelled = true;
      }
      credit = Math.min(credit + c.getBatches(), MAX_CREDIT);
      creditLock.notifyAll();
    }
  }

  private void run() {
    try {
      while (!closed) {
        Job job = jobs.poll(100, TimeUnit.MILLISECONDS);
        if (job != null) {
          answer(job);
        }
      }
    } catch (InterruptedException | InterruptedIOException e) {
      // closing
    } catch (IOException e) {
      if (!closed) {
        log.warn("manifest not sent: {}", e.toString());
        peer.failed("manifest failed on the replica: " + e.getMessage());
      }
    } catch (RuntimeException e) {
      log.error("manifest writer failed", e);
      peer.failed("manifest failed on the replica: " + e);
    }
  }

  private void answer(Job job) throws IOException, InterruptedException {
    ManifestRequest request = job.request();
    synchronized (creditLock) {
      currentRequest = request.getRequestId();
      credit = request.getCredit() > 0 ? request.getCredit() : DEFAULT_CREDIT;
      cancelled = false;
    }
    if (!peer.awaitApplied(job.startAfter(), PATIENCE)) {
      throw new IOException("changes ahead of manifest request " + request.getRequestId()
          + " were not applied within " + PATIENCE.toSeconds() + " s");
    }
    peer.beforeWalk(request);
    Batcher batcher = new Batcher(request.getRequestId());
    long paths;
    try {
      paths = ReplicaManifest.write(root, request, batcher::add, peer::appliedSeq);
    } catch (CancelledException e) {
      paths = e.paths;
    }
    batcher.flush();
    synchronized (creditLock) {
      currentRequest = -1;
    }
    peer.send(Envelope.newBuilder().setManifestEnd(
        ManifestEnd.newBuilder().setRequestId(request.getRequestId()).setPaths(paths)).build());
  }

  /** Stops a manifest the primary no longer wants. */
  private static final class CancelledException extends IOException {
    private static final long serialVersionUID = 1L;
    final transient long paths;

    CancelledException(long paths) {
      super("cancelled");
      this.paths = paths;
    }
  }

  /** Collects entries into batches and sends each one once credit allows. */
  private final class Batcher {
    private final long requestId;
    private ManifestBatch.Builder batch;
    private int bytes;
    private long entries;

    Batcher(long requestId) {
      this.requestId = requestId;
    }

    void add(ManifestEntry entry) throws IOException {
      entries++;
      int size = entry.getSerializedSize() + 4;
      if (batch != null && bytes + size > BATCH_BYTES) {
        flush();
      }
      if (batch == null) {
        batch = ManifestBatch.newBuilder().setRequestId(requestId);
        bytes = 16;
      }
      // the request id is said once per batch, not per entry
      batch.addEntries(entry);
      bytes += size;
    }

    void flush() throws IOException {
      if (batch == null) {
        return;
      }
      ManifestBatch ready = batch.build();
      batch = null;
      synchronized (creditLock) {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (credit <= 0 && !cancelled && !closed) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            throw new IOException("the primary granted no manifest credit for " + PATIENCE.toSeconds() + " s");
          }
          try {
            creditLock.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for manifest credit");
          }
        }
        if (cancelled || closed) {
          throw new CancelledException(entries);
        }
        credit--;
      }
      peer.send(Envelope.newBuilder().setManifestBatch(ready).build());
    }
  }

  @Override
  public void close() {
    closed = true;
    synchronized (creditLock) {
      creditLock.notifyAll();
    }
    thread.interrupt();
    try {
      thread.join(TimeUnit.SECONDS.toMillis(5));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
