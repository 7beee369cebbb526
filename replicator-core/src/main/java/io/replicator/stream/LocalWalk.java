package io.replicator.stream;

import io.replicator.change.ChangeProtos;
import io.replicator.change.LocalPaths;
import io.replicator.proto.ManifestEntry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;

/**
 * The primary's own tree in {@link PathOrder}, the order the peer lists its manifest in: paths are
 * pulled one at a time, with one sorted listing per level of depth held, so a walk of millions of
 * files keeps no more than a few directories in memory. The walk reads no attributes: the caller
 * reads a path's state once, under its lock, and says when it is a directory to walk into. The
 * metadata directory is skipped; symbolic links are never walked into (the caller sees them as
 * links).
 */
final class LocalWalk {
  /** One entry of the local tree, as read under its lock. */
  record Entry(String path, ManifestEntry.Kind kind, long size, String linkTarget, int mode, FileTime modified) {}

  private final Path root;
  private final Iterator<String> roots;
  private final Deque<Level> stack = new ArrayDeque<>();
  private String last;
  private boolean descendLast;

  private record Level(String path, Iterator<String> names) {}

  /** A walk of {@code roots} (in {@link PathOrder}, none under another) under {@code root}. */
  LocalWalk(Path root, List<String> roots) {
    this.root = root;
    this.roots = roots.iterator();
  }

  /** The next path, or null at the end; the previous one's entries come first if {@link #descend} was called. */
  String next() throws IOException {
    if (last != null && descendLast) {
      List<String> names;
      try {
        names = LocalPaths.sortedChildren(LocalPaths.resolve(root, last), last);
      } catch (NoSuchFileException | NotDirectoryException e) {
        names = List.of(); // removed or replaced since it was read: that change went to the peer in order
      }
      stack.push(new Level(last, names.iterator()));
    }
    descendLast = false;
    while (true) {
      if (!stack.isEmpty()) {
        Level top = stack.peek();
        if (!top.names().hasNext()) {
          stack.pop();
          continue;
        }
        last = LocalPaths.child(top.path(), top.names().next());
        return last;
      }
      if (roots.hasNext()) {
        last = roots.next();
        return last;
      }
      last = null;
      return null;
    }
  }

  /** The path last returned is a directory whose entries the caller wants next. */
  void descend() {
    descendLast = true;
  }

  /** The state of {@code changePath} now, or null when it does not exist; one attribute read. */
  static Entry read(Path root, String changePath) throws IOException {
    Path p = LocalPaths.resolve(root, changePath);
    BasicFileAttributes a;
    int mode = -1;
    try {
      try {
        PosixFileAttributes px = Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        a = px;
        if (!px.isSymbolicLink() && (px.isDirectory() || px.isRegularFile())) {
          mode = ChangeProtos.toMode(px.permissions());
        }
      } catch (UnsupportedOperationException e) {
        // not POSIX: permissions are not compared
        a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      }
    } catch (NoSuchFileException | NotDirectoryException e) {
      return null;
    }
    if (a.isSymbolicLink()) {
      String target;
      try {
        target = LocalPaths.linkTarget(root, p);
      } catch (NoSuchFileException | java.nio.file.NotLinkException e) {
        return null;
      }
      return new Entry(changePath, ManifestEntry.Kind.SYMBOLIC_LINK, 0, target, -1, a.lastModifiedTime());
    }
    if (a.isDirectory()) {
      return new Entry(changePath, ManifestEntry.Kind.DIRECTORY, 0, "", mode, a.lastModifiedTime());
    }
    if (a.isRegularFile()) {
      return new Entry(changePath, ManifestEntry.Kind.FILE, a.size(), "", mode, a.lastModifiedTime());
    }
    return new Entry(changePath, ManifestEntry.Kind.OTHER, 0, "", -1, a.lastModifiedTime());
  }
}
