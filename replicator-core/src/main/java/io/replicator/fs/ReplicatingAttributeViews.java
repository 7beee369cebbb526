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
    if (type == BasicFileAttributeView.class) {
      BasicFileAttributeView view =
          delegatePath.getFileSystem().provider()
              .getFileAttributeView(delegatePath, BasicFileAttributeView.class, options);
      return view == null ? null : type.cast(new Basic(fs, path, view));
    }
    if (type == PosixFileAttributeView.class) {
      PosixFileAttributeView view =
          delegatePath.getFileSystem().provider()
              .getFileAttributeView(delegatePath, PosixFileAttributeView.class, options);
      return view == null ? null : type.cast(new Posix(fs, path, view));
    }
    if (type == FileOwnerAttributeView.class) {
      FileOwnerAttributeView view =
          delegatePath.getFileSystem().provider()
              .getFileAttributeView(delegatePath, FileOwnerAttributeView.class, options);
      return view == null ? null : type.cast(new Owner(fs, path, view));
    }
    return null;
  }

  private static void checkUsable(WrappedFileSystem fs, WrappedPath path) throws IOException {
    fs.checkOpen();
    fs.checkAccessible(path);
  }

  static void setTimes(
      WrappedFileSystem fs,
      WrappedPath path,
      BasicFileAttributeView delegate,
      FileTime lastModified,
      FileTime lastAccess,
      FileTime creation)
      throws IOException {
    checkUsable(fs, path);
    FileChange change =
        lastModified == null && lastAccess == null && creation == null
            ? null
            : new FileChange.SetTimes(path.changePath(), lastModified, lastAccess, creation);
    fs.dataChange(path, change, () -> delegate.setTimes(lastModified, lastAccess, creation));
  }

  static void setOwner(
      WrappedFileSystem fs, WrappedPath path, FileOwnerAttributeView delegate, UserPrincipal owner)
      throws IOException {
    checkUsable(fs, path);
    if (owner == null) {
      throw new NullPointerException("owner");
    }
    fs.dataChange(
        path,
        new FileChange.SetOwner(path.changePath(), owner.getName(), null),
        () -> delegate.setOwner(owner));
  }

  /** Basic view: times are replicated. */
  static class Basic implements BasicFileAttributeView {
    final WrappedFileSystem fs;
    final WrappedPath path;
    private final BasicFileAttributeView delegate;

    Basic(WrappedFileSystem fs, WrappedPath path, BasicFileAttributeView delegate) {
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
      return fs.readThrough(path, delegate::readAttributes);
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
    private final WrappedPath path;
    private final FileOwnerAttributeView delegate;

    Owner(WrappedFileSystem fs, WrappedPath path, FileOwnerAttributeView delegate) {
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
      return fs.readThrough(path, delegate::getOwner);
    }

    @Override
    public void setOwner(UserPrincipal owner) throws IOException {
      ReplicatingAttributeViews.setOwner(fs, path, delegate, owner);
    }
  }

  /** POSIX view: times, permissions, owner and group are replicated. */
  static final class Posix extends Basic implements PosixFileAttributeView {
    private final PosixFileAttributeView delegate;

    Posix(WrappedFileSystem fs, WrappedPath path, PosixFileAttributeView delegate) {
      super(fs, path, delegate);
      this.delegate = delegate;
    }

    @Override
    public PosixFileAttributes readAttributes() throws IOException {
      return fs.readThrough(path, delegate::readAttributes);
    }

    @Override
    public void setPermissions(Set<PosixFilePermission> permissions) throws IOException {
      checkUsable(fs, path);
      fs.dataChange(
          path,
          new FileChange.SetPermissions(path.changePath(), permissions),
          () -> delegate.setPermissions(permissions));
    }

    @Override
    public UserPrincipal getOwner() throws IOException {
      return fs.readThrough(path, delegate::getOwner);
    }

    @Override
    public void setOwner(UserPrincipal owner) throws IOException {
      ReplicatingAttributeViews.setOwner(fs, path, delegate, owner);
    }

    @Override
    public void setGroup(GroupPrincipal group) throws IOException {
      checkUsable(fs, path);
      if (group == null) {
        throw new NullPointerException("group");
      }
      fs.dataChange(
          path,
          new FileChange.SetOwner(path.changePath(), null, group.getName()),
          () -> delegate.setGroup(group));
    }
  }
}
