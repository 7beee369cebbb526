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
 * The primary's own tree in {@link PathOrder}, the order the peer lists its manifest in: entries
 * are pulled one at a time, with one sorted listing per level of depth held, so a walk of millions
 * of files keeps no more than a few directories in memory. Symbolic links are never followed, the
 * metadata directory is skipped, and a directory's subtree can be skipped.
 */
final class LocalWalk {
  /** One entry of the local tree, as read when the walk reached it. */
  record Entry(String path, ManifestEntry.Kind kind, long size, String linkTarget, int mode, FileTime modified) {}

  private final Path root;
  private final Iterator<String> roots;
  private final Deque<Level> stack = new ArrayDeque<>();
  private Entry pending;
  private boolean descendPending;

  private record Level(String path, Iterator<String> names) {}

  /** A walk of {@code roots} (in {@link PathOrder}, none under another) under {@code root}. */
  LocalWalk(Path root, List<String> roots) {
    this.root = root;
    this.roots = roots.iterator();
  }

  /** The next entry, or null at the end. The previous entry's subtree is walked unless {@link #skipChildren}. */
  Entry next() throws IOException {
    if (pending != null && descendPending && pending.kind() == ManifestEntry.Kind.DIRECTORY) {
      List<String> names;
      try {
        names = LocalPaths.sortedChildren(LocalPaths.resolve(root, pending.path()), pending.path());
      } catch (NoSuchFileException | NotDirectoryException e) {
        names = List.of(); // removed since it was read: its removal went to the peer in order
      }
      stack.push(new Level(pending.path(), names.iterator()));
    }
    pending = null;
    while (true) {
      String path;
      if (!stack.isEmpty()) {
        Level top = stack.peek();
        if (!top.names().hasNext()) {
          stack.pop();
          continue;
        }
        path = LocalPaths.child(top.path(), top.names().next());
      } else if (roots.hasNext()) {
        path = roots.next();
      } else {
        return null;
      }
      Entry e = read(root, path);
      if (e != null) {
        pending = e;
        descendPending = true;
        return e;
      }
    }
  }

  /** The entry last returned is a directory whose subtree the caller does not need. */
  void skipChildren() {
    descendPending = false;
  }

  /** The state of {@code changePath} now, or null when it does not exist. */
  static Entry read(Path root, String changePath) throws IOException {
    Path p = LocalPaths.resolve(root, changePath);
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
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
    int mode = -1;
    try {
      mode = ChangeProtos.toMode(Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
          .permissions());
    } catch (UnsupportedOperationException e) {
      // not POSIX: permissions are not compared
    } catch (NoSuchFileException e) {
      return null;
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
