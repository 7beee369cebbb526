package io.replicator.fs;

import static com.google.common.base.Preconditions.checkNotNull;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableSet;
import com.google.common.util.concurrent.Striped;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationStatus;
import io.replicator.change.FileChange;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.ClosedFileSystemException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileStore;
import java.nio.file.FileSystem;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.NotLinkException;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.ProviderMismatchException;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * A replicated file system over a directory of any delegate file system: "/" is the delegate
 * root, and every change made through it is made on the delegate and handed to a {@link
 * ChangeSink}. Internal: obtain one through {@link ReplicatedFileSystemProvider#open}.
 *
 * <p>Ordering: a data change (write, truncate, create-on-open, attributes, force) holds the
 * shared side of one file-system-wide lock and the lock of its path; a namespace change (mkdir,
 * delete, move, copy, links) holds the exclusive side. Both are held across {@code
 * beforeLocalChange}, the local change and {@code submit}, and released before {@code await}, so
 * the sink sees changes to one file in the order they took effect while many are in flight. That
 * protocol is written once, in {@link #change} (see {@link LockedChange}).
 *
 * <p>The metadata directory {@value #METADATA_DIRECTORY} under the root is hidden: directory
 * streams skip it and every access to it is refused with {@link AccessDeniedException}. Open
 * channels follow renames of their file (or a parent); a file deleted while open is "unlinked":
 * later changes through its channels are made locally and not replicated, since no name reaches
 * them any more. Hard links and symbolic links are replicated as links, but channels are tracked
 * by the name they were opened with only.
 */
public final class WrappedFileSystem extends ReplicatedFileSystem implements LocalTree {

  /** Name of the metadata directory directly under the root, never visible through the wrapper. */
  public static final String METADATA_DIRECTORY = ".replicator";

  private static final ImmutableSet<String> REPLICATED_VIEWS =
      ImmutableSet.of("basic", "posix", "owner");

  private final ReplicatedFileSystemProvider provider;
  private final URI uri;
  private final Path delegateRoot;
  private final Path realRoot;
  private final String delegateSeparator;
  private final ChangeSink sink;
  private final WriteRecorder writeRecorder = new WriteRecorder();
  private final WrappedPath root;
  private final WrappedPath emptyPath;

  private final ReadWriteLock namespaceLock = new ReentrantReadWriteLock(false);
  private final Striped<Lock> pathLocks = Striped.lock(256);

  private final AtomicBoolean open = new AtomicBoolean(true);
  private final Set<Closeable> resources = ConcurrentHashMap.newKeySet();

  WrappedFileSystem(
      ReplicatedFileSystemProvider provider, URI uri, Path delegateRoot, ChangeSink sink)
      throws IOException {
    this.provider = checkNotNull(provider, "provider");
    this.uri = checkNotNull(uri, "uri");
    this.sink = checkNotNull(sink, "sink");
    this.delegateRoot = checkNotNull(delegateRoot, "delegateRoot").toAbsolutePath().normalize();
    if (!Files.isDirectory(this.delegateRoot)) {
      throw new NotDirectoryException(this.delegateRoot.toString());
    }
    this.realRoot = this.delegateRoot.toRealPath();
    this.delegateSeparator = this.delegateRoot.getFileSystem().getSeparator();
    this.root = new WrappedPath(this, true, ImmutableList.of());
    this.emptyPath = new WrappedPath(this, false, ImmutableList.of());
  }

  // ---------------------------------------------------------------- FileSystem

  @Override
  public ReplicatedFileSystemProvider provider() {
    return provider;
  }

  @Override
  public ReplicationStatus status() {
    return sink.status();
  }

  @Override
  public java.util.Map<String, ReplicationStatus> followers() {
    return sink.followers();
  }

  @Override
  public io.replicator.WriteStatistics writeStatistics() {
    return writeRecorder.snapshot();
  }

  @Override
  public Path delegateRoot() {
    return delegateRoot;
  }

  @Override
  public io.replicator.VerifyReport verify() throws IOException {
    return sink.verify();
  }

  @Override
  public void resync() throws IOException {
    sink.resync();
  }

  /** The URI this file system is registered under. */
  URI uri() {
    return uri;
  }

  ChangeSink sink() {
    return sink;
  }

  WriteRecorder writeRecorder() {
    return writeRecorder;
  }

  /**
   * Closes every channel, stream, directory stream and watch service handed out, then the sink.
   * Idempotent; the delegate file system stays open.
   */
  @Override
  public void close() throws IOException {
    if (!open.compareAndSet(true, false)) {
      return;
    }
    provider.unregister(this);
    IOException failure = null;
    // A resource registered concurrently sees open == false and closes itself (see register).
    for (Closeable resource : new ArrayList<>(resources)) {
      try {
        resource.close();
      } catch (IOException | RuntimeException e) {
        failure = addFailure(failure, e);
      }
    }
    resources.clear();
    try {
      sink.close();
    } catch (IOException | RuntimeException e) {
      failure = addFailure(failure, e);
    }
    if (failure != null) {
      throw failure;
    }
  }

  private static IOException addFailure(IOException failure, Exception e) {
    IOException io = e instanceof IOException ? (IOException) e : new IOException(e);
    if (failure == null) {
      return io;
    }
    failure.addSuppressed(io);
    return failure;
  }

  @Override
  public boolean isOpen() {
    return open.get();
  }

  @Override
  public boolean isReadOnly() {
    return delegateRoot.getFileSystem().isReadOnly();
  }

  @Override
  public String getSeparator() {
    return "/";
  }

  @Override
  public Iterable<Path> getRootDirectories() {
    return ImmutableList.of(root);
  }

  @Override
  public Iterable<FileStore> getFileStores() {
    checkOpen();
    try {
      return ImmutableList.of(Files.getFileStore(delegateRoot));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public Set<String> supportedFileAttributeViews() {
    Set<String> delegateViews = delegateRoot.getFileSystem().supportedFileAttributeViews();
    ImmutableSet.Builder<String> views = ImmutableSet.builder();
    for (String view : REPLICATED_VIEWS) {
      if (delegateViews.contains(view)) {
        views.add(view);
      }
    }
    return views.build();
  }

  @Override
  public Path getPath(String first, String... more) {
    return WrappedPath.parse(this, first, more);
  }

  @Override
  public PathMatcher getPathMatcher(String syntaxAndPattern) {
    FileSystem delegateFs = delegateRoot.getFileSystem();
    PathMatcher matcher = delegateFs.getPathMatcher(syntaxAndPattern);
    // Match the wrapper path's own string form, so "/a/*.txt" means the wrapper's "/a".
    return path -> path instanceof WrappedPath && matcher.matches(delegateFs.getPath(path.toString()));
  }

  @Override
  public UserPrincipalLookupService getUserPrincipalLookupService() {
    return delegateRoot.getFileSystem().getUserPrincipalLookupService();
  }

  @Override
  public WatchService newWatchService() throws IOException {
    checkOpen();
    WatchService delegate = delegateRoot.getFileSystem().newWatchService();
    WrappedWatchService service = new WrappedWatchService(this, delegate);
    register(service);
    return service;
  }

  WatchKey register(
      WrappedPath path,
      WatchService watcher,
      WatchEvent.Kind<?>[] events,
      WatchEvent.Modifier... modifiers)
      throws IOException {
    checkNotNull(watcher, "watcher");
    if (!(watcher instanceof WrappedWatchService)
        || ((WrappedWatchService) watcher).fileSystem() != this) {
      throw new ProviderMismatchException("watch service of another file system: " + watcher);
    }
    checkAccessible(path);
    WrappedWatchService service = (WrappedWatchService) watcher;
    try {
      return service.wrap(
          path.delegate().register(service.delegate(), events, modifiers),
          (WrappedPath) path.toAbsolutePath().normalize());
    } catch (IOException e) {
      throw translate(e, path, null);
    }
  }

  // ---------------------------------------------------------------- paths

  WrappedPath root() {
    return root;
  }

  WrappedPath emptyPath() {
    return emptyPath;
  }

  /** Unwraps a path of this file system, refusing another provider's or file system's path. */
  WrappedPath check(Path path) {
    WrappedPath wrapped = WrappedPath.cast(path);
    if (wrapped.getFileSystem() != this) {
      throw new ProviderMismatchException(
          "path " + path + " belongs to another replicated file system");
    }
    return wrapped;
  }

  void checkOpen() {
    if (!open.get()) {
      throw new ClosedFileSystemException();
    }
  }

  /** Refuses access to the metadata directory. */
  void checkAccessible(WrappedPath path) throws AccessDeniedException {
    if (path.isMetadata()) {
      throw new AccessDeniedException(
          path.toString(), null, "reserved for replication metadata, not accessible");
    }
  }

  /** The delegate path of a change path. */
  Path toDelegate(String changePath) {
    if (changePath.isEmpty()) {
      return delegateRoot;
    }
    if (delegateSeparator.equals("/")) {
      return delegateRoot.resolve(changePath);
    }
    Path result = delegateRoot;
    for (String name : changePath.split("/")) {
      if (name.contains(delegateSeparator)) {
        throw new java.nio.file.InvalidPathException(name, "contains the delegate's separator");
      }
      result = result.resolve(name);
    }
    return result;
  }

  /** The wrapper path of an absolute delegate path under the root, or null when outside it. */
  WrappedPath fromDelegate(Path delegatePath) {
    Path relative;
    if (delegatePath.startsWith(delegateRoot)) {
      relative = delegateRoot.relativize(delegatePath);
    } else if (delegatePath.startsWith(realRoot)) {
      relative = realRoot.relativize(delegatePath);
    } else {
      return null;
    }
    ImmutableList.Builder<String> names = ImmutableList.builder();
    for (Path name : relative) {
      if (!name.toString().isEmpty()) {
        names.add(name.toString());
      }
    }
    return new WrappedPath(this, true, names.build());
  }

  /** A relative wrapper path with the names of a relative delegate path. */
  WrappedPath fromDelegateRelative(Path relative) {
    ImmutableList.Builder<String> names = ImmutableList.builder();
    for (Path name : relative) {
      if (!name.toString().isEmpty()) {
        names.add(name.toString());
      }
    }
    return new WrappedPath(this, false, names.build());
  }

  URI toUri(String changePath) {
    String base = uri.getPath() == null ? "" : uri.getPath();
    if (base.endsWith("/")) {
      base = base.substring(0, base.length() - 1);
    }
    return ReplicatedFileSystemProvider.uri(uri.getAuthority(), base + "/" + changePath);
  }

  Path toRealPath(WrappedPath path, LinkOption... options) throws IOException {
    checkOpen();
    checkAccessible(path);
    Path real;
    try {
      real = path.delegate().toRealPath(options);
    } catch (IOException e) {
      throw translate(e, path, null);
    }
    WrappedPath result = fromDelegate(real);
    if (result == null) {
      throw new FileSystemException(
          path.toString(), null, "resolves outside the replicated root: refused");
    }
    checkAccessible(result);
    return result;
  }

  // ---------------------------------------------------------------- locks and changes

  /** Which locks order a change. */
  enum Scope {
    /** A data change of one path: the shared side of the namespace lock, then the path's lock. */
    FILE,
    /** The shared side only: an open that only reads still orders its registration against renames. */
    SHARED,
    /** A namespace change: the exclusive side, ordered against every other change. */
    NAMESPACE
  }

  /** Work done under a change's locks; it is given the change path as read under them. */
  @FunctionalInterface
  private interface Locked<T> {
    T run(String changePath) throws IOException;
  }

  /**
   * Runs {@code work} under the locks of {@code scope}. The change path is read once the shared
   * side is held: a rename (under the exclusive side) cannot move it meanwhile.
   */
  private <T> T locked(Scope scope, Supplier<String> changePath, Locked<T> work) throws IOException {
    Lock namespace = scope == Scope.NAMESPACE ? exclusiveLock() : sharedLock();
    namespace.lock();
    try {
      String path = changePath.get();
      if (scope != Scope.FILE) {
        return work.run(path);
      }
      Lock pathLock = pathLock(path);
      pathLock.lock();
      try {
        return work.run(path);
      } finally {
        pathLock.unlock();
      }
    } finally {
      namespace.unlock();
    }
  }

  /**
   * The one way a change is made (see {@link LockedChange}): takes the locks of {@code scope},
   * runs {@code step}, which tells the sink before the local change, makes it and submits it,
   * and releases the locks. The caller waits for the replication with {@link
   * LockedChange.Made#await} once it has done what may overlap with it (a local fsync).
   */
  <T> LockedChange.Made<T> change(Scope scope, Supplier<String> changePath, LockedChange.Step<T> step)
      throws IOException {
    return locked(scope, changePath, path -> {
      LockedChange change = new LockedChange(sink);
      return change.made(step.run(path, change));
    });
  }

  @Override
  public <T> T underFileLock(String changePath, IoAction<T> action) throws IOException {
    return locked(Scope.FILE, () -> changePath, path -> action.run());
  }

  @Override
  public <T> T underNamespaceLock(IoAction<T> action) throws IOException {
    return locked(Scope.NAMESPACE, () -> "", path -> action.run());
  }

  /** Shared side of the namespace lock: held by every data change and every open. */
  Lock sharedLock() {
    return namespaceLock.readLock();
  }

  /** Exclusive side of the namespace lock: held by every namespace change. */
  Lock exclusiveLock() {
    return namespaceLock.writeLock();
  }

  /** The lock ordering data changes of one change path (two channels of one file share it). */
  Lock pathLock(String changePath) {
    return pathLocks.get(changePath);
  }

  /** A local change made between {@code beforeLocalChange} and {@code submit}. */
  @FunctionalInterface
  interface LocalChange {
    void run() throws IOException;
  }

  /**
   * Makes a data change of {@code path} and waits for its replication. {@code change} may be null
   * when nothing is reported (a local-only change).
   */
  void dataChange(WrappedPath path, FileChange change, LocalChange local) throws IOException {
    change(Scope.FILE, path::changePath, (changePath, locked) -> {
      if (change != null) {
        locked.before(change);
      }
      try {
        local.run();
      } catch (IOException e) {
        throw translate(e, path, null);
      }
      if (change != null) {
        locked.submit(change);
      }
      return null;
    }).await();
  }

  /**
   * Makes a namespace change and waits for its replication; {@code afterLocal} runs under the
   * lock once the local change succeeded (to update open channels).
   */
  void namespaceChange(
      FileChange change, WrappedPath path, WrappedPath other, LocalChange local, Runnable afterLocal)
      throws IOException {
    change(Scope.NAMESPACE, path::changePath, (changePath, locked) -> {
      locked.before(change);
      try {
        local.run();
      } catch (IOException e) {
        throw translate(e, path, other);
      }
      if (afterLocal != null) {
        afterLocal.run();
      }
      locked.submit(change);
      return null;
    }).await();
  }

  /**
   * As {@link #dataChange(WrappedPath, FileChange, LocalChange)}, with the path worked out under
   * the locks, where no rename can move it (the names of a directory stream's entries follow
   * renames); {@code changeOf} may give null when nothing is reported.
   */
  void dataChange(
      Supplier<WrappedPath> pathUnderLock,
      java.util.function.Function<WrappedPath, FileChange> changeOf,
      LocalChange local)
      throws IOException {
    WrappedPath[] at = new WrappedPath[1];
    change(Scope.FILE, () -> {
      at[0] = pathUnderLock.get();
      return at[0].changePath();
    }, (changePath, locked) -> {
      WrappedPath path = at[0];
      checkAccessible(path);
      FileChange change = changeOf.apply(path);
      if (change != null) {
        locked.before(change);
      }
      try {
        local.run();
      } catch (IOException e) {
        throw translate(e, path, null);
      }
      if (change != null) {
        locked.submit(change);
      }
      return null;
    }).await();
  }

  /** Called under the exclusive lock after a rename: open channels follow their file. */
  void renamed(String source, String target) {
    for (Closeable resource : resources) {
      if (resource instanceof ReplicatingFileChannel) {
        ReplicatingFileChannel channel = (ReplicatingFileChannel) resource;
        String path = renamedPath(channel.changePath(), source, target);
        if (path != null) {
          channel.setChangePath(path);
        }
      } else if (resource instanceof WrappedSecureDirectoryStream) {
        WrappedSecureDirectoryStream stream = (WrappedSecureDirectoryStream) resource;
        String path = renamedPath(stream.changePath(), source, target);
        if (path != null) {
          stream.setChangePath(path);
        }
      }
    }
  }

  /** {@code path} after {@code source} was renamed to {@code target}, or null when not under it. */
  private static String renamedPath(String path, String source, String target) {
    if (path.equals(source)) {
      return target;
    }
    if (path.startsWith(source + "/")) {
      return target + path.substring(source.length());
    }
    return null;
  }

  /** Called under the exclusive lock after a name was removed: its open channels are unlinked. */
  void unlinked(String path) {
    for (Closeable resource : resources) {
      if (resource instanceof ReplicatingFileChannel) {
        ReplicatingFileChannel channel = (ReplicatingFileChannel) resource;
        if (channel.changePath().equals(path)) {
          channel.unlink();
        }
      } else if (resource instanceof WrappedSecureDirectoryStream) {
        WrappedSecureDirectoryStream stream = (WrappedSecureDirectoryStream) resource;
        if (stream.changePath().equals(path)) {
          stream.unlink();
        }
      }
    }
  }

  // ---------------------------------------------------------------- resources

  /**
   * Tracks a resource so that {@link #close} closes it. When the file system closed meanwhile,
   * the resource is closed here and {@link ClosedFileSystemException} is thrown.
   */
  <C extends Closeable> C register(C resource) throws IOException {
    resources.add(resource);
    if (!open.get()) {
      resources.remove(resource);
      try {
        resource.close();
      } catch (IOException e) {
        // the file system is closed; the resource is gone either way
      }
      throw new ClosedFileSystemException();
    }
    return resource;
  }

  void unregister(Closeable resource) {
    resources.remove(resource);
  }

  // ---------------------------------------------------------------- exceptions

  /**
   * Runs a call that only reads through to the delegate for {@code path}: refused when this file
   * system is closed or the path is its metadata, and failures named with the wrapper path.
   */
  <T> T readThrough(WrappedPath path, LocalTree.IoAction<T> call) throws IOException {
    checkOpen();
    checkAccessible(path);
    try {
      return call.run();
    } catch (IOException e) {
      throw translate(e, path, null);
    }
  }

  /**
   * Rewrites delegate paths in a {@link FileSystemException} into the wrapper paths the
   * application passed, keeping the exception class; other exceptions pass unchanged.
   */
  IOException translate(IOException e, WrappedPath path, WrappedPath other) {
    if (!(e instanceof FileSystemException)) {
      return e;
    }
    FileSystemException fse = (FileSystemException) e;
    String file = fse.getFile() == null ? null : wrapperString(fse.getFile(), path, other);
    String otherFile =
        fse.getOtherFile() == null ? null : wrapperString(fse.getOtherFile(), path, other);
    if (equalsOrNull(file, fse.getFile()) && equalsOrNull(otherFile, fse.getOtherFile())) {
      return e;
    }
    String reason = fse.getReason();
    FileSystemException translated;
    Class<?> type = fse.getClass();
    if (type == NoSuchFileException.class) {
      translated = new NoSuchFileException(file, otherFile, reason);
    } else if (type == FileAlreadyExistsException.class) {
      translated = new FileAlreadyExistsException(file, otherFile, reason);
    } else if (type == DirectoryNotEmptyException.class) {
      translated = new DirectoryNotEmptyException(file);
    } else if (type == AccessDeniedException.class) {
      translated = new AccessDeniedException(file, otherFile, reason);
    } else if (type == NotDirectoryException.class) {
      translated = new NotDirectoryException(file);
    } else if (type == NotLinkException.class) {
      translated = new NotLinkException(file, otherFile, reason);
    } else if (type == AtomicMoveNotSupportedException.class) {
      translated = new AtomicMoveNotSupportedException(file, otherFile, reason);
    } else if (type == FileSystemLoopException.class) {
      translated = new FileSystemLoopException(file);
    } else if (type == FileSystemException.class) {
      translated = new FileSystemException(file, otherFile, reason);
    } else {
      return e; // an unknown subclass: keep its class rather than its message
    }
    translated.setStackTrace(fse.getStackTrace());
    for (Throwable suppressed : fse.getSuppressed()) {
      translated.addSuppressed(suppressed);
    }
    if (fse.getCause() != null) {
      translated.initCause(fse.getCause());
    }
    return translated;
  }

  private static boolean equalsOrNull(String a, String b) {
    return a == null ? b == null : a.equals(b);
  }

  private String wrapperString(String delegateString, WrappedPath path, WrappedPath other) {
    if (path != null && delegateString.equals(path.delegate().toString())) {
      return path.toString();
    }
    if (other != null && delegateString.equals(other.delegate().toString())) {
      return other.toString();
    }
    for (Path base : List.of(delegateRoot, realRoot)) {
      String prefix = base.toString();
      if (delegateString.equals(prefix)) {
        return "/";
      }
      String withSeparator = prefix.endsWith(delegateSeparator) ? prefix : prefix + delegateSeparator;
      if (delegateString.startsWith(withSeparator)) {
        String rest = delegateString.substring(withSeparator.length());
        return "/" + (delegateSeparator.equals("/") ? rest : rest.replace(delegateSeparator, "/"));
      }
    }
    return delegateString;
  }

  @Override
  public String toString() {
    return "WrappedFileSystem[" + uri + " -> " + delegateRoot + "]";
  }
}
