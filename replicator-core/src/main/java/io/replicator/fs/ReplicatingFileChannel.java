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
import java.util.concurrent.locks.Lock;

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
  private final ChangeSink sink;
  private final SeekableByteChannel delegate;
  /** The delegate as a FileChannel, or null when the delegate only offers a byte channel. */
  private final FileChannel delegateFile;

  private final boolean readable;
  private final boolean writable;
  private final boolean append;
  private final boolean sync;
  private final boolean syncMetadata;
  private final boolean deleteOnClose;

  // Written only under the exclusive namespace lock, read under its shared side (or racily, for
  // close), so the lock orders renames against every change through this channel.
  private volatile String changePath;
  private volatile boolean unlinked;

  ReplicatingFileChannel(
      WrappedFileSystem fs,
      String changePath,
      SeekableByteChannel delegate,
      boolean readable,
      boolean writable,
      boolean append,
      boolean sync,
      boolean syncMetadata,
      boolean deleteOnClose) {
    this.fs = fs;
    this.sink = fs.sink();
    this.changePath = checkNotNull(changePath, "changePath");
    this.delegate = checkNotNull(delegate, "delegate");
    this.delegateFile = delegate instanceof FileChannel ? (FileChannel) delegate : null;
    this.readable = readable;
    this.writable = writable;
    this.append = append;
    this.sync = sync;
    this.syncMetadata = syncMetadata;
    this.deleteOnClose = deleteOnClose;
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
    int written;
    ChangeSink.Completion completion = ChangeSink.Completion.DONE;
    try {
      Lock shared = fs.sharedLock();
      shared.lock();
      try {
        String path = changePath;
        Lock pathLock = fs.pathLock(path);
        pathLock.lock();
        try {
          if (unlinked || !src.hasRemaining()) {
            written = positional ? delegateFile.write(src, position) : delegate.write(src);
          } else {
            // An append lands at the end even for a positional write (as pwrite with O_APPEND).
            long at = append ? delegate.size() : positional ? position : delegate.position();
            ByteBuffer view = src.asReadOnlyBuffer();
            FileChange.Write change = new FileChange.Write(path, at, view);
            sink.beforeLocalChange(change);
            written = positional ? delegateFile.write(src, position) : delegate.write(src);
            if (written > 0) {
              if (written != view.remaining()) {
                change = new FileChange.Write(path, at, view.slice(view.position(), written));
              }
              completion = sink.submit(change);
            }
          }
        } finally {
          pathLock.unlock();
        }
      } finally {
        shared.unlock();
      }
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
    await(completion);
    if (sync && written > 0) {
      force(syncMetadata);
    }
    fs.writeRecorder().write(started, written);
    return written;
  }

  @Override
  public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
    Objects.checkFromIndexSize(offset, length, srcs.length);
    checkWritable();
    long started = System.nanoTime();
    long written;
    ChangeSink.Completion[] completions = null;
    try {
      Lock shared = fs.sharedLock();
      shared.lock();
      try {
        String path = changePath;
        Lock pathLock = fs.pathLock(path);
        pathLock.lock();
        try {
          if (unlinked) {
            written = gatherWrite(srcs, offset, length);
          } else {
            long at = append ? delegate.size() : delegate.position();
            ByteBuffer[] views = new ByteBuffer[length];
            long offsetInWrite = 0;
            for (int i = 0; i < length; i++) {
              views[i] = srcs[offset + i].asReadOnlyBuffer();
              if (views[i].hasRemaining()) {
                sink.beforeLocalChange(new FileChange.Write(path, at + offsetInWrite, views[i]));
                offsetInWrite += views[i].remaining();
              }
            }
            written = gatherWrite(srcs, offset, length);
            // One Write per buffer, at consecutive positions, covering exactly what was written.
            completions = new ChangeSink.Completion[length];
            long left = written;
            long position = at;
            for (int i = 0; i < length && left > 0; i++) {
              ByteBuffer view = views[i];
              int n = (int) Math.min(view.remaining(), left);
              if (n == 0) {
                continue;
              }
              ByteBuffer data = n == view.remaining() ? view : view.slice(view.position(), n);
              completions[i] = sink.submit(new FileChange.Write(path, position, data));
              position += n;
              left -= n;
            }
          }
        } finally {
          pathLock.unlock();
        }
      } finally {
        shared.unlock();
      }
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
    if (completions != null) {
      for (ChangeSink.Completion completion : completions) {
        if (completion != null) {
          await(completion);
        }
      }
    }
    if (sync && written > 0) {
      force(syncMetadata);
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
    ChangeSink.Completion completion = ChangeSink.Completion.DONE;
    boolean shrank = false;
    try {
      Lock shared = fs.sharedLock();
      shared.lock();
      try {
        String path = changePath;
        Lock pathLock = fs.pathLock(path);
        pathLock.lock();
        try {
          // FileChannel.truncate changes the file only when it shrinks; it may still move the
          // position, which is local state.
          shrank = size < delegate.size();
          if (shrank && !unlinked) {
            FileChange.Truncate change = new FileChange.Truncate(path, size);
            sink.beforeLocalChange(change);
            delegate.truncate(size);
            completion = sink.submit(change);
          } else {
            delegate.truncate(size);
          }
        } finally {
          pathLock.unlock();
        }
      } finally {
        shared.unlock();
      }
    } catch (IOException e) {
      throw closeOnInterrupt(e);
    }
    await(completion);
    if (sync && shrank) {
      force(syncMetadata);
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
    ChangeSink.Completion completion = ChangeSink.Completion.DONE;
    Lock shared = fs.sharedLock();
    shared.lock();
    try {
      String path = changePath;
      Lock pathLock = fs.pathLock(path);
      pathLock.lock();
      try {
        if (!unlinked) {
          // The one change submitted before it is made locally: local and remote fsync overlap.
          FileChange.Force change = new FileChange.Force(path, metaData);
          sink.beforeLocalChange(change);
          completion = sink.submit(change);
        }
      } finally {
        pathLock.unlock();
      }
    } finally {
      shared.unlock();
    }
    IOException localFailure = null;
    try {
      file.force(metaData);
    } catch (IOException e) {
      localFailure = e;
    }
    try {
      await(completion);
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
    try {
      delegate.close();
    } finally {
      fs.unregister(this);
      if (deleteOnClose && !unlinked) {
        fs.provider().deleteOnClose(fs, changePath);
      }
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
    try {
      begin();
      completion.await();
      completed = true;
    } catch (ClosedByInterruptException e) {
      interrupted = e;
    } finally {
      // Throws ClosedByInterruptException when our interruptor closed the channel. Passing true
      // when the sink saw the interrupt keeps a close we make ourselves from being reported as
      // an asynchronous close.
      end(completed || interrupted != null);
    }
    if (interrupted != null) {
      // On JDK 17 Thread.interrupt() may set the flag only after begin() looked at it, so the
      // sink can see an interrupt our interruptor missed: close here, as the interruptor would.
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
    if (!readable) {
      throw new NonReadableChannelException();
    }
  }

  private void checkWritable() throws ClosedChannelException {
    checkOpen();
    if (!writable) {
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
