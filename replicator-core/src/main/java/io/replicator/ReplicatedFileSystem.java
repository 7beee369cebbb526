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

  /** The directory on the delegate file system that this file system's root maps to. */
  public abstract Path delegateRoot();
}
