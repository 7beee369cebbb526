package io.replicator.transport;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.buffer.UnpooledUnsafeDirectByteBuf;
import io.netty.util.internal.PlatformDependent;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Internal: direct memory for large payloads, kept for reuse once released: the copies of large
 * writes on their way to the peer, and large frames as they arrive. Netty's pool frees a chunk as
 * soon as it empties, which buffers of a megabyte do all the time, and the JDK zeroes every new
 * one: a fifth of a sequential writer's time. Buffers come in power-of-two sizes up to {@link
 * #MAX_SIZE}; at most {@link #MAX_KEPT_BYTES} are kept, the rest is left to the garbage collector.
 * Thread-safe.
 */
public final class PayloadBuffers {
  /** The smallest size handed out; smaller buffers are best taken from the heap. */
  public static final int MIN_SIZE = 128 * 1024;
  /** The largest size kept: a frame of {@link TransportSettings#MAX_PAYLOAD} with its header. */
  static final int MAX_SIZE = TransportSettings.MAX_PAYLOAD << 1;
  static final long MAX_KEPT_BYTES = 16L << 20;
  private static final int CLASSES = Integer.numberOfTrailingZeros(MAX_SIZE)
      - Integer.numberOfTrailingZeros(MIN_SIZE) + 1;

  /** For the copies of writes sent. */
  public static final PayloadBuffers SENT = new PayloadBuffers(MAX_KEPT_BYTES);
  /** For frames received: kept apart, so that a replica's reading never starves its writing. */
  static final PayloadBuffers RECEIVED = new PayloadBuffers(MAX_KEPT_BYTES);

  private final long maxKept;
  @SuppressWarnings("unchecked")
  private final ConcurrentLinkedDeque<ByteBuffer>[] free = new ConcurrentLinkedDeque[CLASSES];
  private final AtomicLong kept = new AtomicLong();

  PayloadBuffers(long maxKept) {
    this.maxKept = maxKept;
    for (int i = 0; i < CLASSES; i++) {
      free[i] = new ConcurrentLinkedDeque<>();
    }
  }

  /** An empty buffer with room for {@code size} bytes; from Netty's pool above {@link #MAX_SIZE}. */
  public ByteBuf take(int size) {
    int c = sizeClass(size);
    if (c < 0 || !PlatformDependent.hasUnsafe()) {
      return io.netty.buffer.PooledByteBufAllocator.DEFAULT.directBuffer(size, size);
    }
    ByteBuffer memory = free[c].pollFirst();
    if (memory != null) {
      kept.addAndGet(-memory.capacity());
    } else {
      memory = ByteBuffer.allocateDirect(MIN_SIZE << c);
    }
    return new Recycled(this, memory);
  }

  /** Bytes kept for reuse now; for tests. */
  long keptBytes() {
    return kept.get();
  }

  private void giveBack(ByteBuffer memory) {
    if (kept.addAndGet(memory.capacity()) > maxKept) {
      kept.addAndGet(-memory.capacity());
      return; // enough kept: this one goes to the garbage collector
    }
    memory.clear();
    free[sizeClass(memory.capacity())].offerFirst(memory); // the most recently used is the warmest
  }

  /** The index of the smallest class that holds {@code size} bytes, or -1 above the largest. */
  static int sizeClass(int size) {
    if (size > MAX_SIZE) {
      return -1;
    }
    int rounded = Math.max(MIN_SIZE, Integer.highestOneBit(Math.max(1, size - 1)) << 1);
    return Integer.numberOfTrailingZeros(rounded) - Integer.numberOfTrailingZeros(MIN_SIZE);
  }

  /** A buffer over kept memory that goes back to its owner when released for the last time. */
  private static final class Recycled extends UnpooledUnsafeDirectByteBuf {
    private final PayloadBuffers owner;
    private final ByteBuffer memory;

    Recycled(PayloadBuffers owner, ByteBuffer memory) {
      super(UnpooledByteBufAllocator.DEFAULT, memory, memory.capacity());
      this.owner = owner;
      this.memory = memory;
      clear();
    }

    @Override
    protected void deallocate() {
      super.deallocate();
      owner.giveBack(memory);
    }
  }
}
