package io.replicator.fs;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;
import static java.nio.file.StandardCopyOption.ATOMIC_MOVE;
import static java.nio.file.StandardCopyOption.COPY_ATTRIBUTES;
import static java.nio.file.StandardCopyOption.REPLACE_EXISTING;

import io.replicator.ReplicatedFileSystem;
import io.replicator.Replicator;
import io.replicator.change.FileChange;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessMode;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.CopyOption;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileStore;
import java.nio.file.FileSystem;
import java.nio.file.FileSystemAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystemNotFoundException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.FileOwnerAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.spi.FileSystemProvider;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;

/**
 * The {@code replica} URI scheme: a provider whose file systems wrap a directory of another file
 * system and replicate every change. Each operation checks its paths, finds their file system,
 * makes the change on the delegate and reports it; the file system holds the locks and state.
 *
 * <p>ServiceLoader may create several instances, so open file systems live in one static
 * registry keyed by URI.
 */
public final class ReplicatedFileSystemProvider extends FileSystemProvider {

  /** The URI scheme. */
  public static final String SCHEME = "replica";

  private static final Map<URI, WrappedFileSystem> FILE_SYSTEMS = new ConcurrentHashMap<>();

  private static volatile ReplicatedFileSystemProvider instance;

  /** For {@link java.util.ServiceLoader}; use {@link #open} to create a file system. */
  public ReplicatedFileSystemProvider() {}

  /**
   * Internal, for {@code io.replicator.Replicator}: opens and registers a replicated file system
   * whose root is {@code delegateRoot}, reporting every change to {@code sink}. Closing the file
   * system closes the sink.
   *
   * @param delegateRoot an existing directory on any file system
   * @param sink where changes go; owned by the file system from now on
   * @param uri the file system's URI (scheme {@code replica}), or null for {@link
   *     #uriFor(Path)}
   * @throws FileSystemAlreadyExistsException when a file system with that URI is open
   */
  public static ReplicatedFileSystem open(Path delegateRoot, ChangeSink sink, URI uri)
      throws IOException {
    checkNotNull(delegateRoot, "delegateRoot");
    checkNotNull(sink, "sink");
    URI key = normalize(uri == null ? uriFor(delegateRoot) : uri);
    WrappedFileSystem fs = new WrappedFileSystem(instance(), key, delegateRoot, sink);
    if (FILE_SYSTEMS.putIfAbsent(key, fs) != null) {
      throw new FileSystemAlreadyExistsException(key.toString());
    }
    return fs;
  }

  /** Internal: {@link #open(Path, ChangeSink, URI)} with the URI {@link #uriFor(Path)}. */
  public static ReplicatedFileSystem open(Path delegateRoot, ChangeSink sink) throws IOException {
    return open(delegateRoot, sink, null);
  }

  /**
   * The URI of a file system over {@code delegateRoot}: {@code replica:///srv/data} for a
   * directory of the default file system; for another provider, its scheme and authority become
   * the authority ({@code replica://jimfs.name/work}).
   */
  public static URI uriFor(Path delegateRoot) {
    Path absolute = delegateRoot.toAbsolutePath().normalize();
    URI delegateUri = absolute.toUri();
    String authority = null;
    if (absolute.getFileSystem() != java.nio.file.FileSystems.getDefault()) {
      authority =
          delegateUri.getScheme()
              + (delegateUri.getAuthority() == null ? "" : "." + delegateUri.getAuthority());
    }
    String path = delegateUri.getPath();
    return normalize(uri(authority, path == null ? "/" : path));
  }

  /** A {@code replica} URI; without an authority it reads {@code replica:///path}. */
  static URI uri(String authority, String path) {
    try {
      // An empty authority keeps the "//", as in file:///; parsing gives a null authority back.
      return new URI(SCHEME, authority == null ? "" : authority, path, null, null);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("no URI for " + authority + " " + path, e);
    }
  }

  private static URI normalize(URI uri) {
    checkArgument(
        SCHEME.equalsIgnoreCase(uri.getScheme()), "URI scheme is not '%s': %s", SCHEME, uri);
    String path = uri.getPath() == null || uri.getPath().isEmpty() ? "/" : uri.getPath();
    while (path.length() > 1 && path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    return uri(uri.getAuthority(), path);
  }

  /** The installed provider when ServiceLoader has one, so file systems answer with it. */
  static ReplicatedFileSystemProvider instance() {
    ReplicatedFileSystemProvider result = instance;
    if (result == null) {
      synchronized (ReplicatedFileSystemProvider.class) {
        result = instance;
        if (result == null) {
          for (FileSystemProvider installed : FileSystemProvider.installedProviders()) {
            if (installed instanceof ReplicatedFileSystemProvider) {
              result = (ReplicatedFileSystemProvider) installed;
            }
          }
          if (result == null) {
            result = new ReplicatedFileSystemProvider();
          }
          instance = result;
        }
      }
    }
    return result;
  }

  void unregister(WrappedFileSystem fs) {
    FILE_SYSTEMS.remove(fs.uri(), fs);
  }

  // ---------------------------------------------------------------- file systems by URI

  @Override
  public String getScheme() {
    return SCHEME;
  }

  /** Opens through {@link Replicator#openFromUri}, which reads the environment (peer, mode, ...). */
  @Override
  public FileSystem newFileSystem(URI uri, Map<String, ?> env) throws IOException {
    URI key = normalize(uri);
    if (FILE_SYSTEMS.containsKey(key)) {
      throw new FileSystemAlreadyExistsException(key.toString());
    }
    return Replicator.openFromUri(uri, env);
  }

  @Override
  public FileSystem getFileSystem(URI uri) {
    WrappedFileSystem fs = FILE_SYSTEMS.get(normalize(uri));
    if (fs == null) {
      throw new FileSystemNotFoundException(uri.toString());
    }
    return fs;
  }

  /** Finds the open file system whose URI is the longest prefix of {@code uri}. */
  @Override
  public Path getPath(URI uri) {
    checkArgument(SCHEME.equalsIgnoreCase(uri.getScheme()), "not a %s URI: %s", SCHEME, uri);
    String path = uri.getPath() == null || uri.getPath().isEmpty() ? "/" : uri.getPath();
    WrappedFileSystem best = null;
    String bestBase = null;
    for (WrappedFileSystem fs : FILE_SYSTEMS.values()) {
      URI fsUri = fs.uri();
      if (!java.util.Objects.equals(fsUri.getAuthority(), uri.getAuthority())) {
        continue;
      }
      String base = fsUri.getPath();
      boolean matches =
          base.equals("/")
              || path.equals(base)
              || (path.startsWith(base) && path.charAt(base.length()) == '/');
      if (matches && (bestBase == null || base.length() > bestBase.length())) {
        best = fs;
        bestBase = base;
      }
    }
    if (best == null) {
      throw new FileSystemNotFoundException("no open replicated file system for " + uri);
    }
    String rest = bestBase.equals("/") ? path : path.substring(bestBase.length());
    return best.getPath(rest.isEmpty() ? "/" : rest);
  }

  // ---------------------------------------------------------------- opening files

  @Override
  public SeekableByteChannel newByteChannel(
      Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs) throws IOException {
    return openChannel(WrappedPath.cast(path), OpenOptions.forChannel(options), attrs, false);
  }

  @Override
  public FileChannel newFileChannel(
      Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs) throws IOException {
    return openChannel(WrappedPath.cast(path), OpenOptions.forChannel(options), attrs, true);
  }

  @Override
  public OutputStream newOutputStream(Path path, OpenOption... options) throws IOException {
    // Every byte goes through the channel's write, so nothing escapes replication.
    return Channels.newOutputStream(openChannel(WrappedPath.cast(path), OpenOptions.forOutputStream(options),
        new FileAttribute<?>[0], false));
  }

  @Override
  public InputStream newInputStream(Path path, OpenOption... options) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    OpenOptions changing = OpenOptions.forInputStream(options);
    if (changing != null) {
      // DELETE_ON_CLOSE and friends change the tree: go through a replicating channel.
      return Channels.newInputStream(openChannel(wrapped, changing, new FileAttribute<?>[0], false));
    }
    WrappedFileSystem fs = usable(wrapped);
    InputStream delegate;
    try {
      delegate = delegateProvider(wrapped).newInputStream(wrapped.delegate(), options);
    } catch (IOException e) {
      throw fs.translate(e, wrapped, null);
    }
    return fs.register(new TrackedInputStream(fs, delegate));
  }

  /** Reads are local; tracked only so that closing the file system closes the stream. */
  private static final class TrackedInputStream extends FilterInputStream {
    private final WrappedFileSystem fs;

    TrackedInputStream(WrappedFileSystem fs, InputStream delegate) {
      super(delegate);
      this.fs = fs;
    }

    @Override
    public void close() throws IOException {
      try {
        super.close();
      } finally {
        fs.unregister(this);
      }
    }
  }

  @Override
  public AsynchronousFileChannel newAsynchronousFileChannel(
      Path path,
      Set<? extends OpenOption> options,
      ExecutorService executor,
      FileAttribute<?>... attrs)
      throws IOException {
    ReplicatingFileChannel channel = openChannel(WrappedPath.cast(path), OpenOptions.forChannel(options), attrs,
        true);
    return new ReplicatingAsynchronousFileChannel(channel, executor);
  }

  /**
   * Opens a channel; an open that creates or truncates is a change and is reported as {@code
   * CreateFile}, with the permissions it was created with when attributes asked for some. The
   * open does not wait for that change's replication: the channel's first write, truncate or
   * force waits for it, or its close (see {@link ReplicatingFileChannel#openedBy}).
   */
  private ReplicatingFileChannel openChannel(
      WrappedPath path, OpenOptions options, FileAttribute<?>[] attrs, boolean fileChannel)
      throws IOException {
    WrappedFileSystem fs = usable(path);
    return openChannel(fs, () -> path, byPath(path, fileChannel), options, attrs);
  }

  /**
   * How the file a channel opens is reached on the delegate: by its path, or relative to a
   * directory held open by a {@link WrappedSecureDirectoryStream}.
   */
  interface DelegateFile {
    SeekableByteChannel open(Set<? extends OpenOption> options, FileAttribute<?>[] attrs) throws IOException;

    boolean exists(boolean noFollow) throws IOException;

    Set<PosixFilePermission> permissions() throws IOException;
  }

  private static DelegateFile byPath(WrappedPath path, boolean fileChannel) {
    Path delegatePath = path.delegate();
    FileSystemProvider delegateProvider = delegatePath.getFileSystem().provider();
    return new DelegateFile() {
      @Override
      public SeekableByteChannel open(Set<? extends OpenOption> options, FileAttribute<?>[] attrs)
          throws IOException {
        return fileChannel
            ? delegateProvider.newFileChannel(delegatePath, options, attrs)
            : delegateProvider.newByteChannel(delegatePath, options, attrs);
      }

      @Override
      public boolean exists(boolean noFollow) {
        return noFollow ? Files.exists(delegatePath, LinkOption.NOFOLLOW_LINKS) : Files.exists(delegatePath);
      }

      @Override
      public Set<PosixFilePermission> permissions() throws IOException {
        return Files.getPosixFilePermissions(delegatePath);
      }
    };
  }

  /**
   * Opens a channel on {@code delegateFile}; {@code pathUnderLock} names it, and is asked under the
   * locks, which order it against renames (a directory stream's names follow them).
   */
  ReplicatingFileChannel openChannel(
      WrappedFileSystem fs,
      java.util.function.Supplier<WrappedPath> pathUnderLock,
      DelegateFile delegateFile,
      OpenOptions options,
      FileAttribute<?>[] attrs)
      throws IOException {
    boolean permissionsAsked = initialPermissions(attrs);
    // A writer takes the file's lock; a reader the shared lock only, which still orders the
    // registration of the channel against renames.
    WrappedFileSystem.Scope scope = options.write() ? WrappedFileSystem.Scope.FILE : WrappedFileSystem.Scope.SHARED;
    WrappedPath[] at = new WrappedPath[1];
    LockedChange.Made<ReplicatingFileChannel> made = fs.change(scope, () -> {
      at[0] = pathUnderLock.get();
      return at[0].changePath();
    }, (changePath, change) -> {
      WrappedPath path = at[0];
      fs.checkAccessible(path);
      boolean creates = options.createNew();
      if (options.create()) {
        creates = !delegateFile.exists(options.noFollow());
      }
      FileChange.CreateFile createChange =
          creates || options.truncate() ? new FileChange.CreateFile(changePath, true) : null;
      FileChange.SetPermissions permissionsChange =
          creates && permissionsAsked
              ? new FileChange.SetPermissions(changePath, requestedPermissions(attrs))
              : null;
      if (createChange != null) {
        change.before(createChange);
      }
      if (permissionsChange != null) {
        change.before(permissionsChange);
      }
      SeekableByteChannel delegate;
      try {
        delegate = delegateFile.open(options.delegate(), attrs);
      } catch (IOException e) {
        throw fs.translate(e, path, null);
      }
      ReplicatingFileChannel channel = new ReplicatingFileChannel(fs, changePath, delegate, options);
      try {
        if (createChange != null) {
          change.submit(createChange);
        }
        if (permissionsChange != null) {
          // Report what the file got (the umask applies), not what was asked.
          Set<PosixFilePermission> actual;
          try {
            actual = delegateFile.permissions();
          } catch (IOException | UnsupportedOperationException e) {
            actual = permissionsChange.permissions();
          }
          change.submit(new FileChange.SetPermissions(changePath, actual));
        }
        fs.register(channel);
      } catch (IOException | RuntimeException | Error e) {
        // Whatever failed after the open must not leak the delegate's channel.
        try {
          delegate.close();
        } catch (IOException suppressed) {
          e.addSuppressed(suppressed);
        }
        throw e;
      }
      return channel;
    });
    ReplicatingFileChannel channel = made.value();
    channel.openedBy(made.completion());
    return channel;
  }

  /** True when {@code attrs} ask for POSIX permissions; other initial attributes are refused. */
  static boolean initialPermissions(FileAttribute<?>[] attrs) {
    boolean permissions = false;
    for (FileAttribute<?> attr : attrs) {
      if (attr.name().equals("posix:permissions") || attr.name().equals("unix:permissions")) {
        permissions = true;
      } else {
        throw new UnsupportedOperationException(
            "initial attribute '" + attr.name() + "' is not replicated");
      }
    }
    return permissions;
  }

  @SuppressWarnings("unchecked")
  private static Set<PosixFilePermission> requestedPermissions(FileAttribute<?>[] attrs) {
    Set<PosixFilePermission> permissions = EnumSet.noneOf(PosixFilePermission.class);
    for (FileAttribute<?> attr : attrs) {
      permissions = EnumSet.copyOf((Set<PosixFilePermission>) attr.value());
    }
    return permissions;
  }

  // ---------------------------------------------------------------- directories and names

  @Override
  public DirectoryStream<Path> newDirectoryStream(
      Path dir, DirectoryStream.Filter<? super Path> filter) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(dir);
    checkNotNull(filter, "filter");
    WrappedFileSystem fs = usable(wrapped);
    DirectoryStream<Path> delegate;
    try {
      delegate = delegateProvider(wrapped).newDirectoryStream(wrapped.delegate(), entry -> true);
    } catch (IOException e) {
      throw fs.translate(e, wrapped, null);
    }
    if (delegate instanceof java.nio.file.SecureDirectoryStream<Path> secure) {
      // Libraries that delete trees safely need one; its relative operations are replicated.
      return fs.register(new WrappedSecureDirectoryStream(fs, wrapped, wrapped.changePath(), secure, filter));
    }
    return fs.register(new WrappedDirectoryStream(fs, wrapped, delegate, filter));
  }

  @Override
  public void createDirectory(Path dir, FileAttribute<?>... attrs) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(dir);
    WrappedFileSystem fs = usable(wrapped);
    boolean permissionsAsked = initialPermissions(attrs);
    String changePath = wrapped.changePath();
    if (changePath.isEmpty()) {
      throw new FileAlreadyExistsException(wrapped.toString());
    }
    Path delegatePath = wrapped.delegate();
    fs.change(WrappedFileSystem.Scope.NAMESPACE, wrapped::changePath, (ignored, change) -> {
      FileChange.MakeDirectory mkdir = new FileChange.MakeDirectory(changePath);
      change.before(mkdir);
      FileChange.SetPermissions permissionsChange = null;
      if (permissionsAsked) {
        permissionsChange = new FileChange.SetPermissions(changePath, requestedPermissions(attrs));
        change.before(permissionsChange);
      }
      try {
        delegatePath.getFileSystem().provider().createDirectory(delegatePath, attrs);
      } catch (IOException e) {
        throw fs.translate(e, wrapped, null);
      }
      change.submit(mkdir);
      if (permissionsChange != null) {
        Set<PosixFilePermission> actual;
        try {
          actual = Files.getPosixFilePermissions(delegatePath);
        } catch (IOException | UnsupportedOperationException e) {
          actual = permissionsChange.permissions();
        }
        change.submit(new FileChange.SetPermissions(changePath, actual));
      }
      return null;
    }).await();
  }

  @Override
  public void createSymbolicLink(Path link, Path target, FileAttribute<?>... attrs)
      throws IOException {
    WrappedPath wrapped = WrappedPath.cast(link);
    WrappedFileSystem fs = usable(wrapped);
    WrappedPath wrappedTarget = fs.check(target);
    if (attrs.length > 0) {
      initialPermissions(attrs); // refuses anything else; link permissions are not replicated
    }
    Path delegateTarget;
    if (wrappedTarget.isAbsolute()) {
      // An absolute target means the wrapper's root: it must work through the wrapper.
      fs.checkAccessible(wrappedTarget);
      delegateTarget = wrappedTarget.delegate();
    } else {
      delegateTarget = relativeDelegate(wrapped.delegate().getFileSystem(), wrappedTarget);
    }
    Path delegateLink = wrapped.delegate();
    fs.namespaceChange(
        new FileChange.CreateSymbolicLink(wrapped.changePath(), wrappedTarget.toString()),
        wrapped,
        wrappedTarget,
        () -> delegateLink.getFileSystem().provider()
            .createSymbolicLink(delegateLink, delegateTarget, attrs),
        null);
  }

  static Path relativeDelegate(FileSystem delegateFs, WrappedPath relative) {
    List<String> names = relative.names();
    if (names.isEmpty()) {
      return delegateFs.getPath("");
    }
    return delegateFs.getPath(
        names.get(0), names.subList(1, names.size()).toArray(new String[0]));
  }

  @Override
  public void createLink(Path link, Path existing) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(link);
    WrappedFileSystem fs = usable(wrapped);
    WrappedPath wrappedExisting = fs.check(existing);
    fs.checkAccessible(wrappedExisting);
    Path delegateLink = wrapped.delegate();
    Path delegateExisting = wrappedExisting.delegate();
    fs.namespaceChange(
        new FileChange.CreateLink(wrapped.changePath(), wrappedExisting.changePath()),
        wrapped,
        wrappedExisting,
        () -> delegateLink.getFileSystem().provider().createLink(delegateLink, delegateExisting),
        null);
  }

  @Override
  public Path readSymbolicLink(Path link) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(link);
    WrappedFileSystem fs = usable(wrapped);
    Path target;
    try {
      target = delegateProvider(wrapped).readSymbolicLink(wrapped.delegate());
    } catch (IOException e) {
      throw fs.translate(e, wrapped, null);
    }
    if (!target.isAbsolute()) {
      return fs.fromDelegateRelative(target);
    }
    WrappedPath inside = fs.fromDelegate(target);
    // A target outside the root cannot be reached through the wrapper; it is returned as stored.
    return inside != null ? inside : fs.getPath(target.toString());
  }

  @Override
  public void delete(Path path) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    WrappedFileSystem fs = usable(wrapped);
    String changePath = checkNotRoot(wrapped, "delete");
    Path delegatePath = wrapped.delegate();
    fs.namespaceChange(
        new FileChange.Delete(changePath),
        wrapped,
        null,
        () -> delegatePath.getFileSystem().provider().delete(delegatePath),
        () -> fs.unlinked(changePath));
  }

  @Override
  public boolean deleteIfExists(Path path) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    WrappedFileSystem fs = usable(wrapped);
    String changePath = checkNotRoot(wrapped, "delete");
    Path delegatePath = wrapped.delegate();
    return fs.change(WrappedFileSystem.Scope.NAMESPACE, wrapped::changePath, (ignored, change) -> {
      FileChange.Delete delete = new FileChange.Delete(changePath);
      change.before(delete);
      boolean deleted;
      try {
        deleted = delegatePath.getFileSystem().provider().deleteIfExists(delegatePath);
      } catch (IOException e) {
        throw fs.translate(e, wrapped, null);
      }
      if (deleted) {
        fs.unlinked(changePath);
        change.submit(delete);
      }
      return deleted;
    }).await();
  }

  /** DELETE_ON_CLOSE of a channel: deletes its file by its current name, replicated. */
  void deleteOnClose(WrappedFileSystem fs, String changePath) throws IOException {
    WrappedPath path = (WrappedPath) fs.root().resolve(changePath);
    Path delegatePath = path.delegate();
    try {
      fs.namespaceChange(
          new FileChange.Delete(changePath),
          path,
          null,
          () -> delegatePath.getFileSystem().provider().delete(delegatePath),
          () -> fs.unlinked(changePath));
    } catch (NoSuchFileException e) {
      // already gone, as the JDK's DELETE_ON_CLOSE tolerates
    }
  }

  private static String checkNotRoot(WrappedPath path, String operation) throws IOException {
    String changePath = path.changePath();
    if (changePath.isEmpty()) {
      throw new FileSystemException(
          path.toString(), null, "cannot " + operation + " the root of a replicated file system");
    }
    return changePath;
  }

  @Override
  public void copy(Path source, Path target, CopyOption... options) throws IOException {
    WrappedPath from = WrappedPath.cast(source);
    WrappedPath to = WrappedPath.cast(target);
    if (from.getFileSystem() != to.getFileSystem()) {
      copyBetweenFileSystems(from, to, options);
      return;
    }
    WrappedFileSystem fs = usable(from);
    fs.checkAccessible(to);
    String targetPath = checkNotRoot(to, "replace");
    List<CopyOption> opts = Arrays.asList(options);
    boolean replace = opts.contains(REPLACE_EXISTING);
    Path delegateSource = from.delegate();
    Path delegateTarget = to.delegate();
    fs.namespaceChange(
        new FileChange.Copy(from.changePath(), targetPath, replace, opts.contains(COPY_ATTRIBUTES)),
        from,
        to,
        () -> delegateSource.getFileSystem().provider().copy(delegateSource, delegateTarget, options),
        () -> {
          if (!from.changePath().equals(targetPath)) {
            fs.unlinked(targetPath); // a replaced file's open channels lost their name
          }
        });
  }

  @Override
  public void move(Path source, Path target, CopyOption... options) throws IOException {
    WrappedPath from = WrappedPath.cast(source);
    WrappedPath to = WrappedPath.cast(target);
    List<CopyOption> opts = Arrays.asList(options);
    if (from.getFileSystem() != to.getFileSystem()) {
      if (opts.contains(ATOMIC_MOVE)) {
        throw new AtomicMoveNotSupportedException(
            from.toString(), to.toString(), "cannot move atomically between file systems");
      }
      usable(from);
      copyBetweenFileSystems(from, to, withCopyAttributes(options));
      delete(from);
      return;
    }
    WrappedFileSystem fs = usable(from);
    fs.checkAccessible(to);
    String sourcePath = checkNotRoot(from, "move");
    String targetPath = checkNotRoot(to, "replace");
    Path delegateSource = from.delegate();
    Path delegateTarget = to.delegate();
    fs.namespaceChange(
        new FileChange.Move(
            sourcePath, targetPath, opts.contains(REPLACE_EXISTING), opts.contains(ATOMIC_MOVE)),
        from,
        to,
        () -> delegateSource.getFileSystem().provider().move(delegateSource, delegateTarget, options),
        () -> {
          if (!sourcePath.equals(targetPath)) {
            fs.unlinked(targetPath); // the replaced file, if any, lost its name
            fs.renamed(sourcePath, targetPath);
          }
        });
  }

  private static CopyOption[] withCopyAttributes(CopyOption[] options) {
    List<CopyOption> opts = new java.util.ArrayList<>(Arrays.asList(options));
    if (!opts.contains(COPY_ATTRIBUTES)) {
      opts.add(COPY_ATTRIBUTES);
    }
    opts.add(LinkOption.NOFOLLOW_LINKS);
    return opts.toArray(new CopyOption[0]);
  }

  /**
   * A copy between two replicated file systems: through each one's own operations, so both see
   * ordinary changes (as the JDK does across providers).
   */
  private void copyBetweenFileSystems(WrappedPath from, WrappedPath to, CopyOption... options)
      throws IOException {
    List<CopyOption> opts = Arrays.asList(options);
    if (opts.contains(ATOMIC_MOVE)) {
      throw new UnsupportedOperationException("ATOMIC_MOVE is not a copy option");
    }
    boolean followLinks = !opts.contains(LinkOption.NOFOLLOW_LINKS);
    BasicFileAttributes attributes =
        followLinks
            ? Files.readAttributes(from, BasicFileAttributes.class)
            : Files.readAttributes(from, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (opts.contains(REPLACE_EXISTING)) {
      Files.deleteIfExists(to);
    } else if (Files.exists(to, LinkOption.NOFOLLOW_LINKS)) {
      throw new FileAlreadyExistsException(to.toString());
    }
    if (attributes.isSymbolicLink()) {
      Path target = Files.readSymbolicLink(from);
      Files.createSymbolicLink(to, to.getFileSystem().getPath(target.toString()));
      return;
    }
    if (attributes.isDirectory()) {
      Files.createDirectory(to);
    } else {
      try (InputStream in = Files.newInputStream(from)) {
        Files.copy(in, to);
      }
    }
    if (opts.contains(COPY_ATTRIBUTES)) {
      Files.getFileAttributeView(to, BasicFileAttributeView.class)
          .setTimes(
              attributes.lastModifiedTime(), attributes.lastAccessTime(), attributes.creationTime());
    }
  }

  // ---------------------------------------------------------------- queries

  @Override
  public boolean isSameFile(Path path, Path path2) throws IOException {
    WrappedPath first = WrappedPath.cast(path);
    if (first.equals(path2)) {
      return true;
    }
    if (!(path2 instanceof WrappedPath)) {
      return false;
    }
    WrappedPath second = (WrappedPath) path2;
    WrappedFileSystem fs = usable(first);
    usable(second);
    try {
      return delegateProvider(first).isSameFile(first.delegate(), second.delegate());
    } catch (IOException e) {
      throw fs.translate(e, first, second);
    }
  }

  @Override
  public boolean isHidden(Path path) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    return wrapped.getFileSystem().readThrough(wrapped, () -> delegateProvider(wrapped).isHidden(wrapped.delegate()));
  }

  @Override
  public FileStore getFileStore(Path path) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    return wrapped.getFileSystem().readThrough(wrapped,
        () -> delegateProvider(wrapped).getFileStore(wrapped.delegate()));
  }

  @Override
  public void checkAccess(Path path, AccessMode... modes) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    wrapped.getFileSystem().readThrough(wrapped, () -> {
      delegateProvider(wrapped).checkAccess(wrapped.delegate(), modes);
      return null;
    });
  }

  /** JDK 20+ {@code FileSystemProvider.exists}; a plain method on 17, an override on newer JDKs. */
  public boolean exists(Path path, LinkOption... options) {
    WrappedPath wrapped = WrappedPath.cast(path);
    WrappedFileSystem fs = wrapped.getFileSystem();
    fs.checkOpen();
    if (wrapped.isMetadata()) {
      return false;
    }
    return Files.exists(wrapped.delegate(), options);
  }

  /** JDK 20+ {@code FileSystemProvider.readAttributesIfExists}, forwarded likewise. */
  public <A extends BasicFileAttributes> A readAttributesIfExists(
      Path path, Class<A> type, LinkOption... options) throws IOException {
    try {
      return readAttributes(path, type, options);
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  @Override
  public <V extends FileAttributeView> V getFileAttributeView(
      Path path, Class<V> type, LinkOption... options) {
    WrappedPath wrapped = WrappedPath.cast(path);
    checkNotNull(type, "type");
    wrapped.getFileSystem().checkOpen();
    return ReplicatingAttributeViews.of(wrapped.getFileSystem(), wrapped, type, options);
  }

  @Override
  public <A extends BasicFileAttributes> A readAttributes(
      Path path, Class<A> type, LinkOption... options) throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    return wrapped.getFileSystem().readThrough(wrapped,
        () -> delegateProvider(wrapped).readAttributes(wrapped.delegate(), type, options));
  }

  @Override
  public Map<String, Object> readAttributes(Path path, String attributes, LinkOption... options)
      throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    return wrapped.getFileSystem().readThrough(wrapped,
        () -> delegateProvider(wrapped).readAttributes(wrapped.delegate(), attributes, options));
  }

  /**
   * Sets basic times, POSIX permissions, owner and group through the replicating views; attributes
   * of other views (dos, user, acl, unix) are refused because they are not replicated.
   */
  @Override
  public void setAttribute(Path path, String attribute, Object value, LinkOption... options)
      throws IOException {
    WrappedPath wrapped = WrappedPath.cast(path);
    WrappedFileSystem fs = usable(wrapped);
    int colon = attribute.indexOf(':');
    String view = colon < 0 ? "basic" : attribute.substring(0, colon);
    String name = colon < 0 ? attribute : attribute.substring(colon + 1);
    if (!view.equals("basic") && !view.equals("posix") && !view.equals("owner")) {
      throw new UnsupportedOperationException(
          "attribute '" + attribute + "' is not replicated: view '" + view + "' is refused");
    }
    switch (name) {
      case "lastModifiedTime":
      case "lastAccessTime":
      case "creationTime":
        {
          if (view.equals("owner")) {
            break;
          }
          BasicFileAttributeView times = view(fs, wrapped, BasicFileAttributeView.class, options);
          FileTime time = (FileTime) value;
          times.setTimes(
              name.equals("lastModifiedTime") ? time : null,
              name.equals("lastAccessTime") ? time : null,
              name.equals("creationTime") ? time : null);
          return;
        }
      case "permissions":
        if (view.equals("posix")) {
          @SuppressWarnings("unchecked")
          Set<PosixFilePermission> permissions = (Set<PosixFilePermission>) value;
          view(fs, wrapped, PosixFileAttributeView.class, options).setPermissions(permissions);
          return;
        }
        break;
      case "owner":
        if (!view.equals("basic")) {
          view(fs, wrapped, FileOwnerAttributeView.class, options).setOwner((UserPrincipal) value);
          return;
        }
        break;
      case "group":
        if (view.equals("posix")) {
          view(fs, wrapped, PosixFileAttributeView.class, options).setGroup((GroupPrincipal) value);
          return;
        }
        break;
      default:
        break;
    }
    throw new IllegalArgumentException("'" + attribute + "' not recognized or not settable");
  }

  private static <V extends FileAttributeView> V view(
      WrappedFileSystem fs, WrappedPath path, Class<V> type, LinkOption... options) {
    V view = ReplicatingAttributeViews.of(fs, path, type, options);
    if (view == null) {
      throw new UnsupportedOperationException(
          "the delegate file system has no " + type.getSimpleName());
    }
    return view;
  }

  // ---------------------------------------------------------------- helpers

  /** The path's file system, open, with the metadata directory refused. */
  private static WrappedFileSystem usable(WrappedPath path) throws IOException {
    WrappedFileSystem fs = path.getFileSystem();
    fs.checkOpen();
    fs.checkAccessible(path);
    return fs;
  }

  private static FileSystemProvider delegateProvider(WrappedPath path) {
    return path.delegate().getFileSystem().provider();
  }
}
