package io.replicator;

import java.nio.file.FileSystem;
import java.nio.file.Path;

/**
 * A {@link FileSystem} whose every change is replicated to a secondary before it returns (in
 * {@link ReplicationMode#SYNC}). Reads are served from the local delegate. Obtain one from
 * {@link Replicator#primary(Path)} or through the {@code replica} URI scheme.
 *
 * <p>Writable memory mappings cannot be intercepted and are refused; everything else that changes
 * files through {@code java.nio.file} is replicated.
 */
public abstract class ReplicatedFileSystem extends FileSystem {

  /** For the implementation only. */
  protected ReplicatedFileSystem() {}

  /** A snapshot of the replication state: node state, peer, generation, dirty bytes, progress. */
  public abstract ReplicationStatus status();

  /**
   * Each follower's stream by the name it was declared under: its mode, connection, generation,
   * and the bytes its own dirty bitmap holds. Empty when no follower is declared.
   */
  public abstract java.util.Map<String, ReplicationStatus> followers();

  /**
   * Latency of writes and forces as this application saw them, and the bytes written, since the
   * file system opened. An agent exports them (with the lease, to its {@code /metrics}).
   */
  public abstract WriteStatistics writeStatistics();

  /** The directory on the delegate file system that this file system's root maps to. */
  public abstract Path delegateRoot();

  /**
   * Compares the whole tree with the peer's by 128-bit block checksums while the application keeps
   * writing. Differing blocks and entries are marked dirty and reported; {@link #resync()} repairs
   * them. A block the application rewrites during the comparison may be reported as differing.
   *
   * @throws java.io.IOException when the peer is not connected or a resync is running
   */
  public abstract VerifyReport verify() throws java.io.IOException;

  /**
   * Sends the peer whatever is marked dirty (after a verify, say) and returns when it is in sync.
   *
   * @throws java.io.IOException when the peer is not connected or the resync did not complete
   */
  public abstract void resync() throws java.io.IOException;
}
