package io.replicator.replica;

import com.google.protobuf.ByteString;
import io.replicator.change.ChangePaths;
import io.replicator.change.ChangeProtos;
import io.replicator.change.LocalPaths;
import io.replicator.meta.BlockChecksums;
import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ManifestRequest;
import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The replica's answer to a manifest request: for each requested path, and everything under it
 * when it is a directory (unless asked not to descend), its kind, size, link target, mode and
 * (unless asked not to) the checksums of its blocks. Walks in sorted pre-order with one sorted
 * listing per level of depth held at a time, skips the metadata directory, and never follows a
 * symbolic link.
 *
 * <p>Changes keep being applied while it walks: each entry carries how far they were applied
 * before it was read ({@code applied_before}), so the primary can tell which comparisons a
 * concurrent change may have spoiled. Since names may change under the walk, it goes from
 * directory to directory through {@link SecureDirectoryStream}s (every step relative to a
 * directory it holds open, never through a link), so a link swapped in meanwhile cannot lead it
 * out of the root; where the provider has no secure streams, each path is resolved through the
 * {@link PathGuard} instead.
 */
final class ReplicaManifest {
  /** Blocks per entry: 2048 checksums (32 KiB) keep one entry well under the 64 KiB header limit. */
  static final int BLOCKS_PER_ENTRY = 2048;

  /** Receives entries in walk order; may block (back-pressure). */
  @FunctionalInterface
  interface EntrySink {
    void accept(ManifestEntry entry) throws IOException;
  }

  private final PathGuard guard;
  private final ManifestRequest request;
  private final EntrySink sink;
  private final LongSupplier appliedSeq;
  private final int blockSize;
  private long paths;

  private ReplicaManifest(PathGuard guard, ManifestRequest request, EntrySink sink, LongSupplier appliedSeq) {
    this.guard = guard;
    this.request = request;
    this.sink = sink;
    this.appliedSeq = appliedSeq;
    this.blockSize = request.getBlockSize() > 0 ? request.getBlockSize() : 4096;
  }

  /** Checks a request before any of it is walked; null when it is acceptable. */
  static String problem(ManifestRequest request) {
    if (request.getBlockSize() != 0 && (Integer.bitCount(request.getBlockSize()) != 1
        || request.getBlockSize() < 512 || request.getBlockSize() > (1 << 20))) {
      return "manifest block size " + request.getBlockSize() + " is not a power of two in 512..1 MiB";
    }
    for (String p : request.getPathsList()) {
      String problem = ChangePaths.problem(p);
      if (problem != null) {
        return "manifest request: " + problem;
      }
      String first = p.split("/", 2)[0];
      if (first.equalsIgnoreCase(PathGuard.METADATA_DIRECTORY)) {
        return "manifest request: the metadata directory is off limits";
      }
    }
    return null;
  }

  /**
   * Writes the manifest for {@code request}; returns the number of paths listed. {@code appliedSeq}
   * tells how far changes are applied; it is read before each entry. Entries carry no request id
   * (the batch that carries them does).
   */
  static long write(Path root, ManifestRequest request, EntrySink sink, LongSupplier appliedSeq) throws IOException {
    String problem = problem(request);
    if (problem != null) {
      throw new IOException(problem);
    }
    ReplicaManifest m = new ReplicaManifest(new PathGuard(root), request, sink, appliedSeq);
    List<String> roots = request.getAll() ? List.of("") : request.getPathsList();
    for (String p : roots) {
      m.walk(p, !request.getNoDescent());
    }
    return m.paths;
  }

  // ---------------------------------------------------------------- directories

  /** A directory being walked, and how to reach what it holds. */
  private interface Dir extends Closeable {
    /** The attributes of {@code name} in it, never following a link; null when it is not there. */
    BasicFileAttributes attributes(String name) throws IOException;

    /** The sorted names it holds (the metadata directory left out at the root). */
    List<String> names() throws IOException;

    /** Opens the directory {@code name} in it, never through a link. */
    Dir open(String name) throws IOException;

    /** Opens the regular file {@code name} in it for reading, never through a link. */
    SeekableByteChannel read(String name) throws IOException;

    /** The path of {@code name} in it (to read a link's target). */
    Path path(String name);
  }

  /** A directory held open: every step is relative to it, and none follows a link. */
  private final class SecureDir implements Dir {
    private final SecureDirectoryStream<Path> stream;
    private final Path path;
    private final boolean atRoot;

    SecureDir(SecureDirectoryStream<Path> stream, Path path, boolean atRoot) {
      this.stream = stream;
      this.path = path;
      this.atRoot = atRoot;
    }

    private Path name(String name) {
      return path.getFileSystem().getPath(name);
    }

    @Override
    public BasicFileAttributes attributes(String name) throws IOException {
      try {
        PosixFileAttributeView posix =
            stream.getFileAttributeView(name(name), PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
        if (posix != null) {
          return posix.readAttributes();
        }
        return stream.getFileAttributeView(name(name), BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
            .readAttributes();
      } catch (NoSuchFileException | NotDirectoryException e) {
        return null;
      }
    }

    @Override
    public List<String> names() {
      List<String> names = new ArrayList<>();
      for (Path child : stream) {
        String name = child.getFileName().toString();
        if (!(atRoot && name.equals(LocalPaths.METADATA_DIRECTORY))) {
          names.add(name);
        }
      }
      Collections.sort(names);
      return names;
    }

    @Override
    public Dir open(String name) throws IOException {
      return new SecureDir(stream.newDirectoryStream(name(name), LinkOption.NOFOLLOW_LINKS), path.resolve(name),
          false);
    }

    @Override
    public SeekableByteChannel read(String name) throws IOException {
      return stream.newByteChannel(name(name), Set.of(StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS));
    }

    @Override
    public Path path(String name) {
      return path.resolve(name);
    }

    @Override
    public void close() throws IOException {
      stream.close();
    }
  }

  /** Where the provider has no secure streams: each path resolved through the guard. */
  private final class GuardedDir implements Dir {
    private final String changePath;

    GuardedDir(String changePath) {
      this.changePath = changePath;
    }

    @Override
    public BasicFileAttributes attributes(String name) throws IOException {
      try {
        return readAttributes(guard.resolveNoFollow(LocalPaths.child(changePath, name)));
      } catch (NoSuchFileException | NotDirectoryException e) {
        return null;
      }
    }

    @Override
    public List<String> names() throws IOException {
      return LocalPaths.sortedChildren(guard.resolveNoFollow(changePath), changePath);
    }

    @Override
    public Dir open(String name) {
      return new GuardedDir(LocalPaths.child(changePath, name));
    }

    @Override
    public SeekableByteChannel read(String name) throws IOException {
      return Files.newByteChannel(guard.resolveNoFollow(LocalPaths.child(changePath, name)),
          StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
    }

    @Override
    public Path path(String name) {
      try {
        return guard.resolveNoFollow(LocalPaths.child(changePath, name));
      } catch (IOException e) {
        return guard.root().resolve(LocalPaths.child(changePath, name));
      }
    }

    @Override
    public void close() {}
  }

  /** The root directory, held open when the provider can. */
  private Dir openRoot() throws IOException {
    DirectoryStream<Path> stream = Files.newDirectoryStream(guard.root());
    if (stream instanceof SecureDirectoryStream<Path> secure) {
      return new SecureDir(secure, guard.root(), true);
    }
    stream.close();
    return new GuardedDir("");
  }

  // ---------------------------------------------------------------- the walk

  /** A directory being walked: its change path, its handle and the names not yet visited. */
  private record Level(String path, Dir dir, Iterator<String> names) {}

  private void walk(String rootPath, boolean descend) throws IOException {
    Deque<Level> stack = new ArrayDeque<>();
    try {
      if (rootPath.isEmpty()) {
        long applied = appliedSeq.getAsLong();
        Dir root = openRoot();
        BasicFileAttributes a = readAttributes(guard.root());
        stack.push(new Level("", root, descend ? root.names().iterator() : Collections.emptyIterator()));
        emit("", root, "", a, applied);
      } else {
        Dir parent = parentOf(rootPath);
        if (parent == null) {
          emitMissing(rootPath, appliedSeq.getAsLong());
          return;
        }
        // held at the bottom only to be closed: the requested path itself is visited, not its siblings
        stack.push(new Level(parentPath(rootPath), parent, Collections.emptyIterator()));
        visit(stack, parent, parentPath(rootPath), lastName(rootPath), descend);
      }
      while (!stack.isEmpty()) {
        Level top = stack.peek();
        if (!top.names().hasNext()) {
          stack.pop().dir().close();
          continue;
        }
        visit(stack, top.dir(), top.path(), top.names().next(), true);
      }
    } finally {
      for (Level l : stack) {
        l.dir().close();
      }
    }
  }

  /** Emits the entry {@code name} of {@code dir}; a directory to descend into is pushed, open, with its names. */
  private void visit(Deque<Level> stack, Dir dir, String dirPath, String name, boolean descend)
      throws IOException {
    String changePath = LocalPaths.child(dirPath, name);
    long applied = appliedSeq.getAsLong();
    BasicFileAttributes a = dir.attributes(name);
    if (a == null) {
      emitMissing(changePath, applied); // gone meanwhile: a change applied while walking
      return;
    }
    if (a.isDirectory() && descend) {
      Dir child;
      List<String> names;
      try {
        child = dir.open(name);
      } catch (FileSystemException e) {
        // gone, or replaced by a link meanwhile (the open refuses to follow it): a change applied
        // while walking, which the primary sees as such
        emitMissing(changePath, applied);
        return;
      }
      try {
        names = child.names();
      } catch (IOException | RuntimeException e) {
        child.close();
        throw e;
      }
      stack.push(new Level(changePath, child, names.iterator()));
    }
    emit(changePath, dir, name, a, applied);
  }

  /** The directory holding {@code changePath}, opened step by step from the root; null when missing. */
  private Dir parentOf(String changePath) throws IOException {
    Dir dir = openRoot();
    String[] names = changePath.split("/");
    try {
      for (int i = 0; i < names.length - 1; i++) {
        Dir next = dir.open(names[i]);
        dir.close();
        dir = next;
      }
      return dir;
    } catch (NoSuchFileException | NotDirectoryException e) {
      dir.close();
      return null;
    } catch (FileSystemException e) {
      // an ancestor that is a link: the walk never follows one, the primary reconciles the name
      dir.close();
      return null;
    }
  }

  private static String parentPath(String changePath) {
    int slash = changePath.lastIndexOf('/');
    return slash < 0 ? "" : changePath.substring(0, slash);
  }

  private static String lastName(String changePath) {
    return changePath.substring(changePath.lastIndexOf('/') + 1);
  }

  // ---------------------------------------------------------------- entries

  private void emitMissing(String changePath, long applied) throws IOException {
    paths++;
    sink.accept(ManifestEntry.newBuilder().setPath(changePath)
        .setKind(ManifestEntry.Kind.MISSING).setLast(true).setAppliedBefore(applied).build());
  }

  private void emit(String changePath, Dir dir, String name, BasicFileAttributes a, long applied)
      throws IOException {
    paths++;
    ManifestEntry.Builder b = ManifestEntry.newBuilder()
        .setPath(changePath)
        .setAppliedBefore(applied)
        .setLastModifiedNanos(a.lastModifiedTime().to(TimeUnit.NANOSECONDS));
    if (!a.isSymbolicLink() && a instanceof PosixFileAttributes px) {
      b.setMode(ChangeProtos.toMode(px.permissions()));
    }
    if (a.isSymbolicLink()) {
      String target;
      try {
        // the link's own text, read by name: nothing is followed
        target = LocalPaths.linkTarget(guard.root(), name.isEmpty() ? guard.root() : dir.path(name));
      } catch (NoSuchFileException | java.nio.file.NotLinkException e) {
        emitMissingCounted(changePath, applied);
        return;
      }
      sink.accept(b.setKind(ManifestEntry.Kind.SYMBOLIC_LINK).setLinkTarget(target).setLast(true).build());
    } else if (a.isDirectory()) {
      sink.accept(b.setKind(ManifestEntry.Kind.DIRECTORY).setLast(true).build());
    } else if (!a.isRegularFile()) {
      sink.accept(b.setKind(ManifestEntry.Kind.OTHER).setLast(true).build());
    } else if (request.getWithoutHashes() || a.size() == 0) {
      sink.accept(b.setKind(ManifestEntry.Kind.FILE).setSize(a.size()).setLast(true).build());
    } else {
      hashes(changePath, dir, name, a.size(), b, applied);
    }
  }

  /** Kind, size, times and (on POSIX) permissions in one read; never follows a link. */
  private static BasicFileAttributes readAttributes(Path p) throws IOException {
    try {
      return Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (UnsupportedOperationException e) {
      return Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    }
  }

  /** A path that vanished between two reads: listed as missing (its paths count is already taken). */
  private void emitMissingCounted(String changePath, long applied) throws IOException {
    paths--;
    emitMissing(changePath, applied);
  }

  private void hashes(String changePath, Dir dir, String name, long size, ManifestEntry.Builder b, long applied)
      throws IOException {
    SeekableByteChannel ch;
    try {
      ch = dir.read(name);
    } catch (NoSuchFileException e) {
      emitMissingCounted(changePath, applied);
      return;
    } catch (FileSystemException e) {
      emitMissingCounted(changePath, applied); // replaced by a link meanwhile: never followed
      return;
    }
    try (ch) {
      // the size read with the attributes: a file growing meanwhile is hashed as far as it was
      long blocks = (size + blockSize - 1) / blockSize;
      for (long first = 0; first < blocks; first += BLOCKS_PER_ENTRY) {
        int n = (int) Math.min(BLOCKS_PER_ENTRY, blocks - first);
        byte[] sums = BlockChecksums.hashBlocks(ch, size, first, n, blockSize);
        ManifestEntry.Builder slice = first + n >= blocks ? b : b.clone();
        sink.accept(slice.setKind(ManifestEntry.Kind.FILE).setSize(size).setFirstBlock(first)
            .setBlockHashes(ByteString.copyFrom(sums)).setLast(first + n >= blocks).build());
      }
    }
  }
}
