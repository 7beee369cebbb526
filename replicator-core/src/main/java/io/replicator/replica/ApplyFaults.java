package io.replicator.replica;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Named fault-injection points in the apply path, so tests can simulate a full disk, a failing
 * fsync or a slow disk. An IOException thrown here is an apply failure like any other.
 */
interface ApplyFaults {

  /** Injects nothing. */
  ApplyFaults NONE = new ApplyFaults() {};

  /** Called on the applying thread just before {@code change} is applied. */
  default void beforeApply(long seq, FileChange change) throws IOException {}

  /** Called just before a file or directory at {@code path} is made durable (one fsync). */
  default void beforeSync(Path path) throws IOException {}
}
