package io.replicator.tools;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Compares two directory trees entry by entry: kind, content byte for byte, symbolic link targets
 * and, where both sides are POSIX, permissions. The metadata directory at the root is skipped.
 * Used by the demo and the tests to prove that a replica equals its primary; internal. A tree that
 * changes while it is compared (a copy still applying) gives differences, never an exception: an
 * entry that vanishes between the listing and its comparison is reported as gone.
 */
public final class TreeDiff {
  private static final int MAX_REPORTED = 20;

  private TreeDiff() {}

  /** Returns the differences (at most 20 described, then a count), empty when the trees are equal. */
  public static List<String> compare(Path left, Path right) throws IOException {
    TreeMap<String, Path> l = list(left);
    TreeMap<String, Path> r = list(right);
    List<String> out = new ArrayList<>();
    int count = 0;
    for (String rel : l.keySet()) {
      String d;
      try {
        d = r.containsKey(rel) ? compareEntry(rel, left, l.get(rel), right, r.get(rel)) : "only in " + left + ": " + rel;
      } catch (NoSuchFileException gone) {
        d = rel + ": gone while it was compared (" + gone.getFile() + ")";
      }
      if (d != null && count++ < MAX_REPORTED) {
        out.add(d);
      }
    }
    for (String rel : r.keySet()) {
      if (!l.containsKey(rel) && count++ < MAX_REPORTED) {
        out.add("only in " + right + ": " + rel);
      }
    }
    if (count > MAX_REPORTED) {
      out.add("... " + (count - MAX_REPORTED) + " more differences");
    }
    return out;
  }

  /** Counts regular files and their bytes under {@code root} (metadata directory skipped). */
  public static long[] filesAndBytes(Path root) throws IOException {
    long files = 0;
    long bytes = 0;
    for (Path p : list(root).values()) {
      BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (a.isRegularFile()) {
        files++;
        bytes += a.size();
      }
    }
    return new long[] {files, bytes};
  }

  private static TreeMap<String, Path> list(Path root) throws IOException {
    TreeMap<String, Path> entries = new TreeMap<>();
    Files.walkFileTree(root, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
        if (dir.equals(root)) {
          return FileVisitResult.CONTINUE;
        }
        if (dir.getParent().equals(root) && dir.getFileName().toString().equals(".replicator")) {
          return FileVisitResult.SKIP_SUBTREE;
        }
        entries.put(relative(root, dir), dir);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
        entries.put(relative(root, file), file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
        if (vanished(file, e)) {
          return FileVisitResult.CONTINUE; // removed after its directory was read: not in the tree now
        }
        throw e;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
        if (e != null && !vanished(dir, e)) {
          throw e;
        }
        return FileVisitResult.CONTINUE;
      }

      /** Gone while the walk ran; only the root itself must exist. */
      private boolean vanished(Path entry, IOException e) {
        return e instanceof NoSuchFileException && !entry.equals(root);
      }
    });
    return entries;
  }

  private static String relative(Path root, Path p) {
    return root.relativize(p).toString().replace(p.getFileSystem().getSeparator(), "/");
  }

  private static String compareEntry(String rel, Path rootA, Path a, Path rootB, Path b) throws IOException {
    BasicFileAttributes x = Files.readAttributes(a, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    BasicFileAttributes y = Files.readAttributes(b, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (kind(x) != kind(y)) {
      return rel + ": " + kind(x) + " vs " + kind(y);
    }
    if (x.isSymbolicLink()) {
      String ta = linkTarget(rootA, a);
      String tb = linkTarget(rootB, b);
      return ta.equals(tb) ? null : rel + ": link target '" + ta + "' vs '" + tb + "'";
    }
    PosixFileAttributeView pa = Files.getFileAttributeView(a, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
    PosixFileAttributeView pb = Files.getFileAttributeView(b, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
    if (pa != null && pb != null) {
      PosixFileAttributes ax = pa.readAttributes();
      PosixFileAttributes bx = pb.readAttributes();
      if (!Objects.equals(ax.permissions(), bx.permissions())) {
        return rel + ": permissions " + ax.permissions() + " vs " + bx.permissions();
      }
    }
    if (x.isRegularFile()) {
      if (x.size() != y.size()) {
        return rel + ": size " + x.size() + " vs " + y.size();
      }
      long at = firstDifference(a, b);
      if (at >= 0) {
        return rel + ": content differs at byte " + at;
      }
    }
    return null;
  }

  /** An absolute target inside the tree is shown relative to its root ("/x"), as the application wrote it. */
  private static String linkTarget(Path root, Path link) throws IOException {
    return io.replicator.change.LocalPaths.linkTarget(root, link);
  }

  private static String kind(BasicFileAttributes a) {
    return a.isSymbolicLink() ? "link" : a.isDirectory() ? "directory" : a.isRegularFile() ? "file" : "other";
  }

  private static long firstDifference(Path a, Path b) throws IOException {
    try (InputStream x = Files.newInputStream(a); InputStream y = Files.newInputStream(b)) {
      byte[] bx = new byte[64 * 1024];
      byte[] by = new byte[64 * 1024];
      long offset = 0;
      while (true) {
        int nx = x.readNBytes(bx, 0, bx.length);
        int ny = y.readNBytes(by, 0, by.length);
        int n = Math.min(nx, ny);
        int m = Arrays.mismatch(bx, 0, n, by, 0, n);
        if (m >= 0) {
          return offset + m;
        }
        if (nx != ny) {
          return offset + n;
        }
        if (nx == 0) {
          return -1;
        }
        offset += n;
      }
    }
  }
}
