package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.ChangePaths;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Turns a change path into a {@link Path} under the replica root and refuses every way out of
 * it: malformed paths, the metadata directory, and symbolic links (existing ones, dangling ones,
 * chains of them) whose real destination lies outside the root.
 *
 * <p>The checks read the tree as it is now; they are sound because the applier is the only
 * writer of the replica tree and applies namespace changes (the only way to add or swap a link
 * or a directory) while nothing else runs. For the same reason the applier's guard may remember
 * the ancestors it found to be plain directories, so a stream of writes under one directory reads
 * its ancestors once, not once per change; the applier forgets them after every namespace change.
 */
final class PathGuard {

  /** The metadata directory at the root; never reachable through a change. */
  static final String METADATA_DIRECTORY = ".replicator";

  /** Same bound as the kernel's (Linux MAXSYMLINKS) for following chains of links ourselves. */
  private static final int MAX_LINK_HOPS = 40;

  /** Directories remembered at most; beyond, the memory starts over (a cost, never a risk). */
  static final int MAX_REMEMBERED_DIRECTORIES = 4096;

  private final Path realRoot;
  private final String separator;
  private volatile boolean symbolicLinkSeen;
  /** Ancestors found to be directories (not links) since {@link #forgetDirectories}; null when not remembered. */
  private final Set<Path> plainDirectories;

  /**
   * @param root an existing directory on any provider; its real path becomes the base, so a root
   *     reached through a symbolic link is fine
   */
  PathGuard(Path root) throws IOException {
    this(root, false);
  }

  /**
   * @param rememberDirectories whether ancestors found to be plain directories are remembered until
   *     {@link #forgetDirectories}: only for a guard whose owner applies every namespace change of the
   *     tree and calls {@code forgetDirectories} after each (the applier), never for one reading the
   *     tree while another thread changes it
   */
  PathGuard(Path root, boolean rememberDirectories) throws IOException {
    checkNotNull(root, "root");
    this.plainDirectories = rememberDirectories ? ConcurrentHashMap.newKeySet() : null;
    this.realRoot = root.toRealPath();
    checkArgument(Files.isDirectory(realRoot), "replica root %s is not a directory", root);
    this.separator = realRoot.getFileSystem().getSeparator();
  }

  /** The real path of the root, which every resolved path starts with. */
  Path root() {
    return realRoot;
  }

  /**
   * True once any resolution met a symbolic link inside the tree (or {@link #noteSymbolicLink}
   * was called): paths may then alias each other, which matters to whoever caches by path.
   */
  boolean symbolicLinkSeen() {
    return symbolicLinkSeen;
  }

  /**
   * The tree's namespace may have changed (a directory removed, renamed, or replaced by a link):
   * ancestors are read again from now on. Called with no resolution running.
   */
  void forgetDirectories() {
    if (plainDirectories != null) {
      plainDirectories.clear();
    }
  }

  /** Records that the tree now holds a symbolic link (the applier created one). */
  void noteSymbolicLink() {
    symbolicLinkSeen = true;
  }

  /**
   * Resolves a path for an operation that follows a symbolic link at the final element (write,
   * truncate, create file, attributes, force): the final element's destination must stay inside
   * the root too.
   */
  Path resolveFollowingLinks(String changePath) throws IOException {
    return resolve(changePath, true);
  }

  /**
   * Resolves a path for an operation that acts on the final element itself, link or not (delete,
   * move, create a link or directory, read a link): only the ancestors are checked.
   */
  Path resolveNoFollow(String changePath) throws IOException {
    return resolve(changePath, false);
  }

  private Path resolve(String changePath, boolean followFinal) throws IOException {
    String problem = ChangePaths.problem(changePath);
    if (problem != null) {
      throw new PathRefusedException(String.valueOf(changePath), problem);
    }
    if (changePath.isEmpty()) {
      return realRoot;
    }
    String[] elements = changePath.split("/", -1);
    // Case-insensitive: on a case-insensitive file system ".REPLICATOR" is the same directory.
    if (elements[0].equalsIgnoreCase(METADATA_DIRECTORY)) {
      throw new PathRefusedException(changePath, "the metadata directory is off limits");
    }
    Path current = realRoot;
    boolean existing = true; // false once an element is missing: nothing below it exists
    for (int i = 0; i < elements.length; i++) {
      String element = elements[i];
      if (element.contains(separator)) {
        throw new PathRefusedException(
            changePath, "element '" + ChangePaths.printable(element) + "' contains '" + separator + "'");
      }
      Path next = current.resolve(element);
      // Resolving a plain name adds exactly one name under current; anything else ("C:" on
      // Windows, a provider-specific syntax) would go somewhere we did not check.
      if (next.getNameCount() != current.getNameCount() + 1 || !next.startsWith(current)) {
        throw new PathRefusedException(
            changePath, "element '" + ChangePaths.printable(element) + "' is not a plain name");
      }
      boolean last = i == elements.length - 1;
      if (existing && !last && plainDirectories != null && plainDirectories.contains(next)) {
        current = next; // a plain directory when last read, and no namespace change since
        continue;
      }
      if (existing && (!last || followFinal)) {
        BasicFileAttributes attributes = readNoFollow(next);
        if (attributes == null) {
          existing = false;
        } else if (attributes.isSymbolicLink()) {
          symbolicLinkSeen = true;
          checkLinkStaysInside(changePath, next);
        } else if (!attributes.isDirectory() && !last) {
          // A path through a regular file: the operation fails by itself (not a directory).
          existing = false;
        } else if (!last && plainDirectories != null) {
          remember(next);
        }
      }
      current = next;
    }
    return current;
  }

  private void remember(Path directory) {
    if (plainDirectories.size() >= MAX_REMEMBERED_DIRECTORIES) {
      plainDirectories.clear();
    }
    plainDirectories.add(directory);
  }

  /** Refuses when the link at {@code link}, followed to the end, leads outside the root. */
  private void checkLinkStaysInside(String changePath, Path link) throws IOException {
    Path destination;
    try {
      destination = link.toRealPath();
    } catch (NoSuchFileException dangling) {
      destination = danglingDestination(changePath, link);
    }
    if (!inside(destination)) {
      throw new PathRefusedException(
          changePath, "a symbolic link leads outside the replica root (to " + destination + ")");
    }
  }

  /**
   * Where creating through a dangling link would create the file: follows the chain by hand,
   * since toRealPath cannot, requiring each link's directory to exist and stay inside.
   */
  private Path danglingDestination(String changePath, Path link) throws IOException {
    Path current = link;
    for (int hop = 0; hop < MAX_LINK_HOPS; hop++) {
      Path target = current.getParent().resolve(Files.readSymbolicLink(current));
      Path parent = target.getParent();
      Path name = target.getFileName();
      if (parent == null || name == null) {
        throw new PathRefusedException(changePath, "a symbolic link leads to " + target);
      }
      Path realParent;
      try {
        realParent = parent.toRealPath();
      } catch (NoSuchFileException e) {
        throw new PathRefusedException(
            changePath, "a dangling symbolic link leads to a missing directory " + parent);
      }
      if (!inside(realParent)) {
        throw new PathRefusedException(
            changePath, "a symbolic link leads outside the replica root (to " + target + ")");
      }
      Path candidate = realParent.resolve(name.toString());
      BasicFileAttributes attributes = readNoFollow(candidate);
      if (attributes == null) {
        return candidate;
      }
      if (!attributes.isSymbolicLink()) {
        return candidate.toRealPath();
      }
      current = candidate;
    }
    throw new FileSystemException(link.toString(), null, "too many levels of symbolic links");
  }

  private boolean inside(Path real) {
    if (!real.startsWith(realRoot)) {
      return false;
    }
    int depth = realRoot.getNameCount();
    return real.getNameCount() == depth
        || !real.getName(depth).toString().equalsIgnoreCase(METADATA_DIRECTORY);
  }

  private static BasicFileAttributes readNoFollow(Path path) throws IOException {
    try {
      return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      return null;
    }
  }
}
