package io.replicator.fs;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.io.MoreFiles;
import io.replicator.change.FileChange;
import io.replicator.change.FileChange.CreateFile;
import io.replicator.change.FileChange.Delete;
import io.replicator.change.FileChange.Move;
import io.replicator.change.FileChange.SetPermissions;
import io.replicator.change.FileChange.SetTimes;
import io.replicator.change.FileChange.Write;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * When the delegate's directory streams are secure, the wrapper's are too, and every operation
 * relative to the open directory is replicated like the provider's own: the changes come out with
 * the directory's current name, and the mirror replaying them ends equal to the tree.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class SecureDirectoryStreamTest {

  @TempDir Path tempDir;

  private Fixture fixture;

  private Fixture open(FsKind kind) throws Exception {
    fixture = Fixture.open(kind, tempDir);
    return fixture;
  }

  @AfterEach
  void checkMirrorAndClose() throws Exception {
    if (fixture != null) {
      try {
        fixture.assertMirrored();
      } finally {
        fixture.close();
      }
    }
  }

  private static SecureDirectoryStream<Path> secure(Path dir) throws Exception {
    DirectoryStream<Path> stream = Files.newDirectoryStream(dir);
    assertThat(stream).isInstanceOf(SecureDirectoryStream.class);
    return (SecureDirectoryStream<Path>) stream;
  }

  private List<FileChange> changes() {
    return fixture.sink.changes();
  }

  private static ByteBuffer bytes(String text) {
    return ByteBuffer.wrap(text.getBytes(UTF_8));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void guavaDeletesATreeSecurelyAndEveryDeleteIsReplicated(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/keep"));
    Files.createDirectories(f.path("/tree/a/b/c"));
    Files.write(f.path("/tree/a/b/c/deep"), new byte[] {1});
    Files.write(f.path("/tree/a/x"), new byte[] {2});
    Files.createSymbolicLink(f.path("/tree/link"), f.fs.getPath("/keep"));
    f.sink.clear();
    MoreFiles.deleteDirectoryContents(f.path("/tree"));
    assertThat(Files.exists(f.path("/tree"))).isTrue();
    assertThat(Files.exists(f.path("/keep"))).as("the link was removed, not followed").isTrue();
    assertThat(changes()).containsExactlyInAnyOrder(
        new Delete("tree/a/b/c/deep"), new Delete("tree/a/b/c"), new Delete("tree/a/b"),
        new Delete("tree/a/x"), new Delete("tree/a"), new Delete("tree/link"));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void relativeDeletesMovesAndOpensAreReplicatedWithTheDirectoryName(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/d/sub"));
    Files.createDirectories(f.path("/e"));
    Files.write(f.path("/d/old"), new byte[] {9});
    f.sink.clear();
    try (SecureDirectoryStream<Path> d = secure(f.path("/d"));
        SecureDirectoryStream<Path> e = secure(f.path("/e"))) {
      try (SeekableByteChannel ch = d.newByteChannel(f.fs.getPath("new"),
          Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE))) {
        ch.write(bytes("hello"));
      }
      try (SeekableByteChannel ch = d.newByteChannel(f.fs.getPath("new"), Set.of(StandardOpenOption.READ))) {
        assertThat(ch.size()).isEqualTo(5);
      }
      d.move(f.fs.getPath("new"), e, f.fs.getPath("moved"));
      d.deleteFile(f.fs.getPath("old"));
      d.deleteDirectory(f.fs.getPath("sub"));
      try (SecureDirectoryStream<Path> child = e.newDirectoryStream(f.fs.getPath(".."), LinkOption.NOFOLLOW_LINKS)) {
        // "e/.." is the root: an absolute change path, and the metadata directory stays out of reach
        child.deleteDirectory(f.fs.getPath("d"));
        assertThatThrownBy(() -> child.deleteDirectory(f.fs.getPath(WrappedFileSystem.METADATA_DIRECTORY)))
            .isInstanceOf(AccessDeniedException.class);
        List<String> names = new ArrayList<>();
        child.forEach(p -> names.add(p.getFileName().toString()));
        assertThat(names).containsExactly("e");
      }
    }
    assertThat(changes()).containsExactly(
        new CreateFile("d/new", true),
        new Write("d/new", 0, bytes("hello")),
        new Move("d/new", "e/moved", true, true),
        new Delete("d/old"),
        new Delete("d/sub"),
        new Delete("d"));
    assertThat(Files.readString(f.path("/e/moved"))).isEqualTo("hello");
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void theStreamFollowsItsDirectoryWhenItIsRenamed(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/d"));
    Files.write(f.path("/d/x"), new byte[] {1});
    Files.write(f.path("/d/y"), new byte[] {2});
    try (SecureDirectoryStream<Path> d = secure(f.path("/d"))) {
      f.sink.clear();
      Files.move(f.path("/d"), f.path("/renamed"));
      d.deleteFile(f.fs.getPath("x"));
      try (SeekableByteChannel ch = d.newByteChannel(f.fs.getPath("y"), Set.of(StandardOpenOption.WRITE))) {
        ch.write(bytes("z"));
      }
      assertThat(changes()).containsExactly(
          new Move("d", "renamed", false, false),
          new Delete("renamed/x"),
          new Write("renamed/y", 0, bytes("z")));
    }
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void attributeChangesThroughTheStreamAreReplicated(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/d"));
    Files.write(f.path("/d/f"), new byte[] {1});
    FileTime time = FileTime.fromMillis(1_500_000_000_000L);
    Set<PosixFilePermission> permissions = PosixFilePermissions.fromString("rw-r-----");
    try (SecureDirectoryStream<Path> d = secure(f.path("/d"))) {
      f.sink.clear();
      BasicFileAttributeView fileTimes = d.getFileAttributeView(f.fs.getPath("f"), BasicFileAttributeView.class);
      assertThat(fileTimes.readAttributes().size()).isEqualTo(1);
      fileTimes.setTimes(time, null, null);
      d.getFileAttributeView(f.fs.getPath("f"), PosixFileAttributeView.class).setPermissions(permissions);
      d.getFileAttributeView(BasicFileAttributeView.class).setTimes(time, null, null);
    }
    assertThat(changes()).containsExactly(
        new SetTimes("d/f", time, null, null),
        new SetPermissions("d/f", permissions),
        new SetTimes("d", time, null, null));
    assertThat(Files.getLastModifiedTime(f.path("/d/f"))).isEqualTo(time);
    assertThat(Files.getLastModifiedTime(f.path("/d"))).isEqualTo(time);
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void aDeletedDirectoryChangesNothingAndForeignStreamsAreRefused(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/d"));
    Path outside = Files.createDirectories(f.base.path().resolve("outside"));
    try (SecureDirectoryStream<Path> d = secure(f.path("/d"));
        DirectoryStream<Path> foreign = Files.newDirectoryStream(outside)) {
      Files.delete(f.path("/d"));
      f.sink.clear();
      assertThatThrownBy(() -> d.newByteChannel(f.fs.getPath("x"),
          Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE)))
          .isInstanceOf(NoSuchFileException.class);
      if (foreign instanceof SecureDirectoryStream<Path> other) {
        assertThatThrownBy(() -> d.move(f.fs.getPath("x"), other, f.fs.getPath("x")))
            .isInstanceOf(ProviderMismatchException.class);
      }
      assertThat(changes()).isEmpty();
    }
  }
}
