package io.replicator.meta;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Block checksums (128-bit XXH3) as the full resync and verify compute them: one 4 KiB block in
 * memory, and a run of 256 blocks (1 MiB) read from a file that sits in the page cache.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class BlockChecksumsBench {
  private static final int BLOCK = 4096;

  private final byte[] block = new byte[BLOCK];
  private final byte[] out = new byte[BlockChecksums.SIZE];
  private Path file;
  private FileChannel channel;

  @Setup(Level.Trial)
  public void setUp() throws IOException {
    new Random(1).nextBytes(block);
    file = Files.createTempFile("replicator-checksums-", ".dat");
    channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
    byte[] mib = new byte[1 << 20];
    new Random(2).nextBytes(mib);
    channel.write(ByteBuffer.wrap(mib), 0);
  }

  @TearDown(Level.Trial)
  public void tearDown() throws IOException {
    channel.close();
    Files.deleteIfExists(file);
  }

  @Benchmark
  public byte[] hashOneBlock() {
    BlockChecksums.hash(block, 0, BLOCK, out, 0);
    return out;
  }

  /** 256 blocks read with positional reads and hashed: 1 MiB per call. */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public byte[] hashBlocksOfOneMiBFile() throws IOException {
    return BlockChecksums.hashBlocks(channel, 0, 256, BLOCK);
  }
}
