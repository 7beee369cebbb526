package io.replicator.replica;

import com.google.common.jimfs.Configuration;
import com.google.common.jimfs.Jimfs;
import java.io.IOException;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;

/** The applier on an in-memory Unix-like jimfs file system with POSIX attributes. */
class JimfsChangeApplierTest extends ChangeApplierContract {

  private FileSystem fileSystem;

  static FileSystem newUnixJimfs() {
    return Jimfs.newFileSystem(
        Configuration.unix().toBuilder().setAttributeViews("basic", "owner", "posix", "unix").build());
  }

  @Override
  Path newBase() throws IOException {
    fileSystem = newUnixJimfs();
    return Files.createDirectories(fileSystem.getPath("/work"));
  }

  @Override
  boolean directoriesSync() {
    return false;
  }

  @Override
  void closeBase() throws IOException {
    fileSystem.close();
  }
}
