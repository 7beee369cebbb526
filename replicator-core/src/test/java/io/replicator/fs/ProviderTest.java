package io.replicator.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.nio.file.FileSystemAlreadyExistsException;
import java.nio.file.FileSystemNotFoundException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.spi.FileSystemProvider;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The {@code replica} scheme, the registry of open file systems, paths and watch services. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ProviderTest {

  @TempDir Path tempDir;

  @Test
  void providerIsInstalledForTheScheme() {
    assertThat(FileSystemProvider.installedProviders())
        .anySatisfy(p -> assertThat(p.getScheme()).isEqualTo("replica"));
    // Opening by URI reaches Replicator.openFromUri, which refuses an environment without a peer.
    FileSystemProvider installed =
        FileSystemProvider.installedProviders().stream()
            .filter(p -> p.getScheme().equals("replica"))
            .findFirst()
            .orElseThrow();
    assertThat(installed).isInstanceOf(ReplicatedFileSystemProvider.class);
    assertThatThrownBy(() -> installed.newFileSystem(URI.create("replica:///nowhere"), Map.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'peer'");
  }

  @Test
  void registryFindsFileSystemsAndPathsByUri() throws Exception {
    Path data = Files.createDirectories(tempDir.resolve("my data"));
    {
      MirroringChangeSink sink = new MirroringChangeSink(Files.createDirectories(tempDir.resolve("m")));
      WrappedFileSystem fs = (WrappedFileSystem) ReplicatedFileSystemProvider.open(data, sink);
      URI uri = ReplicatedFileSystemProvider.uriFor(data);
      assertThat(uri.getScheme()).isEqualTo("replica");
      assertThat(fs.provider()).isSameAs(
          FileSystemProvider.installedProviders().stream()
              .filter(p -> p.getScheme().equals("replica")).findFirst().orElseThrow());
      assertThat(FileSystems.getFileSystem(uri)).isSameAs(fs);
      assertThatThrownBy(() -> ReplicatedFileSystemProvider.open(data, sink))
          .isInstanceOf(FileSystemAlreadyExistsException.class);
      Path file = fs.getPath("/dir/a file");
      assertThat(file.toUri().toString())
          .isEqualTo("replica://" + data.toUri().getRawPath().replaceAll("/$", "") + "/dir/a%20file");
      assertThat(Paths.get(file.toUri())).isEqualTo(file);
      assertThat(Paths.get(fs.getPath("/").toUri())).isEqualTo(fs.getPath("/"));
      fs.close();
      assertThatThrownBy(() -> FileSystems.getFileSystem(uri))
          .isInstanceOf(FileSystemNotFoundException.class);
      assertThatThrownBy(() -> Paths.get(file.toUri()))
          .isInstanceOf(FileSystemNotFoundException.class);
    }
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void pathsAreUnixStyleAndWrapped(FsKind kind) throws Exception {
    try (Fixture f = Fixture.open(kind, tempDir)) {
      Path p = f.fs.getPath("/a/b/../c/./d");
      assertThat(p.toString()).isEqualTo("/a/b/../c/./d");
      assertThat(p.normalize().toString()).isEqualTo("/a/c/d");
      assertThat(p.getFileName().toString()).isEqualTo("d");
      assertThat(p.getParent().getFileSystem()).isSameAs(f.fs);
      assertThat(p.getRoot()).isEqualTo(f.fs.getPath("/"));
      assertThat(f.fs.getPath("/../x").normalize().toString()).isEqualTo("/x");
      assertThat(f.fs.getPath("a", "b").toAbsolutePath().toString()).isEqualTo("/a/b");
      assertThat(f.fs.getPath("/a/b").relativize(f.fs.getPath("/a/c/d")).toString()).isEqualTo("../c/d");
      assertThat(f.fs.getPath("/a/b").startsWith("/a")).isTrue();
      assertThat(f.fs.getPath("/a/b").endsWith("b")).isTrue();
      assertThat(f.fs.getPath("/a").equals(f.data.resolve("a"))).isFalse();
      // "/.." stays at the root, so the delegate is never left.
      Files.write(f.fs.getPath("/../../outside"), new byte[] {1});
      assertThat(Files.exists(f.data.resolve("outside"))).isTrue();
      assertThat(f.fs.getRootDirectories()).containsExactly(f.fs.getPath("/"));
      assertThat(f.fs.getFileStores()).hasSize(1);
      assertThat(f.fs.supportedFileAttributeViews()).contains("basic", "posix").doesNotContain("unix");
      assertThat(f.fs.getPathMatcher("glob:/a/*.txt").matches(f.fs.getPath("/a/x.txt"))).isTrue();
      assertThat(f.fs.status()).isNotNull();
      assertThat(f.fs.delegateRoot()).isEqualTo(f.data);
    }
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void watchServiceReportsWrappedPaths(FsKind kind) throws Exception {
    try (Fixture f = Fixture.open(kind, tempDir);
        WatchService watcher = f.fs.newWatchService()) {
      Path dir = Files.createDirectory(f.path("/w"));
      WatchKey key = dir.register(watcher, StandardWatchEventKinds.ENTRY_CREATE);
      assertThat(key.watchable()).isEqualTo(dir);
      Files.createFile(f.path("/w/new"));
      WatchKey signalled = watcher.poll(20, TimeUnit.SECONDS);
      assertThat(signalled).isSameAs(key);
      List<WatchEvent<?>> events = signalled.pollEvents();
      assertThat(events).isNotEmpty();
      assertThat(events.get(0).context()).isEqualTo(f.fs.getPath("new"));
    }
  }
}
