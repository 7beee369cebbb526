package io.replicator.meta;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.jimfs.Configuration;
import com.google.common.jimfs.Jimfs;
import java.nio.file.FileSystem;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Writers that hit hot extents while others force retirements never see an exception from the log.
 * The race is in memory (sorting entries whose last use other threads update), so the log lives on
 * jimfs: tens of thousands of appends cost no fsyncs, and the test does not depend on the disk.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ActivityLogConcurrencyTest {

  @Test
  void hitsDuringRetirementNeverBreakTheWrite() throws Exception {
    long seed = System.nanoTime();
    try (FileSystem fs = Jimfs.newFileSystem(Configuration.unix());
        ActivityLog log = ActivityLog.open(fs.getPath("/meta"), 4096, 4096)) {
      ExecutorService pool = Executors.newFixedThreadPool(6);
      try {
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < 6; t++) {
          Random rnd = new Random(seed + t);
          boolean hitter = t < 4;
          futures.add(pool.submit(() -> {
            for (int i = 0; i < 40_000; i++) {
              // hitters touch a small hot set over and over; the others walk new extents, which
              // retires old ones while the hitters update their last use
              long extent = hitter ? rnd.nextInt(3500) : 10_000 + rnd.nextInt(1_000_000);
              log.beforeWrite("f" + (extent % 7), extent * 4096, 10);
            }
            return null;
          }));
        }
        for (Future<?> f : futures) {
          f.get(50, TimeUnit.SECONDS);
        }
      } finally {
        pool.shutdownNow();
      }
      assertThat(log.hotCount()).as("seed %d", seed).isLessThanOrEqualTo(4096 + 1);
    }
  }
}
