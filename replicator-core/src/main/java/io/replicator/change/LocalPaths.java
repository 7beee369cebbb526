package io.replicator.change;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * How change paths map onto a directory tree on any provider, the same way on both nodes:
 * resolving element by element, listing a directory in sorted order without the metadata
 * directory, and reading a symbolic link as the application wrote it. Internal.
 */
public final class LocalPaths {
  /** The metadata directory at a root, never listed. */
  public static final String METADATA_DIRECTORY = ".replicator";

  private LocalPaths() {}

  /** {@code root} with the elements of a change path appended ("" is the root itself). */
  public static Path resolve(Path root, String changePath) {
    Path p = root;
    if (!changePath.isEmpty()) {
      for (String element : changePath.split("/")) {
        p = p.resolve(element);
      }
    }
    return p;
  }

  /** The change path of a child: "" joins without a separator. */
  public static String child(String parent, String name) {
    return parent.isEmpty() ? name : parent + "/" + name;
  }

  /** The names in directory {@code dir} (the change path {@code changePath}), sorted, without the metadata directory. */
  public static List<String> sortedChildren(Path dir, String changePath) throws IOException {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path child : ds) {
        String name = child.getFileName().toString();
        if (!(changePath.isEmpty() && name.equals(METADATA_DIRECTORY))) {
          names.add(name);
        }
      }
    }
    Collections.sort(names);
    return names;
  }

  /**
   * A link's target as the application wrote it: an absolute target inside {@code root} (the
   * wrapper maps "/" to the root) reads as "/relative/path"; anything else as stored.
   */
  public static String linkTarget(Path root, Path link) throws IOException {
    Path t = Files.readSymbolicLink(link);
    if (t.isAbsolute() && t.startsWith(root)) {
      return "/" + root.relativize(t).toString().replace(root.getFileSystem().getSeparator(), "/");
    }
    return t.toString();
  }
}
