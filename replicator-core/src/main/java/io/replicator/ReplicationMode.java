package io.replicator;

/**
 * When a write through a {@link ReplicatedFileSystem} returns (DRBD's protocols C, B and A, in
 * file terms). {@code force()} waits for durability on both sides in every mode.
 */
public enum ReplicationMode {
  /** Applied locally and applied to the secondary's file system. Loses nothing acknowledged. */
  SYNC,
  /** Applied locally and received in the secondary's memory. Loses nothing unless both crash. */
  MEMORY,
  /** Applied locally; the stream lags by at most a bounded window of bytes. */
  ASYNC
}
