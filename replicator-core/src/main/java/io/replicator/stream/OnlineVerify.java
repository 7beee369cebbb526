package io.replicator.stream;

import io.replicator.VerifyReport;
import io.replicator.change.ChangeProtos;
import io.replicator.change.LocalPaths;
import io.replicator.fs.LocalTree;
import io.replicator.meta.BlockChecksums;
import io.replicator.meta.DirtyBitmap;
import io.replicator.proto.ManifestEntry;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Compares the primary's tree with the peer's by block checksums while the application runs:
 * the peer streams its manifest, each slice of checksums is compared with the local blocks under
 * that file's lock, and whatever differs is marked dirty in the bitmap for the next resync.
 */
final class OnlineVerify {
  private static final int MAX_EXAMPLES = 20;

  private final ManifestChannel manifest;
  private final LocalTree tree;
  private final DirtyBitmap bitmap;
  private final int blockSize;
  private final Set<String> peerPaths = new HashSet<>();
  private final List<String> examples = new ArrayList<>();
  private long pathsCompared;
  private long bytesCompared;
  private long blocksDiffering;
  private long pathsDiffering;

  OnlineVerify(ManifestChannel manifest, LocalTree tree, DirtyBitmap bitmap) {
    this.manifest = manifest;
    this.tree = tree;
    this.bitmap = bitmap;
    this.blockSize = bitmap.blockSize();
  }

  VerifyReport run() throws IOException {
    manifest.request(Set.of(""), true, blockSize, this::compare);
    walkLocal(tree.delegateRoot(), "");
    return new VerifyReport(pathsCompared, bytesCompared, blocksDiffering, pathsDiffering, examples);
  }

  private void differs(String path, String what) {
    if (examples.size() < MAX_EXAMPLES) {
      examples.add(path.isEmpty() ? "/ : " + what : path + ": " + what);
    }
  }

  private void compare(ManifestEntry e) throws IOException {
    String p = e.getPath();
    Path local = LocalPaths.resolve(tree.delegateRoot(), p);
    boolean first = e.getFirstBlock() == 0;
    if (first) {
      peerPaths.add(p);
      pathsCompared++;
      String problem = compareEntry(e, local);
      if (problem != null) {
        pathsDiffering++;
        bitmap.markPath(p);
        differs(p, problem);
        return;
      }
    }
    if (e.getKind() != ManifestEntry.Kind.FILE || e.getBlockHashes().isEmpty()) {
      return;
    }
    byte[] peer = e.getBlockHashes().toByteArray();
    int blocks = peer.length / BlockChecksums.SIZE;
    long firstBlock = e.getFirstBlock();
    tree.underFileLock(p, () -> {
      byte[] mine;
      try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        mine = BlockChecksums.hashBlocks(ch, firstBlock, blocks, blockSize);
      } catch (NoSuchFileException ex) {
        return null; // deleted meanwhile: its delete is on its way to the peer
      }
      for (int b = 0; b < blocks; b++) {
        int from = b * BlockChecksums.SIZE;
        boolean same = from + BlockChecksums.SIZE <= mine.length
            && Arrays.equals(mine, from, from + BlockChecksums.SIZE, peer, from, from + BlockChecksums.SIZE);
        if (!same) {
          blocksDiffering++;
          bitmap.markWrite(p, (firstBlock + b) * blockSize, blockSize);
          if (blocksDiffering <= MAX_EXAMPLES) {
            differs(p, "block " + (firstBlock + b) + " differs");
          }
        }
      }
      bytesCompared += Math.min((long) blocks * blockSize, Math.max(0, mine.length / BlockChecksums.SIZE) * (long) blockSize);
      return null;
    });
  }

  /** Kind, size, link target and permissions; null when they match. */
  private String compareEntry(ManifestEntry e, Path local) throws IOException {
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(local, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException ex) {
      return e.getKind() == ManifestEntry.Kind.MISSING ? null : "only on the peer";
    }
    ManifestEntry.Kind kind = a.isSymbolicLink() ? ManifestEntry.Kind.SYMBOLIC_LINK
        : a.isDirectory() ? ManifestEntry.Kind.DIRECTORY
        : a.isRegularFile() ? ManifestEntry.Kind.FILE : ManifestEntry.Kind.OTHER;
    if (kind != e.getKind()) {
      return kind + " here, " + e.getKind() + " on the peer";
    }
    if (kind == ManifestEntry.Kind.FILE && a.size() != e.getSize()) {
      return "size " + a.size() + " here, " + e.getSize() + " on the peer";
    }
    if (kind == ManifestEntry.Kind.SYMBOLIC_LINK) {
      String target = LocalPaths.linkTarget(tree.delegateRoot(), local);
      return target.equals(e.getLinkTarget()) ? null : "link target '" + target + "' here, '" + e.getLinkTarget() + "' on the peer";
    }
    try {
      int mode = ChangeProtos.toMode(Files.readAttributes(local, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
          .permissions());
      if (mode != e.getMode()) {
        return String.format("mode %o here, %o on the peer", mode, e.getMode());
      }
    } catch (UnsupportedOperationException ex) {
      // not POSIX here: nothing to compare
    }
    return null;
  }

  /** Entries this side has and the peer did not list. */
  private void walkLocal(Path root, String changePath) throws IOException {
    Path p = LocalPaths.resolve(root, changePath);
    if (!peerPaths.contains(changePath)) {
      if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
        pathsCompared++;
        pathsDiffering++;
        bitmap.markPath(changePath);
        differs(changePath, "missing on the peer");
      }
      return;
    }
    if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    for (String name : LocalPaths.sortedChildren(p, changePath)) {
      walkLocal(root, LocalPaths.child(changePath, name));
    }
  }
}
