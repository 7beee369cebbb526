package io.replicator.meta;

import java.util.PrimitiveIterator;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The dirty-block bitmap on the shape the resync case produces: one 2 GiB file with 1% of its
 * 4 KiB blocks dirty, scattered. Marking is on the write path of a primary without its peer;
 * clearing and iterating are on the resync path.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class DirtyBitmapBench {
  private static final long FILE_BYTES = 2L << 30;
  private static final int BLOCK = DirtyBitmap.DEFAULT_BLOCK_SIZE;
  private static final long BLOCKS = FILE_BYTES / BLOCK;
  private static final String PATH = "data/file-0";

  private DirtyBitmap bitmap;
  private DirtyBitmap.Snapshot snapshot;
  private long[] positions;
  private int next;

  @Setup(Level.Trial)
  public void setUp() {
    SplittableRandom rnd = new SplittableRandom(1);
    bitmap = new DirtyBitmap();
    for (long i = 0; i < BLOCKS / 100; i++) {
      bitmap.markWrite(PATH, rnd.nextLong(BLOCKS) * BLOCK, BLOCK);
    }
    snapshot = bitmap.snapshot();
    positions = new long[1 << 16];
    for (int i = 0; i < positions.length; i++) {
      positions[i] = rnd.nextLong(BLOCKS) * BLOCK;
    }
  }

  /** One 4 KiB write at a random place, into a bitmap already holding 1% of the file. */
  @Benchmark
  public void markWrite4k() {
    bitmap.markWrite(PATH, positions[next++ & (positions.length - 1)], BLOCK);
  }

  /** A dirty block's whole life: marked by a write, cleared when the peer acknowledged it. */
  @Benchmark
  public void markThenClear() {
    long position = positions[next++ & (positions.length - 1)];
    bitmap.markWrite("data/other", position, BLOCK);
    bitmap.clearBlock("data/other", position / BLOCK);
  }

  /** Walking the dirty blocks of a snapshot, as a resync does: 1% of 2 GiB (5,242 blocks) per call. */
  @Benchmark
  public long iterateOnePercentOf2GiB() {
    long sum = 0;
    PrimitiveIterator.OfLong it = snapshot.blocks(PATH);
    while (it.hasNext()) {
      sum += it.nextLong();
    }
    return sum;
  }

  /** Taking the snapshot a resync starts from (a copy of the compressed bitmap). */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public DirtyBitmap.Snapshot snapshotOnePercentOf2GiB() {
    return bitmap.snapshot();
  }
}
