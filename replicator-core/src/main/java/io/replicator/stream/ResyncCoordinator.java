package io.replicator.stream;

import io.replicator.ReplicationStatus;
import io.replicator.VerifyReport;
import io.replicator.change.FileChange;
import io.replicator.fs.ChangeSink.Completion;
import io.replicator.fs.LocalTree;
import io.replicator.meta.GenerationIds;
import io.replicator.proto.Envelope;
import io.replicator.proto.ResyncDone;
import io.replicator.transport.PeerConnection;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts, tracks and ends the resync and the online verify of one primary: which one runs, where
 * the peer's manifest entries go, and the hand-shake that ends a resync. It reaches the stream only
 * through {@link ResyncLink}.
 */
final class ResyncCoordinator {
  private static final Logger log = LoggerFactory.getLogger(ResyncCoordinator.class);

  private final ResyncLink link;
  private final long resyncBytesPerSecond;
  /** One verify or operator resync at a time. */
  private final Object maintenance = new Object();
  /** The resync in progress, or null. */
  private volatile ResyncSource resync;
  /** Where manifest entries from the peer go (the running resync or verify), or null. */
  private volatile ManifestChannel manifestChannel;
  /** The changes numbered while a verify runs, or null. */
  private volatile RecentChanges verifyChanges;
  /** Progress of the verify in progress, or null. */
  private volatile TreeProgress verifyProgress;

  ResyncCoordinator(ResyncLink link, long resyncBytesPerSecond) {
    this.link = link;
    this.resyncBytesPerSecond = resyncBytesPerSecond;
  }

  /** True while a resync runs. */
  boolean running() {
    return resync != null;
  }

  /** Progress of the running resync, if one runs. */
  Optional<ReplicationStatus.ResyncProgress> progress() {
    ResyncSource r = resync;
    return r == null ? Optional.empty() : Optional.of(r.progress());
  }

  /** Starts a resync to the peer on {@code c}, on its own thread. */
  ResyncSource start(PeerConnection c, boolean full) {
    ResyncSource r = new ResyncSource(link, this, c, full, c.remoteHello().getSyncState(),
        new ResyncRate(resyncBytesPerSecond, link::awaitResyncRoom, System::nanoTime));
    resync = r;
    manifestChannel = r.manifestChannel();
    link.resyncRunning(true);
    Thread t = new Thread(() -> {
      try {
        r.run();
      } finally {
        link.resyncRunning(false);
        if (resync == r) {
          resync = null;
        }
      }
    }, "replicator-resync");
    t.setDaemon(true);
    t.start();
    return r;
  }

  /**
   * The resync reached its end: every change is acknowledged. The peer is told its new generation,
   * and only once a barrier after that message is acknowledged (so the peer recorded it) does this
   * node clear its bitmap; a link lost in between leaves the bits, and the next resync is a cheap
   * incremental one instead of a full comparison.
   */
  void completed(PeerConnection c) throws IOException {
    PrimaryTracking tracking = link.tracking();
    GenerationIds next = tracking.generationsAfterResync();
    link.sendControl(c, Envelope.newBuilder().setResyncDone(ResyncDone.newBuilder()
        .setLastSeq(link.lastSeq()).setGenerations(next.toProto())).build());
    java.util.concurrent.atomic.AtomicBoolean recorded = new java.util.concurrent.atomic.AtomicBoolean();
    Completion barrier = link.submitResync(c, FileChange.Force.barrier(), () -> recorded.set(true));
    if (barrier == null) {
      throw new ManifestChannel.LinkLostException("link lost before the peer recorded the end of the resync");
    }
    barrier.await(); // returns on a lost link too, with the barrier unacknowledged
    // On the control thread, and only while the connection lives: a loss handled before this marks
    // the application's later writes dirty and takes a new generation, which clearing the bitmap and
    // adopting the resync's generation here would undo.
    if (!recorded.get() || !link.whileLive(c, () -> {
      tracking.resyncCompleted(next);
      link.reachedSync();
    })) {
      throw new ManifestChannel.LinkLostException("link lost before the peer recorded the end of the resync");
    }
    // cleared before the resync's waiters wake, so status() reports in sync to them
    resync = null;
    manifestChannel = null;
  }

  /**
   * An application change numbered {@code seq}, told while its locks are still held: a verify
   * running compares in order with it; during a resync a rename or delete may move data the resync
   * has not reached.
   */
  void touched(long seq, FileChange change) {
    RecentChanges v = verifyChanges;
    if (v != null) {
      v.numbered(seq, change);
    }
    ResyncSource r = resync;
    if (r != null) {
      r.touched(seq, change);
    }
  }

  /** Progress of the running verify, if one runs. */
  Optional<ReplicationStatus.VerifyProgress> verifyProgress() {
    TreeProgress p = verifyProgress;
    if (p == null) {
      return Optional.empty();
    }
    TreeProgress.Reading r = p.read();
    return Optional.of(new ReplicationStatus.VerifyProgress(r.filesDone(), r.filesTotal(), r.bytesDone(),
        r.bytesTotal(), r.bytesPerSecond(), r.etaSeconds()));
  }

  /** Called on the I/O thread with a manifest frame; false when nobody asked for it. */
  boolean onManifestFrame(PeerConnection c, Envelope e) {
    ManifestChannel m = manifestChannel;
    return m != null && m.onFrame(c, e);
  }

  /** The link went down: a manifest being read ends with the reason. */
  void linkLost(String reason) {
    ManifestChannel m = manifestChannel;
    if (m != null) {
      m.linkLost(reason);
    }
  }

  /** Compares the tree with the peer's; see {@link io.replicator.ReplicatedFileSystem#verify()}. */
  VerifyReport verify() throws IOException {
    synchronized (maintenance) {
      PeerConnection c = link.liveConnection();
      if (c == null) {
        throw new IOException("verify needs the peer, and it is not connected" + because());
      }
      if (resync != null) {
        throw new IOException("a resync is running; verify after it ends");
      }
      ManifestChannel mc = new ManifestChannel(link, c);
      manifestChannel = mc;
      PrimaryTracking tracking = link.tracking();
      RecentChanges recent = new RecentChanges();
      TreeProgress progress = new TreeProgress();
      Thread count = null;
      verifyChanges = recent;
      try {
        LocalTree tree = link.awaitTree();
        count = TreeCount.start(tree.delegateRoot(), List.of(""), progress);
        verifyProgress = progress;
        VerifyReport report = new OnlineVerify(mc, tree, tracking.bitmap(), recent, progress).run();
        tracking.flushBitmap();
        log.info("verify against {}: {} path(s), {} byte(s) compared; {} block(s) and {} path(s) differ",
            c.remoteNodeId(), report.pathsCompared(), report.bytesCompared(), report.blocksDiffering(),
            report.pathsDiffering());
        return report;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while verifying");
      } finally {
        verifyChanges = null;
        verifyProgress = null;
        if (count != null) {
          count.interrupt();
        }
        if (manifestChannel == mc) {
          manifestChannel = null;
        }
      }
    }
  }

  /** Sends the peer what is marked dirty and waits; see {@link io.replicator.ReplicatedFileSystem#resync()}. */
  void resync() throws IOException {
    synchronized (maintenance) {
      ResyncSource running = resync;
      if (running == null) {
        PeerConnection c = link.liveConnection();
        if (c == null) {
          throw new IOException("resync needs the peer, and it is not connected" + because());
        }
        PrimaryTracking tracking = link.tracking();
        if (!tracking.peerOutOfDate()) {
          return;
        }
        running = start(c, tracking.peerNeedsFullResync());
      }
      try {
        running.done().get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while waiting for the resync");
      } catch (ExecutionException e) {
        throw new IOException("resync did not complete: " + e.getCause().getMessage(), e.getCause());
      }
    }
  }

  private String because() {
    String problem = link.problem();
    return problem != null ? ": " + problem : "";
  }
}
