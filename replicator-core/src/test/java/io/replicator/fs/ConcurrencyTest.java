package io.replicator.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Eight threads write, append and truncate overlapping ranges of a few shared files while a sink
 * applies the changes sequentially in submit order: the mirror must end byte-for-byte equal to the
 * delegate, which holds only if submit order is local order for every file.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ConcurrencyTest {

  private static final int THREADS = 8;
  private static final int OPERATIONS = 400;
  private static final int FILES = 3;

  @TempDir Path tempDir;

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void submitOrderIsLocalOrderPerFile(FsKind kind) throws Exception {
    long seed = System.nanoTime();
    try (Fixture f = Fixture.open(kind, tempDir)) {
      for (int i = 0; i < FILES; i++) {
        Files.createFile(f.path("/file" + i));
      }
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      try {
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
          long threadSeed = seed + t;
          futures.add(pool.submit(() -> {
            work(f, new Random(threadSeed));
            return null;
          }));
        }
        for (Future<?> future : futures) {
          future.get(100, TimeUnit.SECONDS);
        }
      } catch (Throwable e) {
        throw new AssertionError("failed with seed " + seed, e);
      } finally {
        pool.shutdownNow();
      }
      try {
        f.assertMirrored();
      } catch (AssertionError e) {
        throw new AssertionError("mirror differs with seed " + seed, e);
      }
      assertThat(f.sink.changes().size()).isGreaterThan(THREADS * OPERATIONS / 2);
    }
  }

  private static void work(Fixture f, Random random) throws Exception {
    FileChannel[] channels = new FileChannel[FILES];
    FileChannel[] appenders = new FileChannel[FILES];
    try {
      for (int i = 0; i < FILES; i++) {
        channels[i] = FileChannel.open(f.path("/file" + i), StandardOpenOption.WRITE);
        appenders[i] = FileChannel.open(f.path("/file" + i), StandardOpenOption.APPEND);
      }
      for (int op = 0; op < OPERATIONS; op++) {
        int file = random.nextInt(FILES);
        byte[] data = new byte[1 + random.nextInt(2048)];
        random.nextBytes(data);
        switch (random.nextInt(10)) {
          case 0:
            channels[file].truncate(random.nextInt(16_384));
            break;
          case 1:
          case 2:
            appenders[file].write(ByteBuffer.wrap(data));
            break;
          case 3:
            ByteBuffer half = ByteBuffer.wrap(data, 0, data.length / 2);
            ByteBuffer rest = ByteBuffer.wrap(data, data.length / 2, data.length - data.length / 2);
            channels[file].position(random.nextInt(16_384));
            channels[file].write(new ByteBuffer[] {half, rest});
            break;
          default:
            channels[file].write(ByteBuffer.wrap(data), random.nextInt(16_384));
            break;
        }
      }
    } finally {
      for (int i = 0; i < FILES; i++) {
        if (channels[i] != null) {
          channels[i].close();
        }
        if (appenders[i] != null) {
          appenders[i].close();
        }
      }
    }
  }
}
