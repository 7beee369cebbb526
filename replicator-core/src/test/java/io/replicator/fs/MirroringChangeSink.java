package io.replicator.fs;

import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.change.FileChange;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.CopyOption;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A test {@link ChangeSink} that records every submitted change and applies it at once, in submit
 * order, to a mirror directory: a sequential stand-in for the replica. Paths whose last change set
 * their times are remembered, so a tree comparison can check those times too.
 */
class MirroringChangeSink implements ChangeSink {

  private final Path mirror;
  private final List<FileChange> changes = new ArrayList<>();
  private final Set<String> timed = new HashSet<>();
  private volatile boolean closed;

  MirroringChangeSink(Path mirror) {
    this.mirror = mirror;
  }

  Path mirror() {
    return mirror;
  }

  /** A snapshot of the changes submitted so far. */
  synchronized List<FileChange> changes() {
    return List.copyOf(changes);
  }

  synchronized void clear() {
    changes.clear();
  }

  synchronized Set<String> timedPaths() {
    return Set.copyOf(timed);
  }

  boolean isClosed() {
    return closed;
  }

  @Override
  public void beforeLocalChange(FileChange change) throws IOException {}

  @Override
  public synchronized Completion submit(FileChange change) throws IOException {
    FileChange recorded = change;
    if (change instanceof FileChange.Write) {
      // The caller's buffer is only lent: keep a copy, as a real sink does.
      FileChange.Write write = (FileChange.Write) change;
      ByteBuffer copy = ByteBuffer.allocate(write.length());
      copy.put(write.data().duplicate()).flip();
      recorded = new FileChange.Write(write.path(), write.position(), copy.asReadOnlyBuffer());
    }
    changes.add(recorded);
    apply(recorded);
    return completion(recorded);
  }

  /** What {@link #submit} returns; tests override it to make acknowledgements slow. */
  protected Completion completion(FileChange change) {
    return Completion.DONE;
  }

  private Path resolve(String changePath) {
    return changePath.isEmpty() ? mirror : mirror.resolve(changePath);
  }

  private void apply(FileChange change) throws IOException {
    if (change instanceof FileChange.Write) {
      FileChange.Write write = (FileChange.Write) change;
      timed.remove(write.path());
      try (FileChannel channel =
          FileChannel.open(resolve(write.path()), StandardOpenOption.WRITE)) {
        ByteBuffer data = write.data().duplicate();
        long position = write.position();
        while (data.hasRemaining()) {
          position += channel.write(data, position);
        }
      }
    } else if (change instanceof FileChange.Truncate) {
      FileChange.Truncate truncate = (FileChange.Truncate) change;
      timed.remove(truncate.path());
      try (FileChannel channel =
          FileChannel.open(resolve(truncate.path()), StandardOpenOption.WRITE)) {
        channel.truncate(truncate.size());
      }
    } else if (change instanceof FileChange.CreateFile) {
      FileChange.CreateFile create = (FileChange.CreateFile) change;
      timed.remove(create.path());
      if (create.truncate()) {
        Files.newByteChannel(
                resolve(create.path()),
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)
            .close();
      } else {
        Files.newByteChannel(resolve(create.path()), StandardOpenOption.CREATE, StandardOpenOption.WRITE)
            .close();
      }
    } else if (change instanceof FileChange.MakeDirectory) {
      Files.createDirectory(resolve(change.path()));
    } else if (change instanceof FileChange.Delete) {
      timed.remove(change.path());
      Files.delete(resolve(change.path()));
    } else if (change instanceof FileChange.Move) {
      FileChange.Move move = (FileChange.Move) change;
      List<CopyOption> options = new ArrayList<>();
      if (move.replaceExisting()) {
        options.add(StandardCopyOption.REPLACE_EXISTING);
      }
      if (move.atomic()) {
        options.add(StandardCopyOption.ATOMIC_MOVE);
      }
      Files.move(resolve(move.source()), resolve(move.target()), options.toArray(new CopyOption[0]));
      timed.remove(move.target());
      if (timed.remove(move.source())) {
        timed.add(move.target());
      }
    } else if (change instanceof FileChange.Copy) {
      FileChange.Copy copy = (FileChange.Copy) change;
      List<CopyOption> options = new ArrayList<>();
      if (copy.replaceExisting()) {
        options.add(StandardCopyOption.REPLACE_EXISTING);
      }
      if (copy.copyAttributes()) {
        options.add(StandardCopyOption.COPY_ATTRIBUTES);
      }
      Files.copy(resolve(copy.source()), resolve(copy.target()), options.toArray(new CopyOption[0]));
      timed.remove(copy.target());
      if (copy.copyAttributes() && timed.contains(copy.source())) {
        timed.add(copy.target());
      }
    } else if (change instanceof FileChange.CreateSymbolicLink) {
      FileChange.CreateSymbolicLink link = (FileChange.CreateSymbolicLink) change;
      Path target =
          link.target().startsWith("/")
              ? resolve(link.target().substring(1))
              : mirror.getFileSystem().getPath(link.target());
      Files.createSymbolicLink(resolve(link.path()), target);
    } else if (change instanceof FileChange.CreateLink) {
      FileChange.CreateLink link = (FileChange.CreateLink) change;
      Files.createLink(resolve(link.path()), resolve(link.existing()));
    } else if (change instanceof FileChange.SetTimes) {
      FileChange.SetTimes times = (FileChange.SetTimes) change;
      Files.getFileAttributeView(resolve(times.path()), BasicFileAttributeView.class)
          .setTimes(times.lastModified(), times.lastAccess(), times.creation());
      if (times.lastModified() != null) {
        timed.add(times.path());
      }
    } else if (change instanceof FileChange.SetPermissions) {
      FileChange.SetPermissions permissions = (FileChange.SetPermissions) change;
      Files.getFileAttributeView(
              resolve(permissions.path()), PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
          .setPermissions(permissions.permissions());
    } else if (change instanceof FileChange.SetOwner) {
      // Owners are the same process user on both sides in tests: nothing to repeat.
    } else if (change instanceof FileChange.Force) {
      // Durability is not observable in a test.
    } else {
      throw new UncheckedIOException(new IOException("unknown change " + change));
    }
  }

  @Override
  public ReplicationStatus status() {
    return new ReplicationStatus(
        closed ? NodeState.STOPPED : NodeState.PRIMARY,
        ReplicationMode.SYNC,
        Optional.empty(),
        false,
        false,
        Optional.empty(),
        0,
        0,
        0,
        0,
        0,
        0,
        Optional.empty());
  }

  @Override
  public void close() {
    closed = true;
  }
}
