package io.replicator.replica;

import com.google.protobuf.ByteString;
import io.replicator.change.ChangePaths;
import io.replicator.change.ChangeProtos;
import io.replicator.change.LocalPaths;
import io.replicator.meta.BlockChecksums;
import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ManifestRequest;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The replica's answer to a manifest request: for each requested path, and everything under it
 * when it is a directory (unless asked not to descend), its kind, size, link target, mode and
 * (unless asked not to) the checksums of its blocks. Walks in sorted pre-order with one sorted
 * listing per level of depth held at a time, never follows symbolic links, skips the metadata
 * directory, and resolves requested paths through the {@link PathGuard} so a primary cannot read
 * checksums from outside the root.
 *
 * <p>Changes keep being applied while it walks: each entry carries how far they were applied
 * before it was read ({@code applied_before}), so the primary can tell which comparisons a
 * concurrent change may have spoiled.
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
    }
    return null;
  }

  /**
   * Writes the manifest for {@code request}; returns the number of paths listed. {@code appliedSeq}
   * tells how far changes are applied; it is read before each entry.
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

  /** A directory being walked: its change path and the names not yet visited. */
  private record Level(String path, Iterator<String> names) {}

  private void walk(String rootPath, boolean descend) throws IOException {
    Deque<Level> stack = new ArrayDeque<>();
    List<String> children = visit(rootPath, descend);
    if (children != null) {
      stack.push(new Level(rootPath, children.iterator()));
    }
    while (!stack.isEmpty()) {
      Level top = stack.peek();
      if (!top.names().hasNext()) {
        stack.pop();
        continue;
      }
      String child = LocalPaths.child(top.path(), top.names().next());
      List<String> grandChildren = visit(child, true);
      if (grandChildren != null) {
        stack.push(new Level(child, grandChildren.iterator()));
      }
    }
  }

  /** Emits the entry of {@code changePath}; returns its sorted children when it is a directory to descend into. */
  private List<String> visit(String changePath, boolean descend) throws IOException {
    long applied = appliedSeq.getAsLong();
    Path p;
    BasicFileAttributes a;
    try {
      p = guard.resolveNoFollow(changePath);
      a = readAttributes(p);
    } catch (NoSuchFileException | NotDirectoryException e) {
      // gone meanwhile (a change applied while walking), or a parent is no directory any more
      emitMissing(changePath, applied);
      return null;
    }
    List<String> children = null;
    if (a.isDirectory() && descend) {
      try {
        children = LocalPaths.sortedChildren(p, changePath);
      } catch (NoSuchFileException | NotDirectoryException e) {
        emitMissing(changePath, applied);
        return null;
      }
    }
    emit(changePath, p, a, applied);
    return children;
  }

  private void emitMissing(String changePath, long applied) throws IOException {
    paths++;
    sink.accept(ManifestEntry.newBuilder().setRequestId(request.getRequestId()).setPath(changePath)
        .setKind(ManifestEntry.Kind.MISSING).setLast(true).setAppliedBefore(applied).build());
  }

  private void emit(String changePath, Path p, BasicFileAttributes a, long applied) throws IOException {
    paths++;
    ManifestEntry.Builder b = ManifestEntry.newBuilder()
        .setRequestId(request.getRequestId())
        .setPath(changePath)
        .setAppliedBefore(applied)
        .setLastModifiedNanos(a.lastModifiedTime().to(TimeUnit.NANOSECONDS));
    if (!a.isSymbolicLink() && a instanceof PosixFileAttributes px) {
      b.setMode(ChangeProtos.toMode(px.permissions()));
    }
    if (a.isSymbolicLink()) {
      String target;
      try {
        target = LocalPaths.linkTarget(guard.root(), p);
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
      hashes(changePath, p, a.size(), b, applied);
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

  private void hashes(String changePath, Path p, long size, ManifestEntry.Builder b, long applied)
      throws IOException {
    FileChannel ch;
    try {
      ch = FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      emitMissingCounted(changePath, applied);
      return;
    }
    try (ch) {
      // the size the hashes cover: a file growing meanwhile is hashed as far as it was
      long blocks = (size + blockSize - 1) / blockSize;
      for (long first = 0; first < blocks; first += BLOCKS_PER_ENTRY) {
        int n = (int) Math.min(BLOCKS_PER_ENTRY, blocks - first);
        byte[] sums = BlockChecksums.hashBlocks(ch, first, n, blockSize);
        sink.accept(b.clone().setKind(ManifestEntry.Kind.FILE).setSize(size).setFirstBlock(first)
            .setBlockHashes(ByteString.copyFrom(sums)).setLast(first + n >= blocks).build());
      }
    }
  }
}
