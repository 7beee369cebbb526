package io.replicator.fs;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A comparable description of a directory tree: for each entry its type, content, symbolic-link
 * target (absolute targets relative to the tree's root), POSIX permissions, and for chosen paths
 * the last-modified time. The metadata directory at the root is left out.
 */
final class TreeSnapshot {

  private TreeSnapshot() {}

  static Map<String, String> of(Path root, Set<String> timedPaths) throws IOException {
    Map<String, String> entries = new TreeMap<>();
    boolean posix = root.getFileSystem().supportedFileAttributeViews().contains("posix");
    Files.walkFileTree(
        root,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs)
              throws IOException {
            if (dir.equals(root.resolve(WrappedFileSystem.METADATA_DIRECTORY))) {
              return FileVisitResult.SKIP_SUBTREE;
            }
            if (!dir.equals(root)) {
              entries.put(name(dir), "dir" + describe(dir, attrs));
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
            if (attrs.isSymbolicLink()) {
              String target = Files.readSymbolicLink(file).toString();
              String base = root.toString().endsWith("/") ? root.toString() : root + "/";
              if (target.startsWith(base)) {
                target = "/" + target.substring(base.length());
              }
              entries.put(name(file), "link -> " + target);
            } else {
              byte[] content = Files.readAllBytes(file);
              entries.put(
                  name(file),
                  "file "
                      + content.length
                      + " "
                      + (content.length <= 64
                          ? HexFormat.of().formatHex(content)
                          : Integer.toHexString(java.util.Arrays.hashCode(content)))
                      + describe(file, attrs));
            }
            return FileVisitResult.CONTINUE;
          }

          private String name(Path path) {
            return root.relativize(path).toString();
          }

          private String describe(Path path, BasicFileAttributes attrs) throws IOException {
            StringBuilder out = new StringBuilder();
            if (posix) {
              out.append(' ')
                  .append(
                      PosixFilePermissions.toString(
                          Files.getPosixFilePermissions(path, LinkOption.NOFOLLOW_LINKS)));
            }
            if (timedPaths.contains(name(path))) {
              out.append(" mtime=").append(attrs.lastModifiedTime().toMillis());
            }
            return out.toString();
          }
        });
    return entries;
  }
}
