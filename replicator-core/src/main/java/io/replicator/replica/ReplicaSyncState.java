package io.replicator.replica;

import io.replicator.meta.ActivityLog;
import io.replicator.meta.DirtyBitmapStore;
import io.replicator.proto.HotExtent;
import io.replicator.meta.GenerationIds;
import io.replicator.meta.MachineBoot;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.proto.NodeMetadata;
import io.replicator.proto.ResyncStart;
import io.replicator.proto.SyncState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The replica's side of resync: its generation ids and consistency, what it reports at connect
 * (hot extents and dirty bytes left from a time it served as primary), and the durable steps of a
 * resync (started: inconsistent; done: adopt the source's ids).
 */
final class ReplicaSyncState {
  private static final Logger log = LoggerFactory.getLogger(ReplicaSyncState.class);
  static final String METADATA_DIRECTORY = ".replicator";

  private final Path root;
  private final NodeMetadataStore metadata;
  private volatile boolean resyncRunning;
  /** Resyncs started by this process: a flush clears the boot mark only of the resync it follows. */
  private long resyncsStarted; // guarded by this

  ReplicaSyncState(Path root, NodeMetadataStore metadata) {
    this.root = root;
    this.metadata = metadata;
  }

  GenerationIds generations() {
    return GenerationIds.fromProto(metadata.current().getGenerations());
  }

  /** This machine's current boot (Linux's boot_id); empty where the kernel does not say. */
  static final String BOOT_ID = MachineBoot.CURRENT;

  /** See {@link MachineBoot#resyncLost}. */
  static boolean resyncLostWithTheMachine(NodeMetadata m, String bootNow) {
    return MachineBoot.resyncLost(m, bootNow);
  }

  boolean inconsistent() {
    return metadata.current().getInconsistent();
  }

  /** What the metadata says now, for whoever decides roles. */
  io.replicator.LocalData localData() {
    io.replicator.proto.NodeMetadata m = metadata.current();
    // changes an operator (or a deposition) chose to discard are no longer this node's to offer
    return new io.replicator.LocalData(!m.getInconsistent() && !resyncRunning,
        m.getPeerOutOfDate() && !m.getDiscardLocal(),
        m.getGenerations().getCurrent(), m.getPrimarySinceMillis(), false);
  }

  boolean resyncRunning() {
    return resyncRunning;
  }

  /** Bytes this node changed while it served as primary without its peer (for split-brain policies). */
  long dirtyBytes() {
    Path dir = root.resolve(METADATA_DIRECTORY);
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try {
      return DirtyBitmapStore.open(dir).bitmap().dirtyBytes();
    } catch (IOException e) {
      log.warn("cannot read this node's dirty bitmap: {}", e.toString());
      return 0;
    }
  }

  SyncState toProto() throws IOException {
    NodeMetadata m = metadata.current();
    SyncState.Builder b = SyncState.newBuilder()
        .setDirtyBytes(dirtyBytes())
        .setPrimarySinceMillis(m.getPrimarySinceMillis())
        .setDiscardLocal(m.getDiscardLocal())
        .setInconsistent(m.getInconsistent());
    Path dir = root.resolve(METADATA_DIRECTORY);
    if (Files.exists(dir.resolve(ActivityLog.FILE_NAME))) {
      try (ActivityLog al = ActivityLog.open(dir)) {
        b.addAllHotExtents(al.toProto());
        for (String path : al.hotPaths()) {
          // extent size 0: the whole path (a namespace change that may not have reached the peer)
          b.addHotExtents(HotExtent.newBuilder().setPath(path));
        }
      }
    }
    return b.build();
  }

  synchronized void resyncStarted(ResyncStart start) throws IOException {
    resyncsStarted++;
    resyncRunning = true;
    metadata.write(metadata.current().toBuilder().setInconsistent(true).setResyncBootId(BOOT_ID).build());
    log.info("{} resync started as target: {} bytes to receive", start.getFull() ? "full" : "incremental",
        start.getBytesTotal());
  }

  /**
   * The flush of a resync's data failed. After a failed writeback the kernel may have dropped the
   * pages it could not write and reports the error once, so a later flush that succeeds proves
   * nothing: this copy is inconsistent, and the next resync compares every block instead of
   * trusting what was acknowledged.
   */
  synchronized void flushFailed(IOException cause) {
    try {
      metadata.write(metadata.current().toBuilder().setDiscardLocal(true).setInconsistent(true).build());
      log.error("flushing the resync's data failed ({}): the next resync compares every block", cause.toString());
    } catch (IOException e) {
      log.error("flushing the resync's data failed ({}), and so did recording it ({})", cause.toString(),
          e.toString());
    }
  }

  /**
   * Whether this copy's last resync ended under this boot and its data may not be on the disk yet
   * (a process that stopped before the flush that follows a resync's end).
   */
  synchronized boolean unflushedThisBoot() {
    NodeMetadata m = metadata.current();
    return !m.getInconsistent() && !BOOT_ID.isEmpty() && m.getResyncBootId().equals(BOOT_ID);
  }

  /** Which resync a flush started now follows, for {@link #resyncFlushed}. */
  synchronized long resyncsStarted() {
    return resyncsStarted;
  }

  /**
   * The file system was flushed after resync number {@code resync} ended: its data is on the disk,
   * so a restart of the machine no longer puts this copy in doubt. A resync started since keeps its
   * own mark.
   */
  synchronized void resyncFlushed(long resync) throws IOException {
    NodeMetadata m = metadata.current();
    if (resync != resyncsStarted || resyncRunning || m.getInconsistent() || m.getResyncBootId().isEmpty()) {
      return;
    }
    metadata.write(m.toBuilder().clearResyncBootId().build());
  }

  /**
   * Every resync change is applied: take the source's generations; this copy is consistent again.
   * When {@code durable} is false, the resync's data may still be in the page cache: the boot it
   * ran under stays recorded until {@link #resyncFlushed}, so that a machine that goes down first
   * comes back as an inconsistent copy.
   */
  synchronized void resyncDone(GenerationIds source, boolean durable) throws IOException {
    GenerationIds adopted = generations().adoptFrom(source);
    metadata.write(metadata.current().toBuilder()
        .setGenerations(adopted.toProto())
        .setInconsistent(false)
        .setDiscardLocal(false)
        .setPrimarySinceMillis(0) // a secondary in sync: any earlier time as primary is over
        // and so is anything it changed then: the source's data replaced it, so it holds nothing
        // its peer lacks (a stale mark would make it look like the newest copy at the next start)
        .setPeerOutOfDate(false)
        .clearOutOfDateReason()
        .setOutOfDateSinceMillis(0)
        .setPeerNeedsFullResync(false)
        .setResyncBootId(durable ? "" : BOOT_ID)
        .build());
    Path dir = root.resolve(METADATA_DIRECTORY);
    if (Files.exists(dir.resolve(ActivityLog.FILE_NAME))) {
      try (ActivityLog al = ActivityLog.open(dir)) {
        al.clear();
      }
    }
    if (Files.exists(dir)) {
      // whatever this node changed as a primary is now overwritten by the source's data (an empty
      // valid bitmap needs no write: the fsync would only lengthen every resync's end)
      DirtyBitmapStore store = DirtyBitmapStore.open(dir);
      if (store.found() == io.replicator.meta.StoreState.CORRUPT || !store.bitmap().isEmpty()) {
        store.write(new io.replicator.meta.DirtyBitmap());
      }
    }
    resyncRunning = false;
    log.info("in sync with the primary at generation {}", Long.toHexString(adopted.current()));
  }
}
