package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.jimfs.Configuration;
import com.google.common.jimfs.Jimfs;
import java.io.IOException;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(10)
class PathGuardTest {

  @TempDir Path base;
  Path root;
  Path outside;
  PathGuard guard;

  @BeforeEach
  void setUp() throws IOException {
    root = Files.createDirectory(base.resolve("root"));
    outside = Files.createDirectory(base.resolve("outside"));
    guard = new PathGuard(root);
  }

  @Test
  void resolvesElementByElementUnderTheRealRoot() throws IOException {
    assertThat(guard.resolveFollowingLinks("")).isEqualTo(root.toRealPath());
    assertThat(guard.resolveFollowingLinks("a/b/c")).isEqualTo(root.toRealPath().resolve("a/b/c"));
    assertThat(guard.resolveNoFollow("x")).isEqualTo(root.toRealPath().resolve("x"));
    assertThat(guard.symbolicLinkSeen()).isFalse();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/etc/passwd",
        "..",
        "a/..",
        "a/../../x",
        "./a",
        "a//b",
        "a/",
        "a\0b",
        ".replicator",
        ".replicator/state",
        ".Replicator/state"
      })
  void refusesHostilePaths(String path) {
    assertThatThrownBy(() -> guard.resolveFollowingLinks(path))
        .isInstanceOf(PathRefusedException.class)
        .hasMessageStartingWith("refused path '")
        .hasMessageNotContaining("\0");
    assertThatThrownBy(() -> guard.resolveNoFollow(path)).isInstanceOf(PathRefusedException.class);
  }

  @Test
  void refusesAnElementHoldingTheRootFileSystemsSeparator() throws IOException {
    try (FileSystem windows = Jimfs.newFileSystem(Configuration.windows())) {
      Path windowsRoot = Files.createDirectories(windows.getPath("C:\\replica"));
      PathGuard windowsGuard = new PathGuard(windowsRoot);
      assertThat(windowsGuard.resolveFollowingLinks("a/b"))
          .isEqualTo(windows.getPath("C:\\replica\\a\\b"));
      assertThatThrownBy(() -> windowsGuard.resolveFollowingLinks("a\\..\\..\\x"))
          .isInstanceOf(PathRefusedException.class)
          .hasMessageContaining("contains '\\'");
    }
  }

  @Test
  void refusesAncestorLinksThatLeaveTheRoot() throws IOException {
    Files.createSymbolicLink(root.resolve("abs"), outside);
    Files.createSymbolicLink(root.resolve("rel"), root.getFileSystem().getPath("../outside"));
    Files.createDirectory(root.resolve("sub"));
    Files.createSymbolicLink(root.resolve("sub/up"), root.getFileSystem().getPath("../.."));

    for (String path : new String[] {"abs/f", "rel/f", "sub/up/outside/f", "abs/deeper/f"}) {
      assertThatThrownBy(() -> guard.resolveFollowingLinks(path))
          .as(path)
          .isInstanceOf(PathRefusedException.class)
          .hasMessageContaining("leads outside the replica root");
      assertThatThrownBy(() -> guard.resolveNoFollow(path))
          .as(path)
          .isInstanceOf(PathRefusedException.class);
    }
    assertThat(guard.symbolicLinkSeen()).isTrue();
  }

  @Test
  void aRememberedDirectoryIsReadAgainOnceForgotten() throws IOException {
    PathGuard remembering = new PathGuard(root, true);
    Files.createDirectories(root.resolve("d/e"));
    assertThat(remembering.resolveFollowingLinks("d/e/f")).isEqualTo(root.toRealPath().resolve("d/e/f"));

    // the directory becomes a link leading out, as a namespace change of the applier would make it
    Files.delete(root.resolve("d/e"));
    Files.createSymbolicLink(root.resolve("d/e"), outside);
    remembering.forgetDirectories();

    assertThatThrownBy(() -> remembering.resolveFollowingLinks("d/e/f"))
        .isInstanceOf(PathRefusedException.class)
        .hasMessageContaining("leads outside the replica root");
    // a guard that remembers nothing reads the tree every time
    assertThatThrownBy(() -> guard.resolveFollowingLinks("d/e/f")).isInstanceOf(PathRefusedException.class);
  }

  @Test
  void followsTheFinalLinkOnlyWhenAskedTo() throws IOException {
    Path victim = Files.createFile(outside.resolve("victim"));
    Files.createSymbolicLink(root.resolve("link"), victim);

    assertThatThrownBy(() -> guard.resolveFollowingLinks("link"))
        .isInstanceOf(PathRefusedException.class)
        .hasMessageContaining("'link'");
    // Deleting or renaming the link itself is harmless.
    assertThat(guard.resolveNoFollow("link")).isEqualTo(root.toRealPath().resolve("link"));
  }

  @Test
  void refusesADanglingLinkThatWouldCreateOutside() throws IOException {
    Files.createSymbolicLink(root.resolve("dangling"), outside.resolve("new"));
    Files.createSymbolicLink(root.resolve("nowhere"), outside.resolve("missing/new"));
    Files.createSymbolicLink(root.resolve("hop1"), root.getFileSystem().getPath("hop2"));
    Files.createSymbolicLink(root.resolve("hop2"), outside.resolve("new"));

    for (String path : new String[] {"dangling", "nowhere", "hop1"}) {
      assertThatThrownBy(() -> guard.resolveFollowingLinks(path))
          .as(path)
          .isInstanceOf(PathRefusedException.class);
    }
  }

  @Test
  void acceptsLinksThatStayInside() throws IOException {
    Files.createDirectory(root.resolve("sub"));
    Files.createFile(root.resolve("sub/file"));
    Files.createSymbolicLink(root.resolve("in"), root.getFileSystem().getPath("sub"));
    Files.createSymbolicLink(root.resolve("fin"), root.getFileSystem().getPath("sub/file"));
    Files.createSymbolicLink(root.resolve("future"), root.getFileSystem().getPath("sub/later"));
    Files.createSymbolicLink(root.resolve("sub/self"), root.getFileSystem().getPath("."));

    assertThat(guard.resolveFollowingLinks("in/file")).isEqualTo(root.toRealPath().resolve("in/file"));
    assertThat(guard.resolveFollowingLinks("fin")).isEqualTo(root.toRealPath().resolve("fin"));
    assertThat(guard.resolveFollowingLinks("future")).isEqualTo(root.toRealPath().resolve("future"));
    assertThat(guard.resolveFollowingLinks("sub/self/self/file")).isNotNull();
  }

  @Test
  void refusesLinksIntoTheMetadataDirectory() throws IOException {
    Files.createDirectory(root.resolve(".replicator"));
    Files.createSymbolicLink(root.resolve("meta"), root.getFileSystem().getPath(".replicator"));
    assertThatThrownBy(() -> guard.resolveFollowingLinks("meta/state"))
        .isInstanceOf(PathRefusedException.class);
    assertThatThrownBy(() -> guard.resolveFollowingLinks("meta"))
        .isInstanceOf(PathRefusedException.class);
  }

  @Test
  void aLinkLoopIsAnErrorNotAnEscape() throws IOException {
    Files.createSymbolicLink(root.resolve("a"), root.getFileSystem().getPath("b"));
    Files.createSymbolicLink(root.resolve("b"), root.getFileSystem().getPath("a"));
    assertThatThrownBy(() -> guard.resolveFollowingLinks("a")).isInstanceOf(IOException.class);
    assertThatThrownBy(() -> guard.resolveFollowingLinks("a/x")).isInstanceOf(IOException.class);
  }

  @Test
  void aRootReachedThroughALinkIsResolvedToItsRealPath() throws IOException {
    Path linkedRoot = Files.createSymbolicLink(base.resolve("linked"), root);
    PathGuard linked = new PathGuard(linkedRoot);
    assertThat(linked.resolveFollowingLinks("f")).isEqualTo(root.toRealPath().resolve("f"));
  }

  /** Same checks on jimfs, whose paths and links are its own. */
  @Nested
  class OnJimfs {
    private FileSystem fileSystem;

    @AfterEach
    void close() throws IOException {
      fileSystem.close();
    }

    @Test
    @Timeout(10)
    void refusesEscapesOnJimfs() throws IOException {
      fileSystem = JimfsChangeApplierTest.newUnixJimfs();
      Path jimfsRoot = Files.createDirectories(fileSystem.getPath("/srv/root"));
      Files.createDirectories(fileSystem.getPath("/srv/outside"));
      Files.createSymbolicLink(jimfsRoot.resolve("out"), fileSystem.getPath("/srv/outside"));
      Files.createSymbolicLink(jimfsRoot.resolve("up"), fileSystem.getPath(".."));
      PathGuard jimfsGuard = new PathGuard(jimfsRoot);

      assertThatThrownBy(() -> jimfsGuard.resolveFollowingLinks("out/f"))
          .isInstanceOf(PathRefusedException.class);
      assertThatThrownBy(() -> jimfsGuard.resolveFollowingLinks("up/outside/f"))
          .isInstanceOf(PathRefusedException.class);
      assertThat(jimfsGuard.resolveFollowingLinks("plain/f"))
          .isEqualTo(fileSystem.getPath("/srv/root/plain/f"));
    }
  }
}
