package io.replicator.fs;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.FileOwnerAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.UserPrincipal;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Attribute views whose setters are replicated: basic (times), posix (permissions, owner, group)
 * and owner. Other views (dos, user-defined, acl) are not offered, because their changes cannot
 * be replicated; their attributes can still be read through {@code readAttributes}.
 */
final class ReplicatingAttributeViews {

  private ReplicatingAttributeViews() {}

  /** A replicating view of {@code type} for {@code path}, or null when there is none. */
  static <V extends FileAttributeView> V of(
      WrappedFileSystem fs, WrappedPath path, Class<V> type, LinkOption... options) {
    Path delegatePath = path.delegate();
    if (type != BasicFileAttributeView.class && type != PosixFileAttributeView.class
        && type != FileOwnerAttributeView.class) {
      return null;
    }
    V view = delegatePath.getFileSystem().provider().getFileAttributeView(delegatePath, type, options);
    return wrap(fs, () -> path, type, view);
  }

  /**
   * A replicating view over {@code delegate} (of {@code type}), whose changes are reported for the
   * path {@code path} names at the time (asked under the lock that orders it against renames); null
   * when {@code delegate} is null or of a view that is not replicated.
   */
  static <V extends FileAttributeView> V wrap(
      WrappedFileSystem fs, Supplier<WrappedPath> path, Class<V> type, V delegate) {
    if (delegate == null) {
      return null;
    }
    if (type == BasicFileAttributeView.class) {
      return type.cast(new Basic(fs, path, (BasicFileAttributeView) delegate));
    }
    if (type == PosixFileAttributeView.class) {
      return type.cast(new Posix(fs, path, (PosixFileAttributeView) delegate));
    }
    if (type == FileOwnerAttributeView.class) {
      return type.cast(new Owner(fs, path, (FileOwnerAttributeView) delegate));
    }
    return null;
  }

  private static void checkUsable(WrappedFileSystem fs) {
    fs.checkOpen();
  }

  static void setTimes(
      WrappedFileSystem fs,
      Supplier<WrappedPath> path,
      BasicFileAttributeView delegate,
      FileTime lastModified,
      FileTime lastAccess,
      FileTime creation)
      throws IOException {
    checkUsable(fs);
    fs.dataChange(path, p -> lastModified == null && lastAccess == null && creation == null
            ? null
            : new FileChange.SetTimes(p.changePath(), lastModified, lastAccess, creation),
        () -> delegate.setTimes(lastModified, lastAccess, creation));
  }

  static void setOwner(
      WrappedFileSystem fs, Supplier<WrappedPath> path, FileOwnerAttributeView delegate, UserPrincipal owner)
      throws IOException {
    checkUsable(fs);
    if (owner == null) {
      throw new NullPointerException("owner");
    }
    fs.dataChange(path, p -> new FileChange.SetOwner(p.changePath(), owner.getName(), null),
        () -> delegate.setOwner(owner));
  }

  /** Reads through the delegate view, named with the wrapper path; refused for the metadata directory. */
  private static <T> T read(WrappedFileSystem fs, Supplier<WrappedPath> path, LocalTree.IoAction<T> read)
      throws IOException {
    return fs.readThrough(path.get(), read);
  }

  /** Basic view: times are replicated. */
  static class Basic implements BasicFileAttributeView {
    final WrappedFileSystem fs;
    final Supplier<WrappedPath> path;
    private final BasicFileAttributeView delegate;

    Basic(WrappedFileSystem fs, Supplier<WrappedPath> path, BasicFileAttributeView delegate) {
      this.fs = fs;
      this.path = path;
      this.delegate = delegate;
    }

    @Override
    public String name() {
      return delegate.name();
    }

    @Override
    public BasicFileAttributes readAttributes() throws IOException {
      return read(fs, path, delegate::readAttributes);
    }

    @Override
    public void setTimes(FileTime lastModified, FileTime lastAccess, FileTime creation)
        throws IOException {
      ReplicatingAttributeViews.setTimes(fs, path, delegate, lastModified, lastAccess, creation);
    }
  }

  /** Owner view: owner changes are replicated by name. */
  static final class Owner implements FileOwnerAttributeView {
    private final WrappedFileSystem fs;
    private final Supplier<WrappedPath> path;
    private final FileOwnerAttributeView delegate;

    Owner(WrappedFileSystem fs, Supplier<WrappedPath> path, FileOwnerAttributeView delegate) {
      this.fs = fs;
      this.path = path;
      this.delegate = delegate;
    }

    @Override
    public String name() {
      return delegate.name();
    }

    @Override
    public UserPrincipal getOwner() throws IOException {
      return read(fs, path, delegate::getOwner);
    }

    @Override
    public void setOwner(UserPrincipal owner) throws IOException {
      ReplicatingAttributeViews.setOwner(fs, path, delegate, owner);
    }
  }

  /** POSIX view: times, permissions, owner and group are replicated. */
  static final class Posix extends Basic implements PosixFileAttributeView {
    private final PosixFileAttributeView delegate;

    Posix(WrappedFileSystem fs, Supplier<WrappedPath> path, PosixFileAttributeView delegate) {
      super(fs, path, delegate);
      this.delegate = delegate;
    }

    @Override
    public PosixFileAttributes readAttributes() throws IOException {
      return read(fs, path, delegate::readAttributes);
    }

    @Override
    public void setPermissions(Set<PosixFilePermission> permissions) throws IOException {
      checkUsable(fs);
      fs.dataChange(path, p -> new FileChange.SetPermissions(p.changePath(), permissions),
          () -> delegate.setPermissions(permissions));
    }

    @Override
    public UserPrincipal getOwner() throws IOException {
      return read(fs, path, delegate::getOwner);
    }

    @Override
    public void setOwner(UserPrincipal owner) throws IOException {
      ReplicatingAttributeViews.setOwner(fs, path, delegate, owner);
    }

    @Override
    public void setGroup(GroupPrincipal group) throws IOException {
      checkUsable(fs);
      if (group == null) {
        throw new NullPointerException("group");
      }
      fs.dataChange(path, p -> new FileChange.SetOwner(p.changePath(), null, group.getName()),
          () -> delegate.setGroup(group));
    }
  }
}
