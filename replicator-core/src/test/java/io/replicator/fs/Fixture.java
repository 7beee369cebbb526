package io.replicator.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A wrapper file system over {@code base/data} whose changes a {@link MirroringChangeSink}
 * replays onto {@code base/mirror}.
 */
final class Fixture implements Closeable {

  final FsKind.Base base;
  final Path data;
  final Path mirror;
  final MirroringChangeSink sink;
  final WrappedFileSystem fs;

  private Fixture(FsKind.Base base, MirroringChangeSink sink) throws IOException {
    this.base = base;
    this.data = Files.createDirectories(base.path().resolve("data"));
    this.mirror = Files.createDirectories(base.path().resolve("mirror"));
    this.sink = sink == null ? new MirroringChangeSink(mirror) : sink;
    this.fs = (WrappedFileSystem) ReplicatedFileSystemProvider.open(data, this.sink);
  }

  static Fixture open(FsKind kind, Path tempDir) throws IOException {
    return new Fixture(kind.newBase(tempDir), null);
  }

  /** With a sink made for the mirror directory {@code base/mirror}. */
  static Fixture open(
      FsKind kind, Path tempDir, java.util.function.Function<Path, MirroringChangeSink> sink)
      throws IOException {
    FsKind.Base base = kind.newBase(tempDir);
    return new Fixture(base, sink.apply(base.path().resolve("mirror")));
  }

  Path path(String path) {
    return fs.getPath(path);
  }

  /** Asserts that the mirror holds exactly what the delegate holds. */
  void assertMirrored() throws IOException {
    assertThat(TreeSnapshot.of(mirror, sink.timedPaths()))
        .as("mirror tree")
        .isEqualTo(TreeSnapshot.of(data, sink.timedPaths()));
  }

  @Override
  public void close() throws IOException {
    try {
      fs.close();
    } finally {
      base.close();
    }
  }
}
