package io.replicator.stream;

import io.replicator.VerifyReport;
import io.replicator.change.LocalPaths;
import io.replicator.fs.LocalTree;
import io.replicator.meta.BlockChecksums;
import io.replicator.meta.DirtyBitmap;
import io.replicator.proto.ManifestEntry;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.TreeSet;

/**
 * Compares the primary's tree with the peer's by block checksums while the application runs, and
 * marks whatever differs dirty for the next resync.
 *
 * <h2>Order with the stream</h2>
 * The peer walks its tree in {@link PathOrder} while it keeps applying changes, and says with each
 * entry how far it had applied them. The primary walks its own tree in the same order and compares
 * each pair as the entries arrive, under that path's lock, reading its own state at that moment.
 * The two show the same point of the stream unless a change to the path (or to what an ancestor's
 * name holds) was numbered after the peer's reading ({@link RecentChanges}); such a comparison is
 * not trusted but done again: first in a few more rounds without any lock, then, for a path the
 * application kept changing all along, once while holding its lock (no change to it can then be
 * numbered, and the peer answers after applying all of them). So a live tree shows only real
 * differences, as DRBD's online verify, whose requests travel in its data stream.
 */
final class OnlineVerify {
  private static final int MAX_EXAMPLES = 20;
  /** Rounds of comparing again, without a lock, what changed during the previous one. */
  private static final int RECHECK_ROUNDS = 3;
  /** Blocks compared per hold of a file's lock. */
  private static final int LOCK_BLOCKS = 256;

  private final ManifestChannel manifest;
  private final LocalTree tree;
  private final Path root;
  private final DirtyBitmap bitmap;
  private final RecentChanges changes;
  private final TreeProgress progress;
  private final int blockSize;
  private final List<String> examples = new ArrayList<>();
  /** Paths whose comparison a concurrent change spoiled, to compare again. */
  private TreeSet<String> again = new TreeSet<>(PathOrder.COMPARATOR);
  private long pathsCompared;
  private long bytesCompared;
  private long blocksDiffering;
  private long pathsDiffering;

  OnlineVerify(ManifestChannel manifest, LocalTree tree, DirtyBitmap bitmap, RecentChanges changes,
      TreeProgress progress) {
    this.manifest = manifest;
    this.tree = tree;
    this.root = tree.delegateRoot();
    this.bitmap = bitmap;
    this.changes = changes;
    this.progress = progress;
    this.blockSize = bitmap.blockSize();
  }

  VerifyReport run() throws IOException {
    compare(List.of(""));
    for (int round = 1; round <= RECHECK_ROUNDS && !again.isEmpty(); round++) {
      List<String> roots = PathOrder.minimalRoots(again);
      again = new TreeSet<>(PathOrder.COMPARATOR);
      for (List<String> batch : ManifestChannel.batches(roots)) {
        compare(batch);
      }
    }
    for (String p : List.copyOf(again)) {
      compareHoldingLock(p);
    }
    return new VerifyReport(pathsCompared, bytesCompared, blocksDiffering, pathsDiffering, examples);
  }

  /** One pass over {@code roots}: the peer's manifest merged with the local walk. */
  private void compare(List<String> roots) throws IOException {
    Merge merge = new Merge(new LocalWalk(root, roots));
    manifest.request(new ManifestChannel.Request(roots, true, true, blockSize), merge::remote);
    merge.finish();
  }

  /**
   * The last word on a path the application kept changing: its lock is held while the peer reads
   * it, so the peer's answer and the local state show the same moment.
   */
  private void compareHoldingLock(String path) throws IOException {
    tree.underFileLock(path, () -> {
      List<ManifestEntry> entries = new ArrayList<>();
      manifest.request(new ManifestChannel.Request(List.of(path), true, false, blockSize), entries::add);
      Pair pair = null;
      for (ManifestEntry e : entries) {
        if (e.getFirstBlock() == 0) {
          pair = new Pair(e);
          pair.compareAttributes();
        }
        if (pair != null && pair.blocksComparable()) {
          pair.compareBlocksLocked(e);
        }
      }
      return null;
    });
  }

  private void differs(String path, String what) {
    if (examples.size() < MAX_EXAMPLES) {
      examples.add(path.isEmpty() ? "/ : " + what : path + ": " + what);
    }
  }

  /** The local entries and the peer's, matched by path in walk order. */
  private final class Merge {
    private final LocalWalk walk;
    /** The next local path not yet matched, or null at the end of the walk. */
    private String local;
    /** The peer's directories above the current entry, with when each was listed. */
    private final Deque<ManifestEntry> peerDirectories = new ArrayDeque<>();
    /** A subtree found only on the peer (or of another kind there): its entries are not compared. */
    private String skipPeerUnder;
    /** The file whose further slices of checksums are arriving, or null. */
    private Pair current;

    Merge(LocalWalk walk) throws IOException {
      this.walk = walk;
      this.local = walk.next();
    }

    void remote(ManifestEntry e) throws IOException {
      changes.peerApplied(e.getAppliedBefore());
      if (e.getFirstBlock() > 0) {
        if (current != null && current.path.equals(e.getPath()) && current.blocksComparable()) {
          current.compareBlocks(e);
        }
        return;
      }
      current = null;
      String p = e.getPath();
      if (skipPeerUnder != null && PathOrder.within(p, skipPeerUnder)) {
        return;
      }
      skipPeerUnder = null;
      while (!peerDirectories.isEmpty() && !PathOrder.within(p, peerDirectories.peek().getPath())) {
        peerDirectories.pop();
      }
      while (local != null && PathOrder.compare(local, p) < 0) {
        onlyHere(local);
        local = walk.next();
      }
      boolean walked = p.equals(local);
      Pair pair = new Pair(e);
      underLock(p, () -> {
        pair.compareAttributes();
        if (pair.blocksComparable()) {
          pair.compareBlocksLocked(e);
        }
      });
      boolean directory = e.getKind() == ManifestEntry.Kind.DIRECTORY;
      if (walked) {
        if (pair.descend && pair.mine != null && pair.mine.kind() == ManifestEntry.Kind.DIRECTORY) {
          walk.descend();
        }
        local = walk.next();
      }
      if (directory) {
        if (pair.descend) {
          peerDirectories.push(e);
        } else {
          skipPeerUnder = p;
        }
      }
      if (e.getKind() == ManifestEntry.Kind.FILE && !e.getLast()) {
        current = pair;
      }
    }

    void finish() throws IOException {
      while (local != null) {
        onlyHere(local);
        local = walk.next();
      }
    }

    /** A local path the peer did not list: judged by when the peer listed its nearest directory. */
    private void onlyHere(String p) throws IOException {
      ManifestEntry listed = null;
      for (ManifestEntry d : peerDirectories) {
        if (PathOrder.within(p, d.getPath())) {
          listed = d;
          break;
        }
      }
      long basis = listed == null ? -1 : listed.getAppliedBefore();
      underLock(p, () -> {
        if (basis < 0 || !changes.settled(p, basis)) {
          again.add(p);
          return;
        }
        LocalWalk.Entry now = LocalWalk.read(root, p);
        if (now != null) {
          pathsCompared++;
          progress.filesDone.incrementAndGet();
          pathsDiffering++;
          bitmap.markPath(p); // a directory as a whole: resync sends the subtree
          differs(p, "missing on the peer");
        }
      });
    }
  }

  /** One path compared: the peer's entry (its kind MISSING when it has none) and the local one read under the lock. */
  private final class Pair {
    final String path;
    /** The peer's entry, or null when it has none. */
    final ManifestEntry peer;
    /** How far the peer had applied changes when it read the entry. */
    final long basis;
    LocalWalk.Entry mine;
    /** False once the comparison is spoiled by a concurrent change (the path is compared again) or differs. */
    private boolean blocks;
    /** Whether the entries under this directory are compared one by one. */
    boolean descend = true;

    Pair(ManifestEntry entry) {
      this.path = entry.getPath();
      this.peer = entry.getKind() == ManifestEntry.Kind.MISSING ? null : entry;
      this.basis = entry.getAppliedBefore();
    }

    boolean blocksComparable() {
      return blocks;
    }

    /** Kind, size, link target and permissions, under the path's lock. */
    void compareAttributes() throws IOException {
      if (!changes.settled(path, basis)) {
        again.add(path);
        return;
      }
      mine = LocalWalk.read(root, path);
      if (peer == null && mine == null) {
        return; // on neither side (any more)
      }
      pathsCompared++;
      progress.filesDone.incrementAndGet();
      String problem = difference();
      if (problem != null) {
        pathsDiffering++;
        bitmap.markPath(path);
        differs(path, problem);
        descend = false;
        return;
      }
      blocks = mine.kind() == ManifestEntry.Kind.FILE && !peer.getBlockHashes().isEmpty();
    }

    private String difference() {
      if (peer == null) {
        return "missing on the peer";
      }
      if (mine == null) {
        return "only on the peer";
      }
      if (mine.kind() != peer.getKind()) {
        return mine.kind() + " here, " + peer.getKind() + " on the peer";
      }
      if (mine.kind() == ManifestEntry.Kind.FILE && mine.size() != peer.getSize()) {
        return "size " + mine.size() + " here, " + peer.getSize() + " on the peer";
      }
      if (mine.kind() == ManifestEntry.Kind.SYMBOLIC_LINK) {
        return mine.linkTarget().equals(peer.getLinkTarget()) ? null
            : "link target '" + mine.linkTarget() + "' here, '" + peer.getLinkTarget() + "' on the peer";
      }
      if (mine.mode() >= 0 && mine.mode() != peer.getMode()) {
        return String.format("mode %o here, %o on the peer", mine.mode(), peer.getMode());
      }
      return null;
    }

    /** The first run of a slice while the lock taken for the attributes is still held, then the rest. */
    void compareBlocksLocked(ManifestEntry slice) throws IOException {
      compareBlocks(slice, true);
    }

    void compareBlocks(ManifestEntry slice) throws IOException {
      compareBlocks(slice, false);
    }

    private void compareBlocks(ManifestEntry slice, boolean firstRunLocked) throws IOException {
      byte[] sums = slice.getBlockHashes().toByteArray();
      int count = sums.length / BlockChecksums.SIZE;
      for (int from = 0; from < count && blocks; from += LOCK_BLOCKS) {
        int offset = from;
        int n = Math.min(LOCK_BLOCKS, count - from);
        if (from == 0 && firstRunLocked) {
          // the attributes were read in this hold of the lock: their size is the file's
          compareRun(slice, sums, offset, n, mine.size());
        } else {
          underLock(path, () -> compareRun(slice, sums, offset, n, -1));
        }
      }
    }

    /** Blocks {@code offset .. offset+n} of the slice, under the path's lock ({@code size} when known, else -1). */
    private void compareRun(ManifestEntry slice, byte[] sums, int offset, int n, long size) throws IOException {
      if (!changes.settled(path, slice.getAppliedBefore())) {
        blocks = false;
        again.add(path);
        return;
      }
      long firstBlock = slice.getFirstBlock() + offset;
      byte[] here;
      try (FileChannel ch = FileChannel.open(LocalPaths.resolve(root, path), StandardOpenOption.READ,
          LinkOption.NOFOLLOW_LINKS)) {
        here = BlockChecksums.hashBlocks(ch, size >= 0 ? size : ch.size(), firstBlock, n, blockSize);
      } catch (NoSuchFileException ex) {
        blocks = false;
        again.add(path); // gone without a recorded change: look again
        return;
      }
      for (int b = 0; b < n; b++) {
        int mineAt = b * BlockChecksums.SIZE;
        int peerAt = (offset + b) * BlockChecksums.SIZE;
        boolean same = mineAt + BlockChecksums.SIZE <= here.length
            && Arrays.equals(here, mineAt, mineAt + BlockChecksums.SIZE, sums, peerAt, peerAt + BlockChecksums.SIZE);
        if (!same) {
          blocksDiffering++;
          bitmap.markWrite(path, (firstBlock + b) * blockSize, blockSize);
          if (blocksDiffering <= MAX_EXAMPLES) {
            differs(path, "block " + (firstBlock + b) + " differs");
          }
        }
      }
      long bytes = Math.min((long) n * blockSize, Math.max(0, peer.getSize() - firstBlock * blockSize));
      bytesCompared += bytes;
      progress.bytesDone.addAndGet(bytes);
    }
  }

  @FunctionalInterface
  private interface Locked {
    void run() throws IOException;
  }

  private void underLock(String path, Locked action) throws IOException {
    tree.underFileLock(path, () -> {
      action.run();
      return null;
    });
  }
}
