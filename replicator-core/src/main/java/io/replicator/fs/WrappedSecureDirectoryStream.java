package io.replicator.fs;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;
import java.util.concurrent.locks.Lock;

/**
 * A {@link SecureDirectoryStream} over the delegate's: deletes, moves, opens and attribute changes
 * relative to the open directory are made through the delegate's stream (so they stay relative to
 * the directory it holds open, as the caller asked) and replicated like the provider's own, by the
 * directory's current name. That name follows renames made through the file system, as open
 * channels do; it is read under the lock that orders changes against renames.
 *
 * <p>Paths given to these operations are paths of this file system: a relative one is taken
 * relative to the directory, an absolute one as it is (the delegate's stream does the same).
 */
final class WrappedSecureDirectoryStream extends WrappedDirectoryStream implements SecureDirectoryStream<Path> {

  private final SecureDirectoryStream<Path> delegate;
  // Written only under the exclusive lock (renames, deletes); read under either side of it.
  private volatile String changePath;
  private volatile boolean unlinked;

  WrappedSecureDirectoryStream(
      WrappedFileSystem fs,
      WrappedPath directory,
      String changePath,
      SecureDirectoryStream<Path> delegate,
      DirectoryStream.Filter<? super Path> filter) {
    super(fs, directory, delegate, filter);
    this.delegate = delegate;
    this.changePath = changePath;
  }

  String changePath() {
    return changePath;
  }

  void setChangePath(String changePath) {
    this.changePath = changePath;
  }

  /** The directory was deleted through the file system: nothing in it can change any more. */
  void unlink() {
    this.unlinked = true;
  }

  // ---------------------------------------------------------------- names

  /** The wrapper path {@code path} names now: relative ones under this directory's current name. */
  private WrappedPath resolve(Path path) {
    WrappedPath p = fs.check(path);
    if (p.isAbsolute()) {
      return p;
    }
    WrappedPath dir = (WrappedPath) fs.root().resolve(changePath);
    return (WrappedPath) dir.resolve(p).normalize();
  }

  /** What the delegate's stream is given: a relative path as relative names, an absolute one as its delegate. */
  private Path delegatePath(Path path) {
    WrappedPath p = fs.check(path);
    return p.isAbsolute()
        ? p.delegate()
        : ReplicatedFileSystemProvider.relativeDelegate(fs.root().delegate().getFileSystem(), p);
  }

  private void checkLinked(Path path) throws NoSuchFileException {
    if (unlinked && !fs.check(path).isAbsolute()) {
      throw new NoSuchFileException(path.toString(), null, "the open directory was deleted");
    }
  }

  // ---------------------------------------------------------------- SecureDirectoryStream

  @Override
  public SecureDirectoryStream<Path> newDirectoryStream(Path path, LinkOption... options) throws IOException {
    fs.checkOpen();
    Path delegatePath = delegatePath(path);
    WrappedPath shown = (WrappedPath) directory.resolve(fs.check(path));
    // under the shared lock, so the child's name is not changed by a rename meanwhile
    Lock shared = fs.sharedLock();
    shared.lock();
    try {
      WrappedPath child = resolve(path);
      fs.checkAccessible(child);
      SecureDirectoryStream<Path> opened;
      try {
        opened = delegate.newDirectoryStream(delegatePath, options);
      } catch (IOException e) {
        throw fs.translate(e, child, null);
      }
      return fs.register(new WrappedSecureDirectoryStream(fs, shown, child.changePath(), opened, entry -> true));
    } finally {
      shared.unlock();
    }
  }

  @Override
  public SeekableByteChannel newByteChannel(
      Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs) throws IOException {
    fs.checkOpen();
    checkLinked(path);
    Path delegatePath = delegatePath(path);
    ReplicatedFileSystemProvider.DelegateFile file = new ReplicatedFileSystemProvider.DelegateFile() {
      @Override
      public SeekableByteChannel open(Set<? extends OpenOption> opts, FileAttribute<?>[] a) throws IOException {
        return delegate.newByteChannel(delegatePath, opts, a);
      }

      @Override
      public boolean exists(boolean noFollow) throws IOException {
        BasicFileAttributeView view = noFollow
            ? delegate.getFileAttributeView(delegatePath, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
            : delegate.getFileAttributeView(delegatePath, BasicFileAttributeView.class);
        try {
          view.readAttributes();
          return true;
        } catch (NoSuchFileException e) {
          return false;
        }
      }

      @Override
      public Set<PosixFilePermission> permissions() throws IOException {
        PosixFileAttributeView view = delegate.getFileAttributeView(delegatePath, PosixFileAttributeView.class);
        if (view == null) {
          throw new UnsupportedOperationException("no POSIX view");
        }
        return view.readAttributes().permissions();
      }
    };
    return fs.provider().openChannel(fs, () -> resolve(path), file, OpenOptions.forChannel(options), attrs);
  }

  @Override
  public void deleteFile(Path path) throws IOException {
    delete(path, false);
  }

  @Override
  public void deleteDirectory(Path path) throws IOException {
    delete(path, true);
  }

  private void delete(Path path, boolean directoryExpected) throws IOException {
    fs.checkOpen();
    checkLinked(path);
    Path delegatePath = delegatePath(path);
    WrappedPath[] at = new WrappedPath[1];
    fs.change(WrappedFileSystem.Scope.NAMESPACE, () -> {
      at[0] = resolve(path);
      return at[0].changePath();
    }, (targetPath, change) -> {
      WrappedPath target = at[0];
      fs.checkAccessible(target);
      if (targetPath.isEmpty()) {
        throw new java.nio.file.FileSystemException(
            target.toString(), null, "cannot delete the root of a replicated file system");
      }
      FileChange.Delete delete = new FileChange.Delete(targetPath);
      change.before(delete);
      try {
        if (directoryExpected) {
          delegate.deleteDirectory(delegatePath);
        } else {
          delegate.deleteFile(delegatePath);
        }
      } catch (IOException e) {
        throw fs.translate(e, target, null);
      }
      fs.unlinked(targetPath);
      change.submit(delete);
      return null;
    }).await();
  }

  @Override
  public void move(Path srcpath, SecureDirectoryStream<Path> targetdir, Path targetpath) throws IOException {
    fs.checkOpen();
    if (!(targetdir instanceof WrappedSecureDirectoryStream)
        || ((WrappedSecureDirectoryStream) targetdir).fs != fs) {
      throw new ProviderMismatchException("target directory stream of another file system: " + targetdir);
    }
    WrappedSecureDirectoryStream target = (WrappedSecureDirectoryStream) targetdir;
    checkLinked(srcpath);
    target.checkLinked(targetpath);
    Path delegateSource = delegatePath(srcpath);
    Path delegateTarget = target.delegatePath(targetpath);
    WrappedPath[] at = new WrappedPath[2];
    fs.change(WrappedFileSystem.Scope.NAMESPACE, () -> {
      at[0] = resolve(srcpath);
      at[1] = target.resolve(targetpath);
      return at[0].changePath();
    }, (source, change) -> {
      WrappedPath from = at[0];
      WrappedPath to = at[1];
      fs.checkAccessible(from);
      fs.checkAccessible(to);
      String dest = to.changePath();
      if (source.isEmpty() || dest.isEmpty()) {
        throw new java.nio.file.FileSystemException(
            from.toString(), to.toString(), "cannot move the root of a replicated file system");
      }
      // an atomic rename that replaces the target, as renameat does
      FileChange.Move move = new FileChange.Move(source, dest, true, true);
      change.before(move);
      try {
        delegate.move(delegateSource, target.delegate, delegateTarget);
      } catch (IOException e) {
        throw fs.translate(e, from, to);
      }
      if (!source.equals(dest)) {
        fs.unlinked(dest);
        fs.renamed(source, dest);
      }
      change.submit(move);
      return null;
    }).await();
  }

  @Override
  public <V extends FileAttributeView> V getFileAttributeView(Class<V> type) {
    fs.checkOpen();
    return ReplicatingAttributeViews.wrap(fs, () -> (WrappedPath) fs.root().resolve(changePath), type,
        replicatedView(type) ? delegate.getFileAttributeView(type) : null);
  }

  @Override
  public <V extends FileAttributeView> V getFileAttributeView(Path path, Class<V> type, LinkOption... options) {
    fs.checkOpen();
    Path delegatePath = delegatePath(path);
    return ReplicatingAttributeViews.wrap(fs, () -> resolve(path), type,
        replicatedView(type) ? delegate.getFileAttributeView(delegatePath, type, options) : null);
  }

  private static boolean replicatedView(Class<?> type) {
    return type == BasicFileAttributeView.class || type == PosixFileAttributeView.class
        || type == java.nio.file.attribute.FileOwnerAttributeView.class;
  }
}
