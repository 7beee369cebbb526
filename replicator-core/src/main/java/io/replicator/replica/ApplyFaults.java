package io.replicator.replica;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Named fault-injection points in the apply path, so tests can simulate a full disk, a failing
 * fsync, a slow disk or a peer slow to answer a manifest. An IOException thrown here is an apply failure like any other.
 */
interface ApplyFaults {

  /** Injects nothing. */
  ApplyFaults NONE = new ApplyFaults() {};

  /** Called on the applying thread just before {@code change} is applied. */
  default void beforeApply(long seq, FileChange change) throws IOException {}

  /** Called just before a file or directory at {@code path} is made durable (one fsync). */
  default void beforeSync(Path path) throws IOException {}

  /** Called just before the whole file system under {@code root} is flushed (after a resync). */
  default void beforeFlush(Path root) throws IOException {}

  /** Called on the manifest thread before it walks the tree for {@code request} (a slow peer, say). */
  default void beforeManifest(io.replicator.proto.ManifestRequest request) throws IOException {}

  /** Called on the control step of a resync's end, before this copy records that it is consistent. */
  default void beforeResyncEnd() throws IOException {}
}
