package io.replicator.meta;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Internal: a node's generation identifiers after DRBD's UUIDs: the current generation, the
 * generation at which its dirty bitmap started tracking (0 when not tracking) and up to {@value
 * #MAX_HISTORY} older generations, newest first. Immutable; zero always means "none".
 */
public final class GenerationIds {
  /** How many older generations are kept: enough to recognise a peer a few generations behind. */
  public static final int MAX_HISTORY = 8;

  /** A node that never had data: every id zero. */
  public static final GenerationIds NONE = new GenerationIds(0, 0, new long[0]);

  private static final SecureRandom RANDOM = new SecureRandom();

  private final long current;
  private final long bitmap;
  private final long[] history;

  private GenerationIds(long current, long bitmap, long[] history) {
    this.current = current;
    this.bitmap = bitmap;
    this.history = history;
  }

  /**
   * Builds a set of ids; {@code history} is newest first, its zeros are dropped and it is cut to
   * {@value #MAX_HISTORY}, so values from a peer can be taken as they come.
   */
  public static GenerationIds of(long current, long bitmap, List<Long> history) {
    checkNotNull(history, "history");
    long[] h = new long[Math.min(history.size(), MAX_HISTORY)];
    int n = 0;
    for (Long id : history) {
      if (n == h.length) {
        break;
      }
      if (id != null && id != 0) {
        h[n++] = id;
      }
    }
    return new GenerationIds(current, bitmap, n == h.length ? h : java.util.Arrays.copyOf(h, n));
  }

  /** Reads the wire form (bounded like {@link #of}). */
  public static GenerationIds fromProto(io.replicator.proto.GenerationIds proto) {
    checkNotNull(proto, "proto");
    return of(proto.getCurrent(), proto.getBitmap(), proto.getHistoryList());
  }

  /** The wire form. */
  public io.replicator.proto.GenerationIds toProto() {
    io.replicator.proto.GenerationIds.Builder b =
        io.replicator.proto.GenerationIds.newBuilder().setCurrent(current).setBitmap(bitmap);
    for (long id : history) {
      b.addHistory(id);
    }
    return b.build();
  }

  /** A random non-zero 64-bit id: collisions between independent generations must be practically impossible. */
  public static long randomId() {
    long id;
    do {
      id = RANDOM.nextLong();
    } while (id == 0);
    return id;
  }

  public long current() {
    return current;
  }

  /** The generation at which the bitmap started tracking, 0 when it is not tracking. */
  public long bitmap() {
    return bitmap;
  }

  /** Older generations, newest first, at most {@value #MAX_HISTORY}. */
  public List<Long> history() {
    List<Long> list = new ArrayList<>(history.length);
    for (long id : history) {
      list.add(id);
    }
    return Collections.unmodifiableList(list);
  }

  /** Whether {@code id} (non-zero) is one of the older generations. */
  public boolean historyContains(long id) {
    if (id == 0) {
      return false;
    }
    for (long h : history) {
      if (h == id) {
        return true;
      }
    }
    return false;
  }

  /** A new current generation {@code id}; the old current moves to the head of the history. */
  public GenerationIds newGeneration(long id) {
    checkArgument(id != 0, "generation id 0 means none");
    checkArgument(id != current, "generation id %s is already current", id);
    return new GenerationIds(id, bitmap, current == 0 ? history : push(current, history));
  }

  /** {@link #newGeneration(long)} with a {@linkplain #randomId() random} id. */
  public GenerationIds newGeneration() {
    long id;
    do {
      id = randomId();
    } while (id == current);
    return newGeneration(id);
  }

  /**
   * The bitmap starts tracking at the current generation (a primary lost its peer). When it is
   * already tracking, nothing changes: the bitmap still holds every change since the older point,
   * and moving the mark forward would forget them.
   */
  public GenerationIds startTracking() {
    if (bitmap != 0) {
      return this;
    }
    return new GenerationIds(current, current, history);
  }

  /** The bitmap stops tracking (a resync completed, the peer has everything). */
  public GenerationIds clearBitmap() {
    return bitmap == 0 ? this : new GenerationIds(current, 0, history);
  }

  /**
   * This node became a resync target of {@code source} and now holds its data: it takes the
   * source's current generation and history, and keeps no bitmap (its own changes are gone).
   */
  public GenerationIds adoptFrom(GenerationIds source) {
    checkNotNull(source, "source");
    return new GenerationIds(source.current, 0, source.history);
  }

  private static long[] push(long id, long[] history) {
    int n = Math.min(history.length + 1, MAX_HISTORY);
    long[] h = new long[n];
    h[0] = id;
    System.arraycopy(history, 0, h, 1, n - 1);
    return h;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof GenerationIds g
        && g.current == current
        && g.bitmap == bitmap
        && java.util.Arrays.equals(g.history, history);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(current) * 31 + Long.hashCode(bitmap) * 17 + java.util.Arrays.hashCode(history);
  }

  @Override
  public String toString() {
    StringBuilder b = new StringBuilder("GenerationIds{current=").append(Long.toHexString(current))
        .append(", bitmap=").append(Long.toHexString(bitmap)).append(", history=[");
    for (int i = 0; i < history.length; i++) {
      b.append(i == 0 ? "" : ", ").append(Long.toHexString(history[i]));
    }
    return b.append("]}").toString();
  }
}
