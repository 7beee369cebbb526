package io.replicator.meta;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.PrimitiveIterator;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.DisplayNameGeneration;
import org.junit.jupiter.api.DisplayNameGenerator;
import org.junit.jupiter.api.Test;

@DisplayNameGeneration(DisplayNameGenerator.ReplaceUnderscores.class)
class DirtyBitmapTest {

  private static List<Long> blocks(DirtyBitmap.Snapshot s, String path) {
    List<Long> out = new ArrayList<>();
    s.forEachBlock(path, out::add);
    return out;
  }

  @Test
  void a_write_marks_every_block_it_touches() {
    DirtyBitmap b = new DirtyBitmap(4096);
    b.markWrite("a", 4095, 2); // straddles blocks 0 and 1
    b.markWrite("a", 3 * 4096, 4096); // exactly block 3
    b.markWrite("a", 100, 0); // nothing
    DirtyBitmap.Snapshot s = b.snapshot();
    assertThat(blocks(s, "a")).containsExactly(0L, 1L, 3L);
    assertThat(s.dirtyBlocks()).isEqualTo(3);
    assertThat(s.dirtyBytes()).isEqualTo(3 * 4096);
    assertThat(s.paths()).isEmpty();
    assertThat(s.files()).containsExactly("a");
  }

  @Test
  void a_write_at_the_largest_offsets_does_not_overflow() {
    DirtyBitmap b = new DirtyBitmap();
    b.markWrite("big", Long.MAX_VALUE - 10, 100);
    assertThat(blocks(b.snapshot(), "big")).containsExactly(Long.MAX_VALUE >>> 12);
  }

  @Test
  void block_size_must_be_a_power_of_two() {
    assertThatThrownBy(() -> new DirtyBitmap(3000)).isInstanceOf(IllegalArgumentException.class);
    assertThat(new DirtyBitmap(512).blockSize()).isEqualTo(512);
  }

  @Test
  void move_carries_blocks_of_the_subtree_and_marks_both_names() {
    DirtyBitmap b = new DirtyBitmap(4096);
    b.markWrite("d/x", 0, 1);
    b.markWrite("d/sub/y", 8192, 1);
    b.markWrite("d.txt", 0, 1); // a sibling that sorts near "d": must stay
    b.markWrite("e/old", 0, 1); // what the target held is gone
    b.markMove("d", "e");
    DirtyBitmap.Snapshot s = b.snapshot();
    assertThat(s.files()).containsExactly("d.txt", "e/sub/y", "e/x");
    assertThat(blocks(s, "e/sub/y")).containsExactly(2L);
    assertThat(s.paths()).containsExactly("d", "e");
  }

  @Test
  void delete_drops_blocks_under_the_path_and_marks_it() {
    DirtyBitmap b = new DirtyBitmap();
    b.markWrite("d/x", 0, 1);
    b.markWrite("d", 0, 1);
    b.markWrite("d-2/x", 0, 1);
    b.markDelete("d");
    assertThat(b.snapshot().files()).containsExactly("d-2/x");
    assertThat(b.snapshot().paths()).containsExactly("d");
  }

  @Test
  void truncate_drops_blocks_wholly_beyond_the_new_size() {
    DirtyBitmap b = new DirtyBitmap(4096);
    b.markWrite("f", 0, 10 * 4096);
    b.markWrite("f", 1L << 40, 1);
    b.markTruncate("f", 4096 + 1); // block 1 holds the new end and stays
    assertThat(blocks(b.snapshot(), "f")).containsExactly(0L, 1L);
    b.markTruncate("f", 0);
    assertThat(b.snapshot().files()).isEmpty();
    assertThat(b.snapshot().paths()).containsExactly("f");
  }

  @Test
  void clearing_blocks_and_paths() {
    DirtyBitmap b = new DirtyBitmap();
    b.markWrite("f", 0, 2 * 4096);
    b.markPath("f");
    b.clearPath("f");
    assertThat(b.snapshot().paths()).isEmpty();
    assertThat(b.dirtyBlocks()).isEqualTo(2); // reconciling the entry keeps its blocks
    b.clearBlock("f", 0);
    b.clearBlock("f", 1);
    b.clearBlock("nothing", 1);
    assertThat(b.isEmpty()).isTrue();
    b.markPath("g");
    b.clearAll();
    assertThat(b.isEmpty()).isTrue();
  }

  @Test
  void snapshot_is_immutable() {
    DirtyBitmap b = new DirtyBitmap();
    b.markWrite("f", 0, 1);
    DirtyBitmap.Snapshot s = b.snapshot();
    b.markWrite("f", 4096, 1);
    b.markPath("g");
    assertThat(blocks(s, "f")).containsExactly(0L);
    assertThat(s.paths()).isEmpty();
    assertThatThrownBy(() -> s.paths().add("x")).isInstanceOf(UnsupportedOperationException.class);
    PrimitiveIterator.OfLong none = s.blocks("missing");
    assertThat(none.hasNext()).isFalse();
  }

  @Test
  void union_and_hot_extents() {
    DirtyBitmap mine = new DirtyBitmap(4096);
    mine.markWrite("f", 0, 1);
    DirtyBitmap peers = new DirtyBitmap(4096);
    peers.markExtent("f", 1, 4 << 20); // blocks 1024..2047
    peers.markPath("p");
    mine.union(peers);
    assertThat(mine.dirtyBlocks()).isEqualTo(1 + 1024);
    assertThat(mine.snapshot().blocks("f").nextLong()).isZero();
    assertThat(mine.snapshot().paths()).containsExactly("p");
    assertThatThrownBy(() -> mine.union(new DirtyBitmap(512))).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void bad_paths_are_refused() {
    DirtyBitmap b = new DirtyBitmap();
    assertThatThrownBy(() -> b.markWrite("/abs", 0, 1)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> b.markPath("a/../b")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> b.markMove("", "x")).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void serialization_round_trip() throws IOException {
    DirtyBitmap b = new DirtyBitmap(8192);
    b.markWrite("a/é", 0, 100_000);
    b.markWrite("z", 1L << 45, 1);
    b.markPath("p");
    b.markPath("q/r");
    DirtyBitmap back = DirtyBitmap.deserialize(b.serialize());
    assertThat(back.blockSize()).isEqualTo(8192);
    assertThat(back.snapshot().files()).containsExactly("a/é", "z");
    assertThat(blocks(back.snapshot(), "a/é")).isEqualTo(blocks(b.snapshot(), "a/é"));
    assertThat(blocks(back.snapshot(), "z")).containsExactly((1L << 45) / 8192);
    assertThat(back.snapshot().paths()).containsExactly("p", "q/r");
  }

  @Test
  void the_kept_count_of_dirty_blocks_matches_a_recount_after_any_sequence_of_changes() throws IOException {
    // status() reads the kept count; a recount of a snapshot is the reference
    String[] names = {"a", "a/b", "a/b/c", "a/d", "a.txt", "e", "e/f", ""};
    for (long seed = 0; seed < 200; seed++) {
      Random random = new Random(seed);
      DirtyBitmap b = new DirtyBitmap(4096);
      DirtyBitmap other = new DirtyBitmap(4096);
      for (int step = 0; step < 60; step++) {
        String path = names[random.nextInt(names.length - 1)];
        String anywhere = names[random.nextInt(names.length)];
        switch (random.nextInt(9)) {
          case 0, 1 -> b.markWrite(path, random.nextInt(64) * 1024L, 1 + random.nextInt(40_000));
          case 2 -> b.markTruncate(path, random.nextInt(80_000));
          case 3 -> b.markDelete(anywhere);
          case 4 -> {
            String target = names[random.nextInt(names.length - 1)];
            if (!within(target, path) && !within(path, target)) {
              b.markMove(path, target, random.nextBoolean());
            }
          }
          case 5 -> b.clearBlock(path, random.nextInt(12));
          case 6 -> {
            other.markWrite(path, random.nextInt(64) * 1024L, 1 + random.nextInt(20_000));
            b.union(other);
          }
          case 7 -> b.markExtent(path, random.nextInt(3), 16_384);
          default -> {
            if (random.nextInt(10) == 0) {
              b.clearAll();
            }
          }
        }
        assertThat(b.dirtyBlocks()).as("seed %s step %s", seed, step).isEqualTo(b.snapshot().dirtyBlocks());
      }
      assertThat(DirtyBitmap.deserialize(b.serialize()).dirtyBlocks()).as("seed %s", seed)
          .isEqualTo(b.snapshot().dirtyBlocks());
    }
  }

  /** Whether {@code path} is {@code ancestor} or lies under it (a move into itself is not a case here). */
  private static boolean within(String path, String ancestor) {
    return ancestor.isEmpty() || path.equals(ancestor) || path.startsWith(ancestor + "/");
  }

  @Test
  void damaged_serialization_is_an_io_exception_never_a_crash() {
    DirtyBitmap b = new DirtyBitmap();
    b.markWrite("a", 0, 1 << 20);
    b.markWrite("b", 1 << 30, 1);
    b.markPath("p");
    byte[] good = b.serialize();
    Random random = new Random(1);
    for (int cut = 0; cut < good.length; cut++) {
      byte[] truncated = java.util.Arrays.copyOf(good, cut);
      assertThatThrownBy(() -> DirtyBitmap.deserialize(truncated)).isInstanceOf(IOException.class);
    }
    for (int i = 0; i < 2000; i++) {
      byte[] flipped = good.clone();
      flipped[random.nextInt(flipped.length)] ^= (byte) (1 + random.nextInt(255));
      try {
        DirtyBitmap.deserialize(flipped); // may happen to parse; must not throw anything else
      } catch (IOException expected) {
        // fine
      }
    }
  }

  @Test
  void one_percent_of_a_tebibyte_file_stays_small() {
    DirtyBitmap b = new DirtyBitmap(4096);
    long blocksInFile = (1L << 40) / 4096; // 2^28
    Random random = new Random(42);
    // Scattered single blocks: the worst case for compression.
    int scattered = (int) (blocksInFile / 100);
    for (int i = 0; i < scattered; i++) {
      long block = (long) (random.nextDouble() * blocksInFile);
      b.markWrite("scattered", block * 4096, 4096);
    }
    // Runs of 1 MiB: the usual case for sequential writers.
    long runs = blocksInFile / 100 / 256;
    for (long i = 0; i < runs; i++) {
      long block = (long) (random.nextDouble() * (blocksInFile - 256));
      b.markWrite("runs", block * 4096, 1 << 20);
    }
    DirtyBitmap.Snapshot s = b.snapshot();
    long plainBitsetBytes = blocksInFile / 8; // 32 MiB per file
    DirtyBitmap scatteredOnly = new DirtyBitmap(4096);
    DirtyBitmap runsOnly = new DirtyBitmap(4096);
    scatteredOnly.union(b);
    runsOnly.union(b);
    scatteredOnly.markDelete("runs");
    runsOnly.markDelete("scattered");
    int scatteredBytes = scatteredOnly.serialize().length;
    int runsBytes = runsOnly.serialize().length;
    System.out.printf("1%% of 1 TiB: scattered %d blocks -> %d bytes; runs %d blocks -> %d bytes; bitset %d bytes%n",
        s.blockCount("scattered"), scatteredBytes, s.blockCount("runs"), runsBytes, plainBitsetBytes);
    assertThat(s.blockCount("scattered")).isGreaterThan(scattered * 99L / 100);
    // About two bytes per scattered block; a bitset would take 32 MiB.
    assertThat(scatteredBytes).isLessThan((int) (s.blockCount("scattered") * 2.2) + 64 * 1024);
    assertThat(runsBytes).isLessThan(256 * 1024);
  }

  @Test
  void concurrent_marks_are_all_kept() throws Exception {
    DirtyBitmap b = new DirtyBitmap(4096);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        int thread = t;
        futures.add(pool.submit(() -> {
          for (int i = 0; i < 10_000; i++) {
            b.markWrite("f" + (i % 3), (long) (i * 4 + thread) * 4096, 1);
            if (i % 1000 == 0) {
              b.snapshot();
            }
          }
        }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
    assertThat(b.dirtyBlocks()).isEqualTo(40_000);
  }
}
