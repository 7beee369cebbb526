package io.replicator.bench;

import io.replicator.NodeState;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.change.FileChange;
import io.replicator.fs.ChangeSink;
import io.replicator.fs.ReplicatedFileSystemProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A positional write to the default file system three ways: a plain {@link FileChannel} (the
 * baseline), through the file system wrapper with a sink that does nothing (the wrapper's own
 * cost: locks, change records), and through a primary opened with the public API whose peer is
 * absent (state ALONE: the first write starts a generation, every write marks the dirty bitmap and
 * the activity log). No fsync: the figures are the CPU cost above the page cache.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class WrapperWriteBench {
  /** Writes cycle over this many bytes of one file, so the file stays in the page cache. */
  private static final long REGION = 64L << 20;

  @Param({"4096", "1048576"})
  int writeBytes;

  private Path work;
  private FileChannel plain;
  private ReplicatedFileSystem wrapperOnly;
  private FileChannel viaWrapper;
  private ReplicatedFileSystem alone;
  private FileChannel viaAlonePrimary;
  private ByteBuffer data;
  private long position;

  @Setup(Level.Trial)
  public void setUp() throws IOException {
    work = Files.createTempDirectory("replicator-wrapper-bench-");
    byte[] bytes = new byte[writeBytes];
    new Random(1).nextBytes(bytes);
    data = ByteBuffer.allocateDirect(writeBytes).put(bytes).flip();

    Path plainDir = Files.createDirectories(work.resolve("plain"));
    plain = FileChannel.open(plainDir.resolve("f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);

    wrapperOnly = ReplicatedFileSystemProvider.open(Files.createDirectories(work.resolve("wrapper")), new NoSink());
    viaWrapper = FileChannel.open(wrapperOnly.getPath("/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);

    alone = Replicator.primary(work.resolve("alone")).peer(new InetSocketAddress("127.0.0.1", LoopbackPorts.unused()))
        .nodeId("bench-alone").connectTimeout(Duration.ofMillis(200)).open();
    viaAlonePrimary = FileChannel.open(alone.getPath("/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
  }

  @TearDown(Level.Trial)
  public void tearDown() throws IOException {
    plain.close();
    viaWrapper.close();
    wrapperOnly.close();
    viaAlonePrimary.close();
    alone.close();
    TempTrees.delete(work);
  }

  @Benchmark
  public int plainFileChannel() throws IOException {
    return plain.write(data.duplicate(), nextPosition());
  }

  @Benchmark
  public int wrapperNoPeer() throws IOException {
    return viaWrapper.write(data.duplicate(), nextPosition());
  }

  @Benchmark
  public int primaryAlone() throws IOException {
    return viaAlonePrimary.write(data.duplicate(), nextPosition());
  }

  private long nextPosition() {
    long p = position;
    position = (position + writeBytes) % REGION;
    return p;
  }

  /** A sink that accepts every change and replicates nothing. */
  private static final class NoSink implements ChangeSink {
    @Override
    public void beforeLocalChange(FileChange change) {}

    @Override
    public Completion submit(FileChange change) {
      return Completion.DONE;
    }

    @Override
    public ReplicationStatus status() {
      return new ReplicationStatus(NodeState.ALONE, ReplicationMode.SYNC, Optional.empty(), false, false,
          Optional.empty(), 0, 0, 0, 0, 0, 0, Optional.empty());
    }

    @Override
    public void close() {}
  }
}
