package io.replicator.replica;

import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** The applier on a real directory of the default file system, with real fsyncs. */
class DefaultFsChangeApplierTest extends ChangeApplierContract {

  @TempDir Path base;

  @Override
  Path newBase() {
    return base;
  }

  @Override
  boolean directoriesSync() {
    return true;
  }
}
