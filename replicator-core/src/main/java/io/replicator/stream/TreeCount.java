package io.replicator.stream;

import io.replicator.change.LocalPaths;
import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Counts the entries and file bytes of the local tree (or of some subtrees) on a thread of its own,
 * into a {@link TreeProgress}'s totals, so a long operation can show an estimate of the time left.
 * It only reads attributes, which the operation reads again soon after from the cache.
 */
final class TreeCount {
  private static final Logger log = LoggerFactory.getLogger(TreeCount.class);

  private TreeCount() {}

  /** Starts counting under {@code root} the change paths {@code roots}; the thread ends with the count. */
  static Thread start(Path root, Iterable<String> roots, TreeProgress progress) {
    Thread t = new Thread(() -> {
      try {
        for (String r : roots) {
          count(root, r, progress);
        }
        if (!Thread.currentThread().isInterrupted()) {
          progress.totalsFinal();
        }
      } catch (IOException | RuntimeException e) {
        log.debug("counting the tree stopped: {}", e.toString());
      }
    }, "replicator-tree-count");
    t.setDaemon(true);
    t.setPriority(Thread.MIN_PRIORITY);
    t.start();
    return t;
  }

  private static void count(Path root, String changePath, TreeProgress progress) throws IOException {
    Path start = LocalPaths.resolve(root, changePath);
    Path metadata = root.resolve(LocalPaths.METADATA_DIRECTORY);
    if (!Files.exists(start, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(start, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
        if (Thread.currentThread().isInterrupted()) {
          return FileVisitResult.TERMINATE;
        }
        if (dir.equals(metadata)) {
          return FileVisitResult.SKIP_SUBTREE;
        }
        progress.filesTotal.incrementAndGet();
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
        progress.filesTotal.incrementAndGet();
        if (attrs.isRegularFile()) {
          progress.bytesTotal.addAndGet(attrs.size());
        }
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFileFailed(Path file, IOException e) {
        return FileVisitResult.CONTINUE; // gone meanwhile: the count is an estimate
      }
    });
  }
}
