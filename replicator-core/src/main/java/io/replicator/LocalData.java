package io.replicator;

import io.replicator.meta.MachineBoot;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.proto.NodeMetadata;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What a node's metadata says about its data while nothing runs on it, for whoever decides roles:
 * whether the data is consistent (no interrupted resync into it), whether it holds changes its
 * peer lacks, and its current generation.
 *
 * @param consistent false while a resync into this node is unfinished, or when the machine went
 *     down before a resync's data reached the disk: it must not be promoted
 * @param peerOutOfDate this node made changes its peer does not have
 * @param generation the current generation id, 0 for a node that never replicated
 * @param primarySinceMillis when this node last became primary (epoch millis), 0 when never or unknown
 * @param crashedAsPrimary it was running as primary and did not close cleanly
 */
public record LocalData(boolean consistent, boolean peerOutOfDate, long generation, long primarySinceMillis,
    boolean crashedAsPrimary) {

  /** Reads the metadata under {@code root}; a root with none yet is consistent and at generation 0. */
  public static LocalData read(Path root) throws IOException {
    Path dir = root.resolve(Replicator.METADATA_DIRECTORY);
    if (!Files.isDirectory(dir)) {
      return new LocalData(true, false, 0, 0, false);
    }
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    NodeMetadata m = store.current();
    boolean corrupt = store.found() == NodeMetadataStore.Found.CORRUPT;
    // a resync whose data was still in the page cache when the machine went down: not consistent
    boolean resyncLost = MachineBoot.resyncLost(m, MachineBoot.CURRENT);
    return new LocalData(!m.getInconsistent() && !corrupt && !resyncLost, m.getPeerOutOfDate(),
        m.getGenerations().getCurrent(), m.getPrimarySinceMillis(), m.getRunningAsPrimary());
  }
}
