package io.replicator.stream;

import static com.google.common.base.Preconditions.checkArgument;

/**
 * Granularity of change tracking.
 *
 * @param blockSize bytes per dirty-bitmap bit (a power of two); a bitmap saved with another size keeps its own
 * @param extentSize bytes per activity-log extent (a multiple of the block size)
 * @param maxHotExtents most extents kept hot: after a crash at most this many extents are resynced
 */
public record TrackingSettings(int blockSize, long extentSize, int maxHotExtents) {
  public TrackingSettings {
    checkArgument(blockSize >= 512 && blockSize <= (1 << 20) && Integer.bitCount(blockSize) == 1,
        "block size %s is not a power of two in 512..1 MiB", blockSize);
    checkArgument(extentSize >= blockSize && extentSize % blockSize == 0,
        "extent size %s is not a multiple of the block size %s", extentSize, blockSize);
    checkArgument(maxHotExtents >= 1, "at least one hot extent, not %s", maxHotExtents);
  }

  /** 4 KiB blocks, 4 MiB extents, 1024 hot extents (at most 4 GiB resynced after a crash). */
  public static TrackingSettings defaults() {
    return new TrackingSettings(4096, 4L << 20, 1024);
  }
}
