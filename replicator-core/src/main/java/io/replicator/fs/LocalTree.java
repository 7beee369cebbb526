package io.replicator.fs;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The primary's own tree as resync sees it: the delegate root, and the locks that order the
 * application's changes. Reading a block and submitting it under {@link #underFileLock} orders the
 * resync's copy with the application's writes to that file, so the later one wins on both sides.
 */
public interface LocalTree {

  /** The directory on the delegate file system that the replicated root maps to. */
  Path delegateRoot();

  /** Runs {@code action} while no change to {@code changePath} (and no namespace change) can run. */
  <T> T underFileLock(String changePath, IoAction<T> action) throws IOException;

  /** Runs {@code action} while no change at all can run (the exclusive namespace lock). */
  <T> T underNamespaceLock(IoAction<T> action) throws IOException;

  /** An action that may throw {@link IOException}. */
  @FunctionalInterface
  interface IoAction<T> {
    T run() throws IOException;
  }
}
