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
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.List;

/**
 * The replica's answer to a manifest request: for each requested path, and everything under it
 * when it is a directory, its kind, size, link target, mode and (unless asked not to) the
 * checksums of its blocks. Walks in sorted pre-order, never follows symbolic links, skips the
 * metadata directory, and resolves requested paths through the {@link PathGuard} so a primary
 * cannot read checksums from outside the root.
 */
final class ReplicaManifest {
  /** Blocks per entry: 2048 checksums (32 KiB) keep one entry's header under the 64 KiB header limit. */
  static final int BLOCKS_PER_ENTRY = 2048;

  /** Receives entries; may block (back-pressure). */
  @FunctionalInterface
  interface EntrySink {
    void accept(ManifestEntry entry) throws IOException;
  }

  private final PathGuard guard;
  private final ManifestRequest request;
  private final EntrySink sink;
  private final int blockSize;
  private long paths;

  private ReplicaManifest(PathGuard guard, ManifestRequest request, EntrySink sink) {
    this.guard = guard;
    this.request = request;
    this.sink = sink;
    this.blockSize = request.getBlockSize() > 0 ? request.getBlockSize() : 4096;
  }

  /** Writes the manifest for {@code request}; returns the number of paths listed. */
  static long write(Path root, ManifestRequest request, EntrySink sink) throws IOException {
    if (request.getBlockSize() != 0 && (Integer.bitCount(request.getBlockSize()) != 1
        || request.getBlockSize() < 512 || request.getBlockSize() > (1 << 20))) {
      throw new IOException("manifest block size " + request.getBlockSize() + " is not a power of two in 512..1 MiB");
    }
    ReplicaManifest m = new ReplicaManifest(new PathGuard(root), request, sink);
    List<String> roots = request.getAll() ? List.of("") : request.getPathsList();
    for (String p : roots) {
      String problem = ChangePaths.problem(p);
      if (problem != null) {
        throw new IOException("manifest request: " + problem);
      }
      m.walk(p);
    }
    return m.paths;
  }

  private void walk(String changePath) throws IOException {
    Path p;
    try {
      p = guard.resolveNoFollow(changePath);
    } catch (NoSuchFileException e) {
      emitMissing(changePath);
      return;
    }
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      emitMissing(changePath);
      return;
    }
    emit(changePath, p, a);
    if (a.isDirectory()) {
      for (String name : LocalPaths.sortedChildren(p, changePath)) {
        walk(LocalPaths.child(changePath, name));
      }
    }
  }

  private void emitMissing(String changePath) throws IOException {
    paths++;
    sink.accept(ManifestEntry.newBuilder().setRequestId(request.getRequestId()).setPath(changePath)
        .setKind(ManifestEntry.Kind.MISSING).setLast(true).build());
  }

  private void emit(String changePath, Path p, BasicFileAttributes a) throws IOException {
    paths++;
    ManifestEntry.Builder b = ManifestEntry.newBuilder()
        .setRequestId(request.getRequestId())
        .setPath(changePath)
        .setLastModifiedNanos(a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS));
    if (!a.isSymbolicLink()) {
      try {
        PosixFileAttributes px = Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        b.setMode(ChangeProtos.toMode(px.permissions()));
      } catch (UnsupportedOperationException e) {
        // not a POSIX file system: no mode to compare
      }
    }
    if (a.isSymbolicLink()) {
      sink.accept(b.setKind(ManifestEntry.Kind.SYMBOLIC_LINK)
          .setLinkTarget(LocalPaths.linkTarget(guard.root(), p)).setLast(true).build());
    } else if (a.isDirectory()) {
      sink.accept(b.setKind(ManifestEntry.Kind.DIRECTORY).setLast(true).build());
    } else if (!a.isRegularFile()) {
      sink.accept(b.setKind(ManifestEntry.Kind.OTHER).setLast(true).build());
    } else if (request.getWithoutHashes() || a.size() == 0) {
      sink.accept(b.setKind(ManifestEntry.Kind.FILE).setSize(a.size()).setLast(true).build());
    } else {
      long blocks = (a.size() + blockSize - 1) / blockSize;
      try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        for (long first = 0; first < blocks; first += BLOCKS_PER_ENTRY) {
          int n = (int) Math.min(BLOCKS_PER_ENTRY, blocks - first);
          byte[] sums = BlockChecksums.hashBlocks(ch, first, n, blockSize);
          sink.accept(b.clone().setKind(ManifestEntry.Kind.FILE).setSize(a.size()).setFirstBlock(first)
              .setBlockHashes(ByteString.copyFrom(sums)).setLast(first + n >= blocks).build());
        }
      }
    }
  }
}
