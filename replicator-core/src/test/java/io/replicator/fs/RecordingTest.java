package io.replicator.fs;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.io.MoreFiles;
import io.replicator.change.FileChange;
import io.replicator.change.FileChange.Copy;
import io.replicator.change.FileChange.CreateFile;
import io.replicator.change.FileChange.CreateLink;
import io.replicator.change.FileChange.CreateSymbolicLink;
import io.replicator.change.FileChange.Delete;
import io.replicator.change.FileChange.Force;
import io.replicator.change.FileChange.MakeDirectory;
import io.replicator.change.FileChange.Move;
import io.replicator.change.FileChange.SetPermissions;
import io.replicator.change.FileChange.SetTimes;
import io.replicator.change.FileChange.Truncate;
import io.replicator.change.FileChange.Write;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.ClosedFileSystemException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Each NIO way of changing files reports exactly the expected changes, in order; the mirror
 * replaying them ends equal to the delegate tree.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class RecordingTest {

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
        if (fixture.fs.isOpen()) {
          fixture.assertMirrored();
        }
      } finally {
        fixture.close();
      }
    }
  }

  private static ByteBuffer bytes(String text) {
    return ByteBuffer.wrap(text.getBytes(UTF_8));
  }

  private List<FileChange> changes() {
    return fixture.sink.changes();
  }

  private void clear() {
    fixture.sink.clear();
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void fourWaysToOpenForWritingReportTheCreation(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.newOutputStream(f.path("/stream")).close();
    Files.newByteChannel(f.path("/bytes"), StandardOpenOption.CREATE, StandardOpenOption.WRITE).close();
    FileChannel.open(f.path("/file"), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
    AsynchronousFileChannel async =
        AsynchronousFileChannel.open(f.path("/async"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    assertThat(async.write(bytes("xy"), 3).get(10, TimeUnit.SECONDS)).isEqualTo(2);
    async.force(false);
    async.close();
    assertThat(changes())
        .containsExactly(
            new CreateFile("stream", true),
            new CreateFile("bytes", true),
            new CreateFile("file", true),
            new CreateFile("async", true),
            new Write("async", 3, bytes("xy")),
            new Force("async", false));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void openingAnExistingFileReportsOnlyTruncation(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.write(f.path("/a"), new byte[] {1, 2, 3});
    clear();
    Files.newByteChannel(f.path("/a"), StandardOpenOption.CREATE, StandardOpenOption.WRITE).close();
    Files.newByteChannel(f.path("/a"), StandardOpenOption.WRITE).close();
    Files.newByteChannel(f.path("/a")).close();
    assertThat(changes()).isEmpty();
    Files.newOutputStream(f.path("/a")).close(); // TRUNCATE_EXISTING by default
    assertThat(changes()).containsExactly(new CreateFile("a", true));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void createFileAndTempFile(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createFile(f.path("/empty"));
    Path dir = Files.createDirectory(f.path("/tmp"));
    Path temp = Files.createTempFile(dir, "t", ".tmp");
    String tempPath = "tmp/" + temp.getFileName();
    assertThat(changes())
        .containsExactly(
            new CreateFile("empty", true), new MakeDirectory("tmp"), new CreateFile(tempPath, true));
    clear();
    Files.createTempFile(
        dir, "p", null, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    assertThat(changes()).hasSize(2);
    assertThat(changes().get(1))
        .isEqualTo(
            new SetPermissions(
                changes().get(0).path(),
                Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE)));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void positionalGatherAndAppendWrites(FsKind kind) throws Exception {
    Fixture f = open(kind);
    try (FileChannel ch =
        FileChannel.open(f.path("/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      ch.write(bytes("hello"));
      ch.write(bytes("XY"), 10);
      ch.write(new ByteBuffer[] {bytes("ab"), ByteBuffer.allocate(0), bytes("cde")}, 0, 3);
    }
    try (FileChannel ch = FileChannel.open(f.path("/f"), StandardOpenOption.APPEND)) {
      ch.write(bytes("++"));
    }
    try (OutputStream out = Files.newOutputStream(f.path("/f"), StandardOpenOption.APPEND)) {
      out.write("!".getBytes(UTF_8));
    }
    assertThat(changes())
        .containsExactly(
            new CreateFile("f", true),
            new Write("f", 0, bytes("hello")),
            new Write("f", 10, bytes("XY")),
            new Write("f", 5, bytes("ab")),
            new Write("f", 7, bytes("cde")),
            new Write("f", 12, bytes("++")),
            new Write("f", 14, bytes("!")));
  }

  @Test
  void positionalWriteOnAnAppendChannelIsReportedWhereItLanded() throws Exception {
    Fixture f = open(FsKind.DEFAULT);
    Files.write(f.path("/f"), new byte[4]);
    clear();
    try (FileChannel ch = FileChannel.open(f.path("/f"), StandardOpenOption.APPEND)) {
      ch.write(bytes("z"), 0);
    }
    // Linux appends even a positional write on an O_APPEND descriptor; the report must agree.
    long size = Files.size(f.path("/f"));
    assertThat(changes()).containsExactly(new Write("f", size - 1, bytes("z")));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void transferFromGoesThroughWrites(FsKind kind) throws Exception {
    Fixture f = open(kind);
    byte[] big = new byte[100_000];
    new java.util.Random(1).nextBytes(big);
    Path source = Files.write(f.base.path().resolve("source"), big);
    try (FileChannel in = FileChannel.open(source);
        FileChannel out =
            FileChannel.open(f.path("/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      assertThat(out.transferFrom(in, 0, big.length)).isEqualTo(big.length);
    }
    assertThat(changes())
        .containsExactly(
            new CreateFile("f", true),
            new Write("f", 0, ByteBuffer.wrap(big, 0, 65536)),
            new Write("f", 65536, ByteBuffer.wrap(big, 65536, big.length - 65536)));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void truncateReportsOnlyAShrinkAndForceReportsForce(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.write(f.path("/f"), new byte[10]);
    clear();
    try (FileChannel ch = FileChannel.open(f.path("/f"), StandardOpenOption.WRITE)) {
      ch.truncate(20);
      ch.truncate(4);
      ch.truncate(4);
      ch.force(true);
      ch.force(false);
    }
    assertThat(changes())
        .containsExactly(new Truncate("f", 4), new Force("f", true), new Force("f", false));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void syncAndDsyncForceAfterEveryWrite(FsKind kind) throws Exception {
    Fixture f = open(kind);
    try (FileChannel ch =
        FileChannel.open(
            f.path("/s"), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.SYNC)) {
      ch.write(bytes("a"));
    }
    try (FileChannel ch =
        FileChannel.open(f.path("/s"), StandardOpenOption.WRITE, StandardOpenOption.DSYNC)) {
      ch.write(bytes("b"), 1);
    }
    assertThat(changes())
        .containsExactly(
            new CreateFile("s", true),
            new Write("s", 0, bytes("a")),
            new Force("s", true),
            new Write("s", 1, bytes("b")),
            new Force("s", false));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void namespaceChanges(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/a/b"));
    Files.write(f.path("/a/f"), new byte[] {1});
    Files.move(f.path("/a/f"), f.path("/a/g"));
    Files.write(f.path("/h"), new byte[] {2});
    Files.move(f.path("/h"), f.path("/a/g"), StandardCopyOption.REPLACE_EXISTING);
    Files.move(f.path("/a/g"), f.path("/i"), StandardCopyOption.ATOMIC_MOVE);
    Files.copy(f.path("/i"), f.path("/j"));
    Files.copy(f.path("/i"), f.path("/j"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.COPY_ATTRIBUTES);
    Files.createSymbolicLink(f.path("/l"), f.fs.getPath("i"));
    Files.createLink(f.path("/k"), f.path("/i"));
    Files.delete(f.path("/a/b"));
    Files.deleteIfExists(f.path("/k"));
    Files.deleteIfExists(f.path("/k"));
    assertThat(changes())
        .containsExactly(
            new MakeDirectory("a"),
            new MakeDirectory("a/b"),
            new CreateFile("a/f", true),
            new Write("a/f", 0, ByteBuffer.wrap(new byte[] {1})),
            new Move("a/f", "a/g", false, false),
            new CreateFile("h", true),
            new Write("h", 0, ByteBuffer.wrap(new byte[] {2})),
            new Move("h", "a/g", true, false),
            new Move("a/g", "i", false, true),
            new Copy("i", "j", false, false),
            new Copy("i", "j", true, true),
            new CreateSymbolicLink("l", "i"),
            new CreateLink("k", "i"),
            new Delete("a/b"),
            new Delete("k"));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void failedChangesReportNothing(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectory(f.path("/d"));
    Files.createFile(f.path("/d/x"));
    clear();
    assertThatThrownBy(() -> Files.createDirectory(f.path("/d")));
    assertThatThrownBy(() -> Files.delete(f.path("/d")));
    assertThatThrownBy(() -> Files.createFile(f.path("/d/x")));
    assertThatThrownBy(() -> Files.move(f.path("/missing"), f.path("/y")));
    assertThat(changes()).isEmpty();
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void attributesReportTimesAndPermissions(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createFile(f.path("/f"));
    clear();
    FileTime time = FileTime.fromMillis(1_234_567_890_000L);
    Files.setLastModifiedTime(f.path("/f"), time);
    Set<PosixFilePermission> permissions = PosixFilePermissions.fromString("rw-r-----");
    Files.setPosixFilePermissions(f.path("/f"), permissions);
    Files.setAttribute(f.path("/f"), "lastAccessTime", time);
    Files.setAttribute(f.path("/f"), "posix:permissions", permissions);
    Files.setOwner(f.path("/f"), Files.getOwner(f.path("/f")));
    assertThat(changes())
        .containsExactly(
            new SetTimes("f", time, null, null),
            new SetPermissions("f", permissions),
            new SetTimes("f", null, time, null),
            new SetPermissions("f", permissions),
            new FileChange.SetOwner("f", Files.getOwner(f.path("/f")).getName(), null));
    assertThatThrownBy(() -> Files.setAttribute(f.path("/f"), "dos:hidden", true))
        .isInstanceOf(UnsupportedOperationException.class)
        .hasMessageContaining("not replicated");
    assertThatThrownBy(() -> Files.setAttribute(f.path("/f"), "user:tag", new byte[1]))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThat(
            Files.getFileAttributeView(
                f.path("/f"), java.nio.file.attribute.UserDefinedFileAttributeView.class))
        .isNull();
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void deleteOnCloseReportsTheDelete(FsKind kind) throws Exception {
    Fixture f = open(kind);
    try (SeekableByteChannel ch =
        Files.newByteChannel(
            f.path("/t"),
            StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE,
            StandardOpenOption.DELETE_ON_CLOSE)) {
      ch.write(bytes("x"));
    }
    assertThat(Files.exists(f.data.resolve("t"))).isFalse();
    assertThat(changes())
        .containsExactly(new CreateFile("t", true), new Write("t", 0, bytes("x")), new Delete("t"));
  }

  @Test
  void directoryForceIsABarrier() throws Exception {
    Fixture f = open(FsKind.DEFAULT);
    Files.createDirectory(f.path("/d"));
    Files.createFile(f.path("/d/x"));
    clear();
    try (FileChannel dir = FileChannel.open(f.path("/d"), StandardOpenOption.READ)) {
      dir.force(true);
    }
    try (FileChannel root = FileChannel.open(f.path("/"), StandardOpenOption.READ)) {
      root.force(false);
    }
    assertThat(changes()).containsExactly(new Force("d", true), new Force("", false));
  }

  @Test
  void memoryMapsReadOnlyAndPrivateOnly() throws Exception {
    Fixture f = open(FsKind.DEFAULT);
    Files.write(f.path("/m"), "mapped".getBytes(UTF_8));
    clear();
    try (FileChannel ch =
        FileChannel.open(f.path("/m"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      assertThatThrownBy(() -> ch.map(FileChannel.MapMode.READ_WRITE, 0, 6))
          .isInstanceOf(UnsupportedOperationException.class)
          .hasMessageContaining("cannot be replicated");
      MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, 6);
      assertThat(map.get(0)).isEqualTo((byte) 'm');
      MappedByteBuffer copy = ch.map(FileChannel.MapMode.PRIVATE, 0, 6);
      copy.put(0, (byte) 'M');
    }
    assertThat(Files.readString(f.path("/m"))).isEqualTo("mapped");
    assertThat(changes()).isEmpty();
  }

  @Test
  void locksBelongToTheWrapperChannel() throws Exception {
    Fixture f = open(FsKind.DEFAULT);
    try (FileChannel ch =
        FileChannel.open(f.path("/l"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      try (FileLock lock = ch.lock()) {
        assertThat(lock.channel()).isSameAs(ch);
        assertThat(lock.isValid()).isTrue();
      }
      FileLock tried = ch.tryLock();
      assertThat(tried.channel()).isSameAs(ch);
      tried.release();
    }
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void escapesAreRefused(FsKind kind) throws Exception {
    Fixture f = open(kind);
    assertThatThrownBy(() -> f.path("/a").toFile())
        .isInstanceOf(UnsupportedOperationException.class)
        .hasMessageContaining("bypass replication");
    Path foreign = f.base.path().resolve("x");
    assertThatThrownBy(() -> f.fs.provider().delete(foreign))
        .isInstanceOf(ProviderMismatchException.class);
    assertThatThrownBy(() -> f.path("/a").resolve(foreign))
        .isInstanceOf(ProviderMismatchException.class);
    assertThatThrownBy(() -> f.fs.provider().newByteChannel(foreign, Set.of()))
        .isInstanceOf(ProviderMismatchException.class);
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void metadataDirectoryIsHiddenAndRefused(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.data.resolve(".replicator/state"));
    Files.createFile(f.path("/visible"));
    clear();
    try (Stream<Path> list = Files.list(f.path("/"))) {
      assertThat(list.map(Path::toString)).containsExactly("/visible");
    }
    assertThat(Files.exists(f.path("/.replicator"))).isFalse();
    assertThatThrownBy(() -> Files.readAttributes(f.path("/.replicator"), "*"))
        .isInstanceOf(AccessDeniedException.class);
    assertThatThrownBy(() -> Files.createFile(f.path("/.replicator/x")))
        .isInstanceOf(AccessDeniedException.class);
    assertThatThrownBy(() -> Files.delete(f.path("/a/../.replicator/state")))
        .isInstanceOf(AccessDeniedException.class);
    assertThatThrownBy(() -> Files.move(f.path("/visible"), f.path(".replicator/v")))
        .isInstanceOf(AccessDeniedException.class);
    assertThatThrownBy(() -> Files.newDirectoryStream(f.path("/.replicator")))
        .isInstanceOf(AccessDeniedException.class);
    assertThat(changes()).isEmpty();
    assertThat(Files.exists(f.data.resolve(".replicator/state"))).isTrue();
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void closingTheFileSystemClosesWhatItHandedOut(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectory(f.path("/d"));
    FileChannel channel =
        FileChannel.open(f.path("/d/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    DirectoryStream<Path> stream = Files.newDirectoryStream(f.path("/d"));
    java.io.InputStream in = Files.newInputStream(f.path("/d/f"));
    f.assertMirrored();
    f.fs.close();
    f.fs.close(); // idempotent
    assertThat(channel.isOpen()).isFalse();
    assertThatThrownBy(() -> channel.write(bytes("late"))).isInstanceOf(ClosedChannelException.class);
    assertThatThrownBy(in::read).isInstanceOf(java.io.IOException.class);
    assertThatThrownBy(() -> Files.exists(f.path("/d")) )
        .isInstanceOf(ClosedFileSystemException.class);
    assertThat(f.sink.isClosed()).isTrue();
    assertThat(f.base.path().getFileSystem().isOpen()).isTrue();
    stream.close();
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void guavaDeleteRecursivelyReportsEveryDelete(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectories(f.path("/tree/a/b"));
    Files.write(f.path("/tree/a/b/f"), new byte[] {1});
    Files.write(f.path("/tree/g"), new byte[] {2});
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(f.path("/tree"))) {
      // both delegates offer a secure stream, so the wrapper does too, and Guava deletes securely
      assertThat(stream).isInstanceOf(SecureDirectoryStream.class);
    }
    clear();
    MoreFiles.deleteRecursively(f.path("/tree"));
    assertThat(Files.exists(f.path("/tree"))).isFalse();
    assertThat(changes())
        .containsExactlyInAnyOrder(
            new Delete("tree/a/b/f"), new Delete("tree/a/b"), new Delete("tree/a"),
            new Delete("tree/g"), new Delete("tree"));
    assertThat(changes()).last().isEqualTo(new Delete("tree"));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void openChannelsFollowRenamesAndStopReportingWhenUnlinked(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Files.createDirectory(f.path("/d"));
    try (FileChannel renamed =
            FileChannel.open(f.path("/d/a"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileChannel deleted =
            FileChannel.open(f.path("/gone"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      clear();
      Files.move(f.path("/d/a"), f.path("/d/b"));
      renamed.write(bytes("1"));
      Files.move(f.path("/d"), f.path("/e"));
      renamed.write(bytes("2"));
      renamed.force(true);
      Files.delete(f.path("/gone"));
      deleted.write(bytes("lost"));
      deleted.truncate(1);
      deleted.force(true);
    }
    assertThat(changes())
        .containsExactly(
            new Move("d/a", "d/b", false, false),
            new Write("d/b", 0, bytes("1")),
            new Move("d", "e", false, false),
            new Write("e/b", 1, bytes("2")),
            new Force("e/b", true),
            new Delete("gone"));
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void atomicMoveBetweenFileSystemsFails(FsKind kind) throws Exception {
    Fixture f = open(kind);
    Path outside = Files.createDirectories(f.base.path().resolve("other"));
    try (WrappedFileSystem other =
        (WrappedFileSystem)
            ReplicatedFileSystemProvider.open(
                outside, new MirroringChangeSink(Files.createDirectories(f.base.path().resolve("m2"))))) {
      Files.write(f.path("/a"), bytes("a").array());
      assertThatThrownBy(
              () -> Files.move(f.path("/a"), other.getPath("/a"), StandardCopyOption.ATOMIC_MOVE))
          .isInstanceOf(AtomicMoveNotSupportedException.class);
      Files.move(f.path("/a"), other.getPath("/b"));
      assertThat(Files.readString(other.getPath("/b"))).isEqualTo("a");
      assertThat(Files.exists(f.path("/a"))).isFalse();
      // Across providers the JDK itself copies then deletes.
      Files.write(f.path("/c"), bytes("c").array());
      Files.move(f.path("/c"), outside.resolve("c"));
      assertThat(Files.readString(outside.resolve("c"))).isEqualTo("c");
      assertThat(changes()).contains(new Delete("a"), new Delete("c"));
    }
  }
}
