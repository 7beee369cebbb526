package io.replicator.fs;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import com.google.common.collect.ImmutableList;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.file.FileSystem;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.ArrayList;
import java.util.List;

/**
 * A unix-style path of a {@link WrappedFileSystem}: '/'-separated names, absolute when it starts
 * with '/'. It is purely lexical; the file system maps its normalised absolute form onto the
 * delegate root, so ".." never climbs above the root ("/.." is "/", as on unix).
 */
final class WrappedPath implements Path {

  private final WrappedFileSystem fs;
  private final boolean absolute;
  private final ImmutableList<String> names;

  // Computed on first use; benign races only recompute equal values.
  private String string;
  private String changePath;
  private Path delegate;

  WrappedPath(WrappedFileSystem fs, boolean absolute, ImmutableList<String> names) {
    this.fs = fs;
    this.absolute = absolute;
    this.names = names;
  }

  /** Parses a path string the way {@link FileSystem#getPath} joins its arguments. */
  static WrappedPath parse(WrappedFileSystem fs, String first, String... more) {
    checkNotNull(first, "first");
    StringBuilder joined = new StringBuilder(first);
    for (String part : more) {
      if (!part.isEmpty()) {
        if (joined.length() > 0) {
          joined.append('/');
        }
        joined.append(part);
      }
    }
    String text = joined.toString();
    if (text.indexOf('\0') >= 0) {
      throw new InvalidPathException(text, "NUL character not allowed");
    }
    ImmutableList.Builder<String> names = ImmutableList.builder();
    for (String name : text.split("/")) {
      if (!name.isEmpty()) {
        names.add(name);
      }
    }
    return new WrappedPath(fs, text.startsWith("/"), names.build());
  }

  ImmutableList<String> names() {
    return names;
  }

  /** The wrapper path as a {@link io.replicator.change.ChangePaths change path}. */
  String changePath() {
    String result = changePath;
    if (result == null) {
      result = String.join("/", normalizedNames());
      changePath = result;
    }
    return result;
  }

  /** The delegate path this path maps to: normalised, resolved against the delegate root. */
  Path delegate() {
    Path result = delegate;
    if (result == null) {
      result = fs.toDelegate(changePath());
      delegate = result;
    }
    return result;
  }

  /** True when this path names the hidden metadata directory or something inside it. */
  boolean isMetadata() {
    List<String> normalized = normalizedNames();
    return !normalized.isEmpty() && normalized.get(0).equals(WrappedFileSystem.METADATA_DIRECTORY);
  }

  /** Names of the absolute, normalised form; ".." at the root stays at the root. */
  private List<String> normalizedNames() {
    boolean clean = true;
    for (String name : names) {
      if (name.equals(".") || name.equals("..")) {
        clean = false;
        break;
      }
    }
    if (clean) {
      return names;
    }
    List<String> out = new ArrayList<>(names.size());
    for (String name : names) {
      if (name.equals(".")) {
        continue;
      }
      if (name.equals("..")) {
        if (!out.isEmpty()) {
          out.remove(out.size() - 1);
        }
        continue;
      }
      out.add(name);
    }
    return out;
  }

  @Override
  public WrappedFileSystem getFileSystem() {
    return fs;
  }

  @Override
  public boolean isAbsolute() {
    return absolute;
  }

  @Override
  public Path getRoot() {
    return absolute ? fs.root() : null;
  }

  @Override
  public Path getFileName() {
    if (names.isEmpty()) {
      return null;
    }
    if (names.size() == 1 && !absolute) {
      return this;
    }
    return new WrappedPath(fs, false, ImmutableList.of(names.get(names.size() - 1)));
  }

  @Override
  public Path getParent() {
    if (names.isEmpty()) {
      return null;
    }
    if (names.size() == 1) {
      return getRoot();
    }
    return new WrappedPath(fs, absolute, names.subList(0, names.size() - 1));
  }

  @Override
  public int getNameCount() {
    return names.size();
  }

  @Override
  public Path getName(int index) {
    if (index < 0 || index >= names.size()) {
      throw new IllegalArgumentException("no name " + index + " in " + this);
    }
    return new WrappedPath(fs, false, ImmutableList.of(names.get(index)));
  }

  @Override
  public Path subpath(int beginIndex, int endIndex) {
    if (beginIndex < 0 || endIndex > names.size() || beginIndex >= endIndex) {
      throw new IllegalArgumentException(
          "bad subpath [" + beginIndex + ", " + endIndex + ") of " + this);
    }
    return new WrappedPath(fs, false, names.subList(beginIndex, endIndex));
  }

  @Override
  public boolean startsWith(Path other) {
    if (!(other instanceof WrappedPath)) {
      return false;
    }
    WrappedPath that = (WrappedPath) other;
    return that.fs == fs
        && that.absolute == absolute
        && that.names.size() <= names.size()
        && names.subList(0, that.names.size()).equals(that.names);
  }

  @Override
  public boolean startsWith(String other) {
    return startsWith(fs.getPath(other));
  }

  @Override
  public boolean endsWith(Path other) {
    if (!(other instanceof WrappedPath)) {
      return false;
    }
    WrappedPath that = (WrappedPath) other;
    if (that.fs != fs) {
      return false;
    }
    if (that.absolute) {
      return equals(that);
    }
    return that.names.size() <= names.size()
        && names.subList(names.size() - that.names.size(), names.size()).equals(that.names);
  }

  @Override
  public boolean endsWith(String other) {
    return endsWith(fs.getPath(other));
  }

  @Override
  public Path normalize() {
    List<String> out = new ArrayList<>(names.size());
    for (String name : names) {
      if (name.equals(".")) {
        continue;
      }
      if (name.equals("..")) {
        if (!out.isEmpty() && !out.get(out.size() - 1).equals("..")) {
          out.remove(out.size() - 1);
          continue;
        }
        if (absolute) {
          continue; // "/.." is "/"
        }
      }
      out.add(name);
    }
    return new WrappedPath(fs, absolute, ImmutableList.copyOf(out));
  }

  @Override
  public Path resolve(Path other) {
    WrappedPath that = fs.check(other);
    if (that.absolute) {
      return that;
    }
    if (that.names.isEmpty()) {
      return this;
    }
    if (names.isEmpty() && !absolute) {
      return that;
    }
    return new WrappedPath(
        fs,
        absolute,
        ImmutableList.<String>builderWithExpectedSize(names.size() + that.names.size())
            .addAll(names)
            .addAll(that.names)
            .build());
  }

  @Override
  public Path resolve(String other) {
    return resolve(fs.getPath(other));
  }

  @Override
  public Path resolveSibling(Path other) {
    WrappedPath that = fs.check(other);
    Path parent = getParent();
    return parent == null ? that : parent.resolve(that);
  }

  @Override
  public Path resolveSibling(String other) {
    return resolveSibling(fs.getPath(other));
  }

  @Override
  public Path relativize(Path other) {
    WrappedPath that = fs.check(other);
    checkArgument(
        that.absolute == absolute, "'%s' and '%s' are not both absolute or relative", this, that);
    int common = 0;
    while (common < names.size()
        && common < that.names.size()
        && names.get(common).equals(that.names.get(common))) {
      common++;
    }
    ImmutableList.Builder<String> out = ImmutableList.builder();
    for (int i = common; i < names.size(); i++) {
      out.add("..");
    }
    out.addAll(that.names.subList(common, that.names.size()));
    return new WrappedPath(fs, false, out.build());
  }

  @Override
  public URI toUri() {
    return fs.toUri(changePath());
  }

  @Override
  public Path toAbsolutePath() {
    return absolute ? this : new WrappedPath(fs, true, names);
  }

  @Override
  public Path toRealPath(LinkOption... options) throws IOException {
    return fs.toRealPath(this, options);
  }

  /** Refused: java.io writes would bypass the wrapper and so replication. */
  @Override
  public File toFile() {
    throw new UnsupportedOperationException(
        "toFile() is not supported on a replicated file system: writes through java.io would"
            + " bypass replication; use java.nio.file.Files with this path");
  }

  @Override
  public WatchKey register(
      WatchService watcher, WatchEvent.Kind<?>[] events, WatchEvent.Modifier... modifiers)
      throws IOException {
    return fs.register(this, watcher, events, modifiers);
  }

  @Override
  public int compareTo(Path other) {
    WrappedPath that = (WrappedPath) other; // ClassCastException for a foreign path, as the JDK
    return toString().compareTo(that.toString());
  }

  @Override
  public boolean equals(Object obj) {
    if (obj == this) {
      return true;
    }
    if (!(obj instanceof WrappedPath)) {
      return false;
    }
    WrappedPath that = (WrappedPath) obj;
    return that.fs == fs && that.absolute == absolute && that.names.equals(names);
  }

  @Override
  public int hashCode() {
    return (System.identityHashCode(fs) * 31 + (absolute ? 1 : 0)) * 31 + names.hashCode();
  }

  @Override
  public String toString() {
    String result = string;
    if (result == null) {
      result = (absolute ? "/" : "") + String.join("/", names);
      string = result;
    }
    return result;
  }

  /** Unwraps {@code path}, refusing paths of another provider. */
  static WrappedPath cast(Path path) {
    checkNotNull(path, "path");
    if (!(path instanceof WrappedPath)) {
      throw new ProviderMismatchException(
          "not a path of a replicated file system: " + path.getClass().getName() + " " + path);
    }
    return (WrappedPath) path;
  }
}
