package io.replicator.meta;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.meta.ActivityLog.Extent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.DisplayNameGeneration;
import org.junit.jupiter.api.DisplayNameGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@DisplayNameGeneration(DisplayNameGenerator.ReplaceUnderscores.class)
class ActivityLogTest {
  private static final long EXTENT = 1 << 20;

  @TempDir Path dir;

  private Path logFile() {
    return dir.resolve(ActivityLog.FILE);
  }

  @Test
  void a_new_log_is_empty() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir)) {
      assertThat(al.found()).isEqualTo(StoreState.NONE);
      assertThat(al.hotExtents()).isEmpty();
      assertThat(al.extentSize()).isEqualTo(4L << 20);
      assertThat(al.maxHotExtents()).isEqualTo(1024);
    }
  }

  @Test
  void writes_into_hot_extents_do_no_io() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 64)) {
      al.beforeWrite("f", 10, 2 * EXTENT); // extents 0, 1, 2
      long syncs = al.fsyncs.get();
      long size = Files.size(logFile());
      for (int i = 0; i < 10_000; i++) {
        al.beforeWrite("f", (i * 4096L) % (3 * EXTENT - 4096), 4096);
      }
      assertThat(al.fsyncs.get()).isEqualTo(syncs);
      assertThat(Files.size(logFile())).isEqualTo(size);
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 0), new Extent("f", 1), new Extent("f", 2));
      al.beforeWrite("f", 3 * EXTENT, 1);
      assertThat(al.fsyncs.get()).isEqualTo(syncs + 1); // one fsync per miss, however many extents
    }
  }

  @Test
  void the_hot_set_stays_bounded_and_keeps_recently_used_extents() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 16)) {
      for (long i = 0; i < 1000; i++) {
        al.beforeWrite("f", i * EXTENT, 1);
        al.beforeWrite("keep", 0, 1); // used all the time: never the least recently used
        assertThat(al.hotCount()).isLessThanOrEqualTo(16);
      }
      assertThat(al.hotExtents()).contains(new Extent("keep", 0), new Extent("f", 999));
    }
  }

  @Test
  void a_write_wider_than_the_bound_keeps_all_its_extents_hot() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 4)) {
      al.beforeWrite("other", 0, 1);
      al.beforeWrite("f", 0, 6 * EXTENT); // in flight: six extents over a bound of four
      assertThat(al.hotExtents()).hasSize(6).doesNotContain(new Extent("other", 0));
    }
  }

  @Test
  void replay_after_reopen_restores_hot_extents_and_paths() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      for (long i = 0; i < 20; i++) {
        al.beforeWrite("f", i * EXTENT, 1);
      }
      al.beforeNamespaceChange("d/renamed");
      Set<Extent> before = al.hotExtents();
      assertThat(al.hotPaths()).containsExactly("d/renamed");
      try (ActivityLog again = ActivityLog.open(dir, EXTENT, 8)) {
        assertThat(again.found()).isEqualTo(StoreState.VALID);
        assertThat(again.hotExtents()).isEqualTo(before);
        assertThat(again.hotPaths()).containsExactly("d/renamed");
        DirtyBitmap bitmap = new DirtyBitmap(4096);
        again.markInto(bitmap);
        assertThat(bitmap.dirtyBytes()).isEqualTo(before.size() * EXTENT);
        assertThat(bitmap.snapshot().paths()).containsExactly("d/renamed");
        assertThat(again.toProto()).hasSize(before.size());
      }
    }
  }

  @Test
  void a_log_keeps_its_own_extent_size() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 5 * EXTENT, 1);
    }
    try (ActivityLog al = ActivityLog.open(dir, 4 * EXTENT, 8)) {
      assertThat(al.extentSize()).isEqualTo(EXTENT);
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 5));
    }
  }

  @Test
  void a_torn_tail_is_dropped_and_the_log_goes_on() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 0, 1);
      al.beforeWrite("f", EXTENT, 1);
    }
    byte[] full = Files.readAllBytes(logFile());
    Files.write(logFile(), Arrays.copyOf(full, full.length - 2));
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.droppedTailBytes()).isPositive();
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 0));
      al.beforeWrite("g", 0, 1);
    }
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.droppedTailBytes()).isZero();
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 0), new Extent("g", 0));
    }
  }

  @Test
  void a_zero_filled_tail_is_a_torn_tail() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 0, 1);
    }
    byte[] full = Files.readAllBytes(logFile());
    Files.write(logFile(), Arrays.copyOf(full, full.length + 4096));
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 0));
    }
  }

  @Test
  void corruption_in_the_middle_is_reported() throws IOException {
    long firstFrameEnd;
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 0, 1);
      firstFrameEnd = al.fileSize();
      al.beforeWrite("f", EXTENT, 1);
      al.beforeWrite("f", 2 * EXTENT, 1);
    }
    byte[] bytes = Files.readAllBytes(logFile());
    bytes[(int) firstFrameEnd + 6] ^= 0x01; // inside the second frame; a third follows
    Files.write(logFile(), bytes);
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.CORRUPT);
      assertThat(al.hotExtents()).contains(new Extent("f", 0));
      assertThat(Files.exists(dir.resolve(ActivityLog.CORRUPT_COPY))).isTrue();
      al.beforeWrite("g", 0, 1);
    }
    // The damage was set aside: the log written since is clean.
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.hotExtents()).contains(new Extent("f", 0), new Extent("g", 0));
    }
  }

  @Test
  void a_damaged_header_is_corrupt() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 0, 1);
    }
    byte[] bytes = Files.readAllBytes(logFile());
    bytes[0] ^= 0x10;
    Files.write(logFile(), bytes);
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.CORRUPT);
    }
  }

  @Test
  void compaction_keeps_the_hot_set_and_bounds_the_file() throws IOException {
    Set<Extent> hot;
    long maxSize = 0;
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.compactMinRecords = 8;
      for (long i = 0; i < 2000; i++) {
        al.beforeWrite("f", i * EXTENT, 1);
        maxSize = Math.max(maxSize, al.fileSize()); // the file holds zeros reserved beyond it
      }
      hot = al.hotExtents();
      assertThat(hot).hasSizeLessThanOrEqualTo(8);
    }
    // 4x the records of a bounded hot set plus one append: a few KiB, not 2000 records.
    assertThat(maxSize).isLessThan(4 * 8 * 30 + 4096);
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.hotExtents()).isEqualTo(hot);
    }
  }

  @Test
  void clear_makes_everything_cold_durably() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 0, 1);
      al.beforeNamespaceChange("g");
      al.clear();
      assertThat(al.hotExtents()).isEmpty();
      assertThat(al.hotPaths()).isEmpty();
      al.beforeWrite("h", 0, 1);
    }
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.hotExtents()).containsExactly(new Extent("h", 0));
      assertThat(al.hotPaths()).isEmpty();
    }
  }

  /** kill -9 at any moment: every prefix of the log opens, and every frame wholly before the cut is there. */
  @Test
  void cut_at_every_byte_never_throws_and_never_loses_a_synced_record() throws IOException {
    List<Long> frameEnds = new ArrayList<>();
    List<Set<Extent>> hotAfter = new ArrayList<>();
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 4)) {
      frameEnds.add(al.fileSize());
      hotAfter.add(al.hotExtents());
      for (long i = 0; i < 10; i++) {
        al.beforeWrite(i % 2 == 0 ? "a" : "dir/b", i * EXTENT, 1); // evictions start after four
        frameEnds.add(al.fileSize());
        hotAfter.add(al.hotExtents());
      }
    }
    byte[] full = Files.readAllBytes(logFile());
    Path copy = Files.createDirectory(dir.resolve("cut"));
    for (int cut = 0; cut <= full.length; cut++) {
      Files.write(copy.resolve(ActivityLog.FILE), Arrays.copyOf(full, cut));
      try (ActivityLog al = ActivityLog.open(copy, EXTENT, 4)) {
        int complete = 0;
        for (int f = 0; f < frameEnds.size(); f++) {
          if (frameEnds.get(f) <= cut) {
            complete = f;
          }
        }
        if (cut < frameEnds.get(0)) {
          assertThat(al.found()).as("cut %d in the header", cut).isEqualTo(StoreState.CORRUPT);
        } else {
          assertThat(al.found()).as("cut %d", cut).isEqualTo(StoreState.VALID);
          assertThat(al.hotExtents()).as("cut %d", cut).isEqualTo(hotAfter.get(complete));
        }
      }
    }
  }

  @Test
  void concurrent_writers_all_end_up_covered() throws Exception {
    Set<Extent> expected;
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 4096)) {
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          int thread = t;
          futures.add(pool.submit(() -> {
            for (int i = 0; i < 200; i++) {
              al.beforeWrite("f" + (i % 5), (long) ((i * 7 + thread) % 100) * EXTENT, 100);
            }
            return null;
          }));
        }
        for (Future<?> f : futures) {
          f.get();
        }
      } finally {
        pool.shutdown();
      }
      Set<Extent> hot = new HashSet<>(al.hotExtents());
      expected = al.hotExtents();
      try (ActivityLog again = ActivityLog.open(dir.resolve("none"), EXTENT, 1)) {
        assertThat(again.hotExtents()).isEmpty();
      }
      for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 200; i++) {
          assertThat(hot).contains(new Extent("f" + (i % 5), (i * 7 + t) % 100));
        }
      }
    }
    try (ActivityLog again = ActivityLog.open(dir, EXTENT, 4096)) {
      assertThat(again.hotExtents()).isEqualTo(expected);
    }
  }

  @Test
  void a_sequential_stream_records_extents_ahead_so_it_costs_few_fsyncs() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 1024)) {
      long syncs = al.fsyncs.get();
      for (long i = 0; i < 64; i++) {
        al.beforeWrite("big", i * EXTENT, EXTENT); // one extent per write, in order
      }
      // the first extent, then one record for every AHEAD + 1 extents after it
      assertThat(al.fsyncs.get() - syncs).isLessThanOrEqualTo(1 + 64 / (ActivityLog.AHEAD + 1) + 1);
      for (long i = 0; i < 64; i++) {
        assertThat(al.hotExtents()).contains(new Extent("big", i));
      }
    }
  }

  @Test
  void a_file_created_at_the_root_records_its_name_and_first_extent_at_once() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 64)) {
      long syncs = al.fsyncs.get();
      al.beforeCreate("new");
      al.beforeWrite("new", 0, 4096);
      assertThat(al.fsyncs.get() - syncs).isEqualTo(1);
      assertThat(al.hotPaths()).containsExactly("new");
      assertThat(al.hotExtents()).containsExactly(new Extent("new", 0));
    }
    try (ActivityLog again = ActivityLog.open(dir, EXTENT, 64)) {
      assertThat(again.hotPaths()).containsExactly("new");
      assertThat(again.hotExtents()).containsExactly(new Extent("new", 0));
    }
  }

  @Test
  void files_created_in_one_directory_share_one_record_and_a_crash_reconciles_the_directory() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 64)) {
      long syncs = al.fsyncs.get();
      for (int i = 0; i < 1000; i++) {
        al.beforeCreate("d/sub/f" + i);
        al.beforeWrite("d/sub/f" + i, 0, 4096);
      }
      // a thousand files, and not one entry of their own: the hot set stays far below its bound
      assertThat(al.fsyncs.get() - syncs).isEqualTo(1);
      assertThat(al.hotPaths()).containsExactly("d/sub");
      assertThat(al.hotExtents()).isEmpty();
      assertThat(al.hotCount()).isEqualTo(1);
    }
    try (ActivityLog again = ActivityLog.open(dir, EXTENT, 64)) {
      assertThat(again.hotPaths()).containsExactly("d/sub");
      DirtyBitmap bitmap = new DirtyBitmap(4096);
      again.markInto(bitmap);
      // the directory is reconciled whole: every name in it, and every file's content by checksums
      assertThat(bitmap.snapshot().paths()).containsExactly("d/sub");
      assertThat(again.toProto()).isEmpty(); // extents only; the path goes to the peer as a hot path
    }
  }

  @Test
  void a_directorys_entries_cover_only_the_first_extent_of_its_files() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 64)) {
      al.beforeCreate("d/f");
      long syncs = al.fsyncs.get();
      al.beforeWrite("d/f", 0, EXTENT);
      al.beforeWrite("d/other", 100, 10); // an older file of the same directory: its first extent too
      assertThat(al.fsyncs.get() - syncs).isZero();
      al.beforeWrite("d/f", EXTENT, 4096); // past the first extent: an extent of its own
      assertThat(al.fsyncs.get() - syncs).isEqualTo(1);
      assertThat(al.hotExtents()).contains(new Extent("d/f", 1)).doesNotContain(new Extent("d/f", 0));
      al.beforeWrite("d/sub/g", 0, 10); // a subdirectory's file is not the directory's entry
      assertThat(al.hotExtents()).contains(new Extent("d/sub/g", 0));
    }
  }

  @Test
  void a_log_with_directory_entries_survives_eviction_and_compaction() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.compactMinRecords = 4;
      for (int i = 0; i < 40; i++) {
        al.beforeCreate("dir" + i + "/f");
      }
      assertThat(al.hotCount()).isLessThanOrEqualTo(8);
      assertThat(al.hotPaths()).contains("dir39");
      Set<String> expected = al.hotPaths();
      try (ActivityLog again = ActivityLog.open(dir.resolve("none"), EXTENT, 8)) {
        assertThat(again.hotPaths()).isEmpty();
      }
      al.close();
      try (ActivityLog again = ActivityLog.open(dir, EXTENT, 8)) {
        assertThat(again.found()).isEqualTo(StoreState.VALID);
        assertThat(again.hotPaths()).isEqualTo(expected);
      }
    }
  }

  @Test
  void appends_overwrite_reserved_zeros_and_a_clean_close_gives_them_back() throws IOException {
    long logical;
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 64)) {
      long reserved = Files.size(logFile());
      assertThat(reserved).isGreaterThan(al.fileSize());
      for (long i = 0; i < 20; i++) {
        al.beforeWrite("f" + i, 0, 1);
      }
      assertThat(Files.size(logFile())).as("the file did not grow").isEqualTo(reserved);
      logical = al.fileSize();
    }
    assertThat(Files.size(logFile())).isEqualTo(logical);
  }

  @Test
  void an_append_torn_in_reserved_space_is_a_torn_tail() throws IOException {
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      al.beforeWrite("f", 0, 1);
    }
    byte[] full = Files.readAllBytes(logFile());
    // a crash in the middle of the next append: its length and part of its body, then the zeros
    byte[] torn = Arrays.copyOf(full, full.length + 4096);
    torn[full.length + 3] = 40;
    torn[full.length + 4] = 1;
    torn[full.length + 5] = 7;
    Files.write(logFile(), torn);
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.droppedTailBytes()).isPositive();
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 0));
      al.beforeWrite("g", 0, 1);
    }
    try (ActivityLog al = ActivityLog.open(dir, EXTENT, 8)) {
      assertThat(al.found()).isEqualTo(StoreState.VALID);
      assertThat(al.hotExtents()).containsExactly(new Extent("f", 0), new Extent("g", 0));
    }
  }
}
