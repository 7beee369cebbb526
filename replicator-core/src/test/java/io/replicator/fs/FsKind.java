package io.replicator.fs;

import com.google.common.jimfs.Configuration;
import com.google.common.jimfs.Jimfs;
import com.google.common.jimfs.WatchServiceConfiguration;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** The delegate file systems the wrapper is tested on. */
enum FsKind {
  /** The platform file system, in a temporary directory. */
  DEFAULT,
  /** An in-memory unix file system with POSIX attributes. */
  JIMFS;

  /** A base directory for one test; closing it releases the in-memory file system. */
  Base newBase(Path tempDir) throws IOException {
    if (this == DEFAULT) {
      return new Base(tempDir, null);
    }
    FileSystem jimfs =
        Jimfs.newFileSystem(
            Configuration.unix().toBuilder()
                .setAttributeViews("basic", "owner", "posix", "unix")
                // jimfs polls for watch events; its default of 5 s would slow the watch test
                .setWatchServiceConfiguration(
                    WatchServiceConfiguration.polling(10, TimeUnit.MILLISECONDS))
                .build());
    Path base = jimfs.getPath("/work");
    Files.createDirectories(base);
    return new Base(base, jimfs);
  }

  /** A base directory and the file system to close with it (null for the default one). */
  record Base(Path path, FileSystem owned) implements Closeable {
    @Override
    public void close() throws IOException {
      if (owned != null) {
        owned.close();
      }
    }
  }
}
