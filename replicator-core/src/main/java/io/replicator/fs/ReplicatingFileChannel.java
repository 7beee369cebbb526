package io.replicator.fs;

import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.NonReadableChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.Objects;

/**
 * A {@link FileChannel} of a {@link WrappedFileSystem}: every write, truncate and force is made on
 * the delegate channel under the file's lock and reported to the sink; reads go straight to the
 * delegate. Writable memory maps are refused, since writes through them cannot be seen.
 *
 * <p>An interrupt while waiting for the replication of a change closes the channel and throws
 * {@link ClosedByInterruptException}, as a blocking {@code FileChannel} does; the change was
 * already made locally and submitted.
 */
final class ReplicatingFileChannel extends FileChannel {

  /** Bounded buffer for {@link #transferFrom}, which must go through {@link #write}. */
  private static final int TRANSFER_CHUNK = 64 * 1024;

  private final WrappedFileSystem fs;
  private final SeekableByteChannel delegate;
  /** The delegate as a FileChannel, or null when the delegate only offers a byte channel. */
  private final FileChannel delegateFile;

  private final OpenOptions options;

  // Written only under the exclusive namespace lock, read under its shared side (or racily, for
  // close), so the lock orders renames against every change through this channel.
  private volatile String changePath;
  private volatile boolean unlinked;
  /**
   * The replication of the open that created or emptied the file, until something waited for
   * it: the channel's first write, truncate or force, or its close (see {@link #openedBy}).
   */
  private volatile ChangeSink.Completion opening = ChangeSink.Completion.DONE;
  /** Threads waiting in {@link #await}: a close meanwhile is an interrupt's or another thread's. */
  private final java.util.concurrent.atomic.AtomicInteger waiting = new java.util.concurrent.atomic.AtomicInteger();

  ReplicatingFileChannel(
      WrappedFileSystem fs, String changePath, SeekableByteChannel delegate, OpenOptions options) {
    this.fs = fs;
    this.changePath = checkNotNull(changePath, "changePath");
    this.delegate = checkNotNull(delegate, "delegate");
    this.delegateFile = delegate instanceof FileChannel ? (FileChannel) delegate : null;
    this.options = checkNotNull(options, "options");
  }

  /**
   * The open made a change (created or emptied the file) whose replication the open itself does
   * not wait for: the channel's first write, truncate or force waits for it after its own change
   * (usually already covered by then), and so does its close. So an open costs no round trip of
   * its own, and whatever returns after it still implies it.
   */
  void openedBy(ChangeSink.Completion completion) {
    this.opening = completion;
  }

  /** Waits for the open's replication once; an error replicating it is this call's error. */
  private void awaitOpening() throws IOException {
    ChangeSink.Completion c = opening;
    if (c != ChangeSink.Completion.DONE) {
      await(c);
      opening = ChangeSink.Completion.DONE;
    }
  }

  String changePath() {
    return changePath;
  }

  void setChangePath(String changePath) {
    this.changePath = changePath;
  }

  /** The file's name was removed: later changes stay local, no name reaches them on the replica. */
  void unlink() {
    this.unlinked = true;
  }

  boolean isUnlinked() {
    return unlinked;
  }

  // ---------------------------------------------------------------- reads

  @Override
  public int read(ByteBuffer dst) throws IOException {
    checkReadable();
    try {
      return delegate.read(dst);
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
  }

  @Override
  public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
    Objects.checkFromIndexSize(offset, length, dsts.length);
    checkReadable();
    try {
      return file().read(dsts, offset, length);
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
  }

  @Override
  public int read(ByteBuffer dst, long position) throws IOException {
    checkNotNull(dst, "dst");
    if (position < 0) {
      throw new IllegalArgumentException("negative position " + position);
    }
    checkReadable();
    try {
      return file().read(dst, position);
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
  }

  @Override
  public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
    checkReadable();
    try {
      // Reading this file only; a wrapped target intercepts the writes itself.
      return file().transferTo(position, count, target);
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
  }

  // ---------------------------------------------------------------- writes

  @Override
  public int write(ByteBuffer src) throws IOException {
    checkNotNull(src, "src");
    return write(src, 0, false);
  }

  @Override
  public int write(ByteBuffer src, long position) throws IOException {
    checkNotNull(src, "src");
    if (position < 0) {
      throw new IllegalArgumentException("negative position " + position);
    }
    return write(src, position, true);
  }

  private int write(ByteBuffer src, long position, boolean positional) throws IOException {
    checkWritable();
    long started = System.nanoTime();
    if (positional) {
      file();
    }
    LockedChange.Made<Integer> made = change((path, change) -> {
      if (unlinked || !src.hasRemaining()) {
        return positional ? delegateFile.write(src, position) : delegate.write(src);
      }
      // An append lands at the end even for a positional write (as pwrite with O_APPEND).
      long at = options.append() ? delegate.size() : positional ? position : delegate.position();
      ByteBuffer view = src.asReadOnlyBuffer();
      FileChange.Write write = new FileChange.Write(path, at, view);
      change.before(write);
      int n = positional ? delegateFile.write(src, position) : delegate.write(src);
      if (n > 0) {
        change.submit(n == view.remaining() ? write : new FileChange.Write(path, at, view.slice(view.position(), n)));
      }
      return n;
    });
    int written = awaitMade(made);
    if (options.forcesWrites() && written > 0) {
      force(options.sync());
    }
    fs.writeRecorder().write(started, written);
    return written;
  }

  /** A change through this channel: under the file's locks (see {@link LockedChange}). */
  private <T> LockedChange.Made<T> change(LockedChange.Step<T> step) throws IOException {
    try {
      return fs.change(WrappedFileSystem.Scope.FILE, this::changePath, step);
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
  }

  /** Waits for a change's replication, then for the open's if nothing waited for it yet. */
  private <T> T awaitMade(LockedChange.Made<T> made) throws IOException {
    T value = made.await(this::await);
    awaitOpening();
    return value;
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    Objects.checkFromIndexSize(offset, length, srcs.length);
    checkWritable();
    long started = System.nanoTime();
    LockedChange.Made<Long> made = change((path, change) -> {
      if (unlinked) {
        return gatherWrite(srcs, offset, length);
      }
      long at = options.append() ? delegate.size() : delegate.position();
      ByteBuffer[] views = new ByteBuffer[length];
      long offsetInWrite = 0;
      for (int i = 0; i < length; i++) {
        views[i] = srcs[offset + i].asReadOnlyBuffer();
        if (views[i].hasRemaining()) {
          change.before(new FileChange.Write(path, at + offsetInWrite, views[i]));
          offsetInWrite += views[i].remaining();
        }
      }
      long n = gatherWrite(srcs, offset, length);
      // One Write per buffer, at consecutive positions, covering exactly what was written.
      long left = n;
      long position = at;
      for (int i = 0; i < length && left > 0; i++) {
        ByteBuffer view = views[i];
        int part = (int) Math.min(view.remaining(), left);
        if (part == 0) {
          continue;
        }
        ByteBuffer data = part == view.remaining() ? view : view.slice(view.position(), part);
        change.submit(new FileChange.Write(path, position, data));
        position += part;
        left -= part;
      }
      return n;
    });
    long written = awaitMade(made);
    if (options.forcesWrites() && written > 0) {
      force(options.sync());
    }
    fs.writeRecorder().write(started, written);
    return written;
  }

  private long gatherWrite(ByteBuffer[] srcs, int offset, int length) throws IOException {
    if (delegateFile != null) {
      return delegateFile.write(srcs, offset, length);
    }
    long total = 0;
    for (int i = offset; i < offset + length; i++) {
      int expected = srcs[i].remaining();
      int n = delegate.write(srcs[i]);
      total += n;
      if (n < expected) {
        break;
      }
    }
    return total;
  }

  /**
   * Reads {@code src} into a bounded buffer and writes through {@link #write(ByteBuffer, long)},
   * so the bytes are replicated; forwarding to the delegate would bypass interception.
   */
  @Override
  public long transferFrom(ReadableByteChannel src, long position, long count) throws IOException {
    checkNotNull(src, "src");
    if (position < 0 || count < 0) {
      throw new IllegalArgumentException("negative position or count");
    }
    checkWritable();
    if (position > size()) {
      return 0;
    }
    ByteBuffer buffer = ByteBuffer.allocate((int) Math.min(count, TRANSFER_CHUNK));
    long transferred = 0;
    while (transferred < count) {
      buffer.clear();
      buffer.limit((int) Math.min(buffer.capacity(), count - transferred));
      int read = src.read(buffer);
      if (read <= 0) {
        break;
      }
      buffer.flip();
      while (buffer.hasRemaining()) {
        transferred += write(buffer, position + transferred);
      }
    }
    return transferred;
  }

  @Override
  public FileChannel truncate(long size) throws IOException {
    if (size < 0) {
      throw new IllegalArgumentException("negative size " + size);
    }
    checkWritable();
    LockedChange.Made<Boolean> made = change((path, change) -> {
      // FileChannel.truncate changes the file only when it shrinks; it may still move the
      // position, which is local state.
      boolean shrinks = size < delegate.size();
      if (shrinks && !unlinked) {
        FileChange.Truncate truncate = new FileChange.Truncate(path, size);
        change.before(truncate);
        delegate.truncate(size);
        change.submit(truncate);
      } else {
        delegate.truncate(size);
      }
      return shrinks;
    });
    boolean shrank = awaitMade(made);
    if (options.forcesWrites() && shrank) {
      force(options.sync());
    }
    return this;
  }

  /**
   * Reports a {@code Force} and makes the file durable locally while the replica does the same,
   * then waits for both. Works on a directory opened for reading, for storage engines that
   * fsync a directory after a rename.
   */
  @Override
  public void force(boolean metaData) throws IOException {
    checkOpen();
    long started = System.nanoTime();
    FileChannel file = file();
    LockedChange.Made<Void> made = fs.change(WrappedFileSystem.Scope.FILE, this::changePath, (path, change) -> {
      if (!unlinked) {
        // The one change submitted before it is made locally: local and remote fsync overlap.
        FileChange.Force force = new FileChange.Force(path, metaData);
        change.before(force);
        change.submit(force);
      }
      return null;
    });
    IOException localFailure = null;
    try {
      file.force(metaData);
    } catch (IOException e) {
      localFailure = e;
    }
    try {
      awaitMade(made);
    } catch (IOException e) {
      if (localFailure != null) {
        e.addSuppressed(localFailure);
      }
      throw e;
    }
    if (localFailure != null) {
      throw closeOnInterrupt(localFailure);
    }
    fs.writeRecorder().force(started);
  }

  // ---------------------------------------------------------------- position, size, maps, locks

  @Override
  public long position() throws IOException {
    checkOpen();
    return delegate.position();
  }

  @Override
  public FileChannel position(long newPosition) throws IOException {
    if (newPosition < 0) {
      throw new IllegalArgumentException("negative position " + newPosition);
    }
    checkOpen();
    delegate.position(newPosition);
    return this;
  }

  @Override
  public long size() throws IOException {
    checkOpen();
    return delegate.size();
  }

  /**
   * Read-only and private (copy-on-write) maps come from the delegate; a writable map is refused
   * because its writes reach the file without passing through this channel.
   */
  @Override
  public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
    checkNotNull(mode, "mode");
    checkOpen();
    if (mode == MapMode.READ_WRITE) {
      throw new UnsupportedOperationException(
          "writable memory maps (MapMode.READ_WRITE) cannot be replicated: writes through them"
              + " bypass the file system; use READ_ONLY or PRIVATE maps and write with the channel");
    }
    if (mode != MapMode.READ_ONLY && mode != MapMode.PRIVATE) {
      throw new UnsupportedOperationException("map mode " + mode + " cannot be replicated");
    }
    return file().map(mode, position, size);
  }

  @Override
  public FileLock lock(long position, long size, boolean shared) throws IOException {
    checkOpen();
    try {
      return new WrappedFileLock(this, file().lock(position, size, shared));
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
  }

  @Override
  public FileLock tryLock(long position, long size, boolean shared) throws IOException {
    checkOpen();
    FileLock lock = file().tryLock(position, size, shared);
    return lock == null ? null : new WrappedFileLock(this, lock);
  }

  // ---------------------------------------------------------------- closing

  @Override
  protected void implCloseChannel() throws IOException {
    IOException opened = null;
    ChangeSink.Completion c = opening;
    opening = ChangeSink.Completion.DONE;
    if (c != ChangeSink.Completion.DONE && fs.isOpen() && waiting.get() == 0) {
      // a channel closed without a write still waits for the change its open made (not when the
      // close comes from an interrupt or another thread while one waits here: it must not block)
      boolean interrupted = Thread.interrupted();
      try {
        while (true) {
          try {
            c.await();
            break;
          } catch (java.nio.channels.ClosedByInterruptException e) {
            interrupted = true;
            Thread.interrupted();
          }
        }
      } catch (IOException e) {
        opened = e;
      } finally {
        if (interrupted) {
          Thread.currentThread().interrupt();
        }
      }
    }
    try {
      delegate.close();
    } finally {
      fs.unregister(this);
      if (options.deleteOnClose() && !unlinked) {
        fs.provider().deleteOnClose(fs, changePath);
      }
    }
    if (opened != null) {
      throw opened;
    }
  }

  /**
   * Waits for a completion the way a blocking channel waits: an interrupt closes the channel and
   * ends in {@link ClosedByInterruptException}.
   */
  void await(ChangeSink.Completion completion) throws IOException {
    if (completion == ChangeSink.Completion.DONE) {
      return;
    }
    boolean completed = false;
    ClosedByInterruptException interrupted = null;
    waiting.incrementAndGet();
    try {
      begin();
      completion.await();
      completed = true;
    } catch (ClosedByInterruptException e) {
      interrupted = e;
    } finally {
      waiting.decrementAndGet();
      // Throws ClosedByInterruptException when our interruptor closed the channel. Passing true
      // when the sink saw the interrupt keeps a close we make ourselves from being reported as
      // an asynchronous close.
      end(completed || interrupted != null);
    }
    if (interrupted != null) {
      // On JDK 17 Thread.interrupt() may set the flag only after begin() looked at it, so the
      // sink can see an interrupt our interruptor missed: close here, as the interruptor would
      // (without waiting for the open's replication: an interrupt stops waiting).
      opening = ChangeSink.Completion.DONE;
      closeQuietly();
      Thread.currentThread().interrupt();
      throw interrupted;
    }
  }

  /** A delegate interrupted in its own I/O closed itself: this channel closes with it. */
  private IOException closeOnInterrupt(IOException e) {
    if (e instanceof ClosedByInterruptException) {
      closeQuietly();
    }
    return e;
  }

  private void closeQuietly() {
    try {
      close();
    } catch (IOException ignored) {
      // closing because of an interrupt; the interrupt is what the caller sees
    }
  }

  private void checkOpen() throws ClosedChannelException {
    if (!isOpen()) {
      throw new ClosedChannelException();
    }
  }

  private void checkReadable() throws ClosedChannelException {
    checkOpen();
    if (!options.read()) {
      throw new NonReadableChannelException();
    }
  }

  private void checkWritable() throws ClosedChannelException {
    checkOpen();
    if (!options.write()) {
      throw new NonWritableChannelException();
    }
  }

  /** The delegate's FileChannel, for operations a plain byte channel lacks. */
  private FileChannel file() {
    if (delegateFile == null) {
      throw new UnsupportedOperationException(
          "the delegate file system offers no FileChannel for this file, only a byte channel");
    }
    return delegateFile;
  }

  @Override
  public String toString() {
    return "ReplicatingFileChannel[" + changePath + (unlinked ? ", unlinked" : "") + "]";
  }

  /** A lock on the delegate file whose {@link #channel()} is the wrapping channel. */
  private static final class WrappedFileLock extends FileLock {
    private final FileLock delegate;

    WrappedFileLock(FileChannel channel, FileLock delegate) {
      super(channel, delegate.position(), delegate.size(), delegate.isShared());
      this.delegate = delegate;
    }

    @Override
    public boolean isValid() {
      return delegate.isValid() && channel().isOpen();
    }

    @Override
    public void release() throws IOException {
      delegate.release();
    }
  }
}
