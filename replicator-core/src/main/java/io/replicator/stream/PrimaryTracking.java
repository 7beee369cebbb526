package io.replicator.stream;

import io.replicator.change.FileChange;
import io.replicator.meta.ActivityLog;
import io.replicator.meta.DirtyBitmap;
import io.replicator.meta.DirtyBitmapStore;
import io.replicator.meta.GenerationIds;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.meta.StoreState;
import io.replicator.meta.SyncDecision;
import io.replicator.proto.CopyReport;
import io.replicator.proto.NodeMetadata;
import io.replicator.proto.SyncState;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a primary knows about how its peer differs from it: generation ids, the dirty-block
 * bitmap of changes the peer missed, the activity log of extents that may differ after a crash,
 * and whether only a full (checksum) resync can tell.
 *
 * <p>Every change first passes {@link #beforeLocalChange}: the activity log makes a new hot extent
 * durable, and while the peer is away the first change starts a new generation (durably) before
 * it is made. The bitmap itself lives in memory and is saved periodically and on close; after a
 * crash the activity log's hot extents cover whatever the saved bitmap missed.
 */
final class PrimaryTracking implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(PrimaryTracking.class);

  private final NodeMetadataStore metadata;
  private final DirtyBitmapStore bitmapStore;
  private final DirtyBitmap bitmap;
  private final ActivityLog activityLog;
  private volatile GenerationIds generations;
  private volatile boolean alone;
  private volatile boolean bitmapChanged;

  private PrimaryTracking(NodeMetadataStore metadata, DirtyBitmapStore bitmapStore, DirtyBitmap bitmap,
      ActivityLog activityLog) {
    this.metadata = metadata;
    this.bitmapStore = bitmapStore;
    this.bitmap = bitmap;
    this.activityLog = activityLog;
    this.generations = GenerationIds.fromProto(metadata.current().getGenerations());
  }

  /**
   * Loads the metadata in {@code dir} and marks this node as running as primary. A node found
   * still marked running crashed: its hot extents join the bitmap. Corrupt or missing records
   * (with data already in the tree) mean the peer needs a full resync.
   */
  static PrimaryTracking open(Path dir, String nodeId, boolean rootHasData, TrackingSettings settings)
      throws IOException {
    NodeMetadataStore metadata = NodeMetadataStore.open(dir);
    DirtyBitmapStore bitmapStore = DirtyBitmapStore.open(dir, settings.blockSize());
    ActivityLog activityLog = ActivityLog.open(dir, settings.extentSize(), settings.maxHotExtents());
    DirtyBitmap bitmap = bitmapStore.bitmap();
    NodeMetadata m = metadata.current();
    // a node that opens as primary serves its own data from now on: an operator's old wish to
    // discard it (made while it was secondary, and never used) must not wipe what it writes now
    NodeMetadata.Builder next = m.toBuilder().setFormat(1).setNodeId(nodeId).setRunningAsPrimary(true)
        .setDiscardLocal(false);
    if (m.getPrimarySinceMillis() == 0) {
      // when this node became primary (a restart as primary is not a new promotion; finishing a
      // resync as secondary ends the period): the younger primary is the one a policy may discard
      next.setPrimarySinceMillis(System.currentTimeMillis());
    }
    if (metadata.found() == NodeMetadataStore.Found.CORRUPT) {
      next.setPeerNeedsFullResync(true).setPeerOutOfDate(true).setOutOfDateReason("node metadata was lost or corrupt");
    } else if (metadata.found() == NodeMetadataStore.Found.NONE && rootHasData) {
      next.setPeerNeedsFullResync(true).setPeerOutOfDate(true)
          .setOutOfDateReason("the data existed before replication started");
    }
    if (bitmapStore.found() == StoreState.CORRUPT || activityLog.found() == StoreState.CORRUPT) {
      next.setPeerNeedsFullResync(true).setPeerOutOfDate(true)
          .setOutOfDateReason("the dirty bitmap or activity log was corrupt");
    }
    PrimaryTracking t = new PrimaryTracking(metadata, bitmapStore, bitmap, activityLog);
    if (m.getRunningAsPrimary()) {
      // crashed as primary: the peer may lack whatever this node wrote in its hot extents
      activityLog.markInto(bitmap);
      log.warn("this node crashed as primary; {} hot extent(s) and path(s) will be resynced", activityLog.hotCount());
      if (!bitmap.isEmpty()) {
        GenerationIds g = t.generations;
        if (g.bitmap() == 0 && g.current() != 0) {
          next.setGenerations(g.startTracking().newGeneration().toProto());
        }
        next.setPeerOutOfDate(true).setOutOfDateReason("this node crashed as primary");
      }
      t.bitmapChanged = true;
    }
    metadata.write(next.build());
    t.generations = GenerationIds.fromProto(next.getGenerations());
    t.alone = t.generations.bitmap() != 0;
    t.flushBitmap();
    return t;
  }

  GenerationIds generations() {
    return generations;
  }

  /**
   * Before a follower's stream opens on a node that was the secondary: the follower held {@code
   * heldGeneration} and may lack {@code blocks} of this node's data (the secondary's record of mark
   * epoch {@code epoch}, {@link io.replicator.replica.UnsharedChanges}). The stream starts a
   * generation of its own that tracks from the held one, so the generation rules choose an
   * incremental resync; the follower's own report must join at its connection ({@link
   * #continueFollower}).
   */
  static void continueFrom(Path dir, String nodeId, long epoch, long heldGeneration, DirtyBitmap blocks)
      throws IOException {
    NodeMetadataStore metadata = NodeMetadataStore.open(dir);
    GenerationIds g = GenerationIds.of(heldGeneration, 0, java.util.List.of()).startTracking().newGeneration();
    DirtyBitmapStore.open(dir, blocks.blockSize()).write(blocks);
    if (java.nio.file.Files.exists(dir.resolve(ActivityLog.FILE_NAME))) {
      // hot extents of an earlier time as primary here are about another position of the follower
      try (ActivityLog al = ActivityLog.open(dir)) {
        al.clear();
      }
    }
    metadata.write(metadata.current().toBuilder().setFormat(1).setNodeId(nodeId)
        .setGenerations(g.toProto())
        .setPeerOutOfDate(true)
        .setOutOfDateReason("continued from the previous primary's stream")
        .setOutOfDateSinceMillis(System.currentTimeMillis())
        .setPeerNeedsFullResync(false)
        .setRunningAsPrimary(false)
        .setContinuedEpoch(epoch)
        .build());
  }

  /**
   * At a follower's connection: when this stream was continued from the previous primary's, the
   * follower's own report ({@code report}) joins the bitmap and the decision stays incremental;
   * without a report of the same epoch, the follower gets a full (checksum) resync, kept durable
   * until it completes. Either way the stream is no longer waiting for a report.
   */
  synchronized SyncDecision continueFollower(SyncDecision decision,
      CopyReport report, String follower) {
    long epoch = metadata.current().getContinuedEpoch();
    if (epoch == 0) {
      return decision;
    }
    DirtyBitmap theirs = null;
    long reportEpoch = 0;
    String why = "it sent no report of what it received";
    if (report.getEpoch() != 0) {
      try {
        theirs = DirtyBitmap.deserialize(report.getBlocks().toByteArray());
        if (theirs.blockSize() == bitmap.blockSize()) {
          reportEpoch = report.getEpoch();
        } else {
          why = "its report has blocks of " + theirs.blockSize() + " bytes, not " + bitmap.blockSize();
        }
      } catch (IOException e) {
        why = "its report could not be read (" + e.getMessage() + ")";
      }
      if (reportEpoch != 0 && reportEpoch != epoch) {
        why = "its report is of another primary's stream";
      }
    }
    SyncDecision next = SyncDecision.continueFollower(decision, epoch, reportEpoch);
    NodeMetadata.Builder m = metadata.current().toBuilder().setContinuedEpoch(0);
    try {
      if (next == SyncDecision.INCREMENTAL_LOCAL_SOURCE) {
        long before = bitmap.dirtyBytes();
        bitmap.union(theirs);
        bitmapChanged = true;
        flushBitmap();
        log.info("follower {} continues from the previous primary's stream: incremental resync of {} byte(s) "
            + "in {} path(s), {} byte(s) of them from its own report", follower, bitmap.dirtyBytes(),
            bitmap.dirtyPathCount(), bitmap.dirtyBytes() - before);
      } else if (decision == SyncDecision.INCREMENTAL_LOCAL_SOURCE) {
        m.setPeerNeedsFullResync(true).setPeerOutOfDate(true)
            .setOutOfDateReason("follower continued from the previous primary, but " + why);
        log.warn("follower {} continued from the previous primary, but {}: full (checksum) resync", follower, why);
      }
      metadata.write(m.build());
    } catch (IOException e) {
      log.error("cannot record follower {}'s continuation: {}", follower, e.toString());
      return SyncDecision.FULL_LOCAL_SOURCE;
    }
    return next;
  }

  boolean peerNeedsFullResync() {
    return metadata.current().getPeerNeedsFullResync();
  }

  /** True when the peer misses something: a bitmap, a pending full resync, or a tracking generation. */
  boolean peerOutOfDate() {
    return peerNeedsFullResync() || generations.bitmap() != 0 || !bitmap.isEmpty();
  }

  String outOfDateReason() {
    String r = metadata.current().getOutOfDateReason();
    if (peerNeedsFullResync()) {
      return r.isEmpty() ? "the peer needs a full resync" : r;
    }
    return bitmap.dirtyBytes() + " byte(s) and " + bitmap.dirtyPathCount() + " path(s) changed without the peer";
  }

  DirtyBitmap bitmap() {
    return bitmap;
  }

  SyncState syncState() {
    return SyncState.newBuilder()
        .setDirtyBytes(bitmap.dirtyBytes())
        .setPrimarySinceMillis(metadata.current().getPrimarySinceMillis())
        .setBlockSize(bitmap.blockSize())
        .build();
  }

  /** Records what must be durable before the local change: a hot extent, a new generation. */
  void beforeLocalChange(FileChange change, boolean peerConnected) throws IOException {
    if (change instanceof FileChange.Write w) {
      activityLog.beforeWrite(w.path(), w.position(), w.length());
    } else if (change instanceof FileChange.Truncate t) {
      activityLog.beforeNamespaceChange(t.path());
    } else if (change instanceof FileChange.CreateFile) {
      activityLog.beforeCreate(change.path());
    } else if (change.isNamespaceChange()) {
      activityLog.beforeNamespaceChange(change.path());
      if (change instanceof FileChange.Move m) {
        activityLog.beforeNamespaceChange(m.source());
      }
    }
    if (!peerConnected) {
      startAlone("changes were made while the peer was disconnected");
      mark(change);
    }
  }

  /** The peer is away: the first change starts a new generation so a returning peer is detected as behind. */
  void startAlone(String reason) throws IOException {
    if (alone) {
      return;
    }
    synchronized (this) {
      if (alone) {
        return;
      }
      GenerationIds g = generations;
      GenerationIds next = g.current() == 0 ? g.newGeneration().startTracking().newGeneration()
          : g.startTracking().newGeneration();
      metadata.write(metadata.current().toBuilder()
          .setGenerations(next.toProto())
          .setPeerOutOfDate(true)
          .setOutOfDateReason(reason)
          .setOutOfDateSinceMillis(System.currentTimeMillis())
          .build());
      generations = next;
      alone = true;
      log.warn("peer out of date from now on ({}); new generation {}", reason, Long.toHexString(next.current()));
    }
  }

  /** Sets the bits (or dirty path) for a change the peer did not get. */
  void mark(FileChange change) {
    bitmapChanged = true;
    bitmap.mark(change);
  }

  /** Sets the bits of a write the peer may not have (its data is not needed). */
  void markWrite(String path, long position, long length) {
    bitmapChanged = true;
    bitmap.markWrite(path, position, length);
  }

  /** A written block was acknowledged by the peer during resync. */
  void blockResynced(String path, long block) {
    bitmap.clearBlock(path, block);
    bitmapChanged = true;
  }

  void pathResynced(String path) {
    bitmap.clearPath(path);
    bitmapChanged = true;
  }

  /** The ids both sides hold once a resync completes: this node's, with the bitmap id cleared. */
  GenerationIds generationsAfterResync() {
    GenerationIds g = generations;
    return g.current() == 0 ? g.newGeneration().clearBitmap() : g.clearBitmap();
  }

  /** The peer received everything and recorded {@code next}: it shares this node's generation again. */
  synchronized void resyncCompleted(GenerationIds next) throws IOException {
    metadata.write(metadata.current().toBuilder()
        .setGenerations(next.toProto())
        .setPeerOutOfDate(false)
        .setPeerNeedsFullResync(false)
        .setOutOfDateReason("")
        .build());
    generations = next;
    alone = false;
    bitmap.clearAll();
    bitmapChanged = true;
    flushBitmap();
  }

  /** The first connection of two fresh nodes: both take a first generation, nothing to send. */
  synchronized void firstGeneration() throws IOException {
    if (generations.current() == 0) {
      resyncCompleted(generationsAfterResync());
    }
  }

  /** Saves the bitmap when it changed since the last save. */
  void flushBitmap() throws IOException {
    if (bitmapChanged) {
      bitmapChanged = false;
      bitmapStore.write(bitmap);
    }
  }

  /**
   * Saves the bitmap and marks a clean close, so the next open knows this node did not crash.
   * When the peer acknowledged everything, no extent can differ: the activity log is emptied.
   */
  void close(boolean peerHasEverything) throws IOException {
    bitmapChanged = true;
    flushBitmap();
    if (peerHasEverything) {
      activityLog.clear();
    }
    metadata.write(metadata.current().toBuilder().setRunningAsPrimary(false).build());
    activityLog.close();
  }

  @Override
  public void close() throws IOException {
    close(false);
  }
}
