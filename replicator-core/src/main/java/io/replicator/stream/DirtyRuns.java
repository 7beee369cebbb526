package io.replicator.stream;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.ArrayList;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.PrimitiveIterator;

/**
 * Groups a file's dirty block numbers (ascending) into runs of consecutive blocks, and the runs
 * into batches that one resync change carries: a batch holds at most {@code maxBlocks} blocks, so
 * a file's scattered blocks travel in a few changes rather than one change each.
 */
final class DirtyRuns {
  /** Consecutive blocks {@code first..last}. */
  record Run(long first, long last) {
    Run {
      checkArgument(first >= 0 && last >= first, "blocks %s..%s", first, last);
    }

    long blocks() {
      return last - first + 1;
    }
  }

  private final PrimitiveIterator.OfLong blocks;
  private final int maxBlocks;
  /** The first block of the next run, already taken from the iterator, or -1. */
  private long pending = -1;
  private long previous = -1;

  /**
   * @param blocks dirty block numbers in strictly ascending order
   * @param maxBlocks most blocks in one batch (and so in one run)
   */
  DirtyRuns(PrimitiveIterator.OfLong blocks, int maxBlocks) {
    checkArgument(maxBlocks > 0, "maxBlocks %s", maxBlocks);
    this.blocks = blocks;
    this.maxBlocks = maxBlocks;
  }

  boolean hasNext() {
    return pending >= 0 || blocks.hasNext();
  }

  /** The next batch: runs in ascending order, {@code maxBlocks} blocks at most in all. */
  List<Run> next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    List<Run> batch = new ArrayList<>();
    long room = maxBlocks;
    while (room > 0 && hasNext()) {
      long first = take();
      long last = first;
      while (last - first + 1 < room && blocks.hasNext()) {
        long b = take();
        if (b != last + 1) {
          pending = b; // starts the next run
          break;
        }
        last = b;
      }
      batch.add(new Run(first, last));
      room -= last - first + 1;
    }
    return batch;
  }

  private long take() {
    long b;
    if (pending >= 0) {
      b = pending;
      pending = -1;
    } else {
      b = blocks.nextLong();
      checkArgument(b > previous, "block %s after %s: not ascending", b, previous);
    }
    previous = b;
    return b;
  }
}
