package io.replicator.fs;

import com.google.common.util.concurrent.ThreadFactoryBuilder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.CompletionHandler;
import java.nio.channels.FileLock;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * An {@link AsynchronousFileChannel} made of a {@link ReplicatingFileChannel} and an executor:
 * each operation runs the blocking, replicating channel operation on the executor, so
 * asynchronous writes are replicated exactly like synchronous ones.
 */
final class ReplicatingAsynchronousFileChannel extends AsynchronousFileChannel {

  /** Used when the caller gives no executor, as the JDK then uses a default pool. */
  private static final ExecutorService DEFAULT_EXECUTOR =
      Executors.newCachedThreadPool(
          new ThreadFactoryBuilder()
              .setDaemon(true)
              .setNameFormat("replicated-async-file-%d")
              .build());

  private final ReplicatingFileChannel channel;
  private final ExecutorService executor;

  ReplicatingAsynchronousFileChannel(ReplicatingFileChannel channel, ExecutorService executor) {
    this.channel = channel;
    this.executor = executor == null ? DEFAULT_EXECUTOR : executor;
  }

  @FunctionalInterface
  private interface Operation<V> {
    V run() throws IOException;
  }

  private <V> Future<V> submit(Operation<V> operation) {
    CompletableFuture<V> future = new CompletableFuture<>();
    executor.execute(
        () -> {
          try {
            future.complete(operation.run());
          } catch (Throwable t) {
            future.completeExceptionally(t);
          }
        });
    return future;
  }

  private <V, A> void submit(
      Operation<V> operation, A attachment, CompletionHandler<V, ? super A> handler) {
    if (handler == null) {
      throw new NullPointerException("handler");
    }
    executor.execute(
        () -> {
          V result;
          try {
            result = operation.run();
          } catch (Throwable t) {
            handler.failed(t, attachment);
            return;
          }
          handler.completed(result, attachment);
        });
  }

  @Override
  public long size() throws IOException {
    return channel.size();
  }

  @Override
  public AsynchronousFileChannel truncate(long size) throws IOException {
    channel.truncate(size);
    return this;
  }

  @Override
  public void force(boolean metaData) throws IOException {
    channel.force(metaData);
  }

  @Override
  public <A> void lock(
      long position,
      long size,
      boolean shared,
      A attachment,
      CompletionHandler<FileLock, ? super A> handler) {
    submit(() -> lockNow(position, size, shared), attachment, handler);
  }

  @Override
  public Future<FileLock> lock(long position, long size, boolean shared) {
    return submit(() -> lockNow(position, size, shared));
  }

  private FileLock lockNow(long position, long size, boolean shared) throws IOException {
    return new AsyncFileLock(this, channel.lock(position, size, shared));
  }

  @Override
  public FileLock tryLock(long position, long size, boolean shared) throws IOException {
    FileLock lock = channel.tryLock(position, size, shared);
    return lock == null ? null : new AsyncFileLock(this, lock);
  }

  @Override
  public <A> void read(
      ByteBuffer dst, long position, A attachment, CompletionHandler<Integer, ? super A> handler) {
    submit(() -> channel.read(dst, position), attachment, handler);
  }

  @Override
  public Future<Integer> read(ByteBuffer dst, long position) {
    return submit(() -> channel.read(dst, position));
  }

  @Override
  public <A> void write(
      ByteBuffer src, long position, A attachment, CompletionHandler<Integer, ? super A> handler) {
    submit(() -> channel.write(src, position), attachment, handler);
  }

  @Override
  public Future<Integer> write(ByteBuffer src, long position) {
    return submit(() -> channel.write(src, position));
  }

  @Override
  public boolean isOpen() {
    return channel.isOpen();
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  /** A lock whose channel is this asynchronous channel. */
  private static final class AsyncFileLock extends FileLock {
    private final FileLock delegate;

    AsyncFileLock(AsynchronousFileChannel channel, FileLock delegate) {
      super(channel, delegate.position(), delegate.size(), delegate.isShared());
      this.delegate = delegate;
    }

    @Override
    public boolean isValid() {
      return delegate.isValid();
    }

    @Override
    public void release() throws IOException {
      delegate.release();
    }
  }
}
