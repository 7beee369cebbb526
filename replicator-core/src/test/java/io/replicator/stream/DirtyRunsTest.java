package io.replicator.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class DirtyRunsTest {

  @Test
  void scatteredBlocksShareOneBatchUpToItsSize() {
    assertThat(batches(4, 1, 3, 5, 7, 9, 11)).isEqualTo(List.of(
        List.of(run(1, 1), run(3, 3), run(5, 5), run(7, 7)),
        List.of(run(9, 9), run(11, 11))));
  }

  @Test
  void consecutiveBlocksAreOneRunCutWhereTheBatchIsFull() {
    assertThat(batches(4, 0, 1, 2, 3, 4, 5, 9)).isEqualTo(List.of(
        List.of(run(0, 3)),
        List.of(run(4, 5), run(9, 9))));
    assertThat(batches(4, 0, 2, 3, 4, 5, 6)).isEqualTo(List.of(
        List.of(run(0, 0), run(2, 4)),
        List.of(run(5, 6))));
  }

  @Test
  void noBlocksNoBatches() {
    assertThat(batches(4)).isEmpty();
    assertThat(batches(1, 7)).isEqualTo(List.of(List.of(run(7, 7))));
  }

  @Test
  void blocksOutOfOrderAreRefused() {
    DirtyRuns runs = new DirtyRuns(LongStream.of(3, 2).iterator(), 8);
    assertThatThrownBy(runs::next).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not ascending");
  }

  @Test
  void everyBlockIsInExactlyOneRunAndNoBatchIsOverfull() {
    Random random = new Random(42);
    for (int trial = 0; trial < 500; trial++) {
      TreeSet<Long> blocks = new TreeSet<>();
      int count = random.nextInt(300);
      for (int i = 0; i < count; i++) {
        blocks.add((long) random.nextInt(random.nextBoolean() ? 400 : 100_000));
      }
      int max = 1 + random.nextInt(64);
      List<Long> seen = new ArrayList<>();
      for (List<DirtyRuns.Run> batch : batches(max, blocks.stream().mapToLong(Long::longValue).toArray())) {
        assertThat(batch.stream().mapToLong(DirtyRuns.Run::blocks).sum()).isBetween(1L, (long) max);
        for (DirtyRuns.Run r : batch) {
          for (long b = r.first(); b <= r.last(); b++) {
            seen.add(b);
          }
        }
      }
      assertThat(seen).as("trial %d", trial).containsExactlyElementsOf(blocks);
    }
  }

  private static DirtyRuns.Run run(long first, long last) {
    return new DirtyRuns.Run(first, last);
  }

  private static List<List<DirtyRuns.Run>> batches(int max, long... blocks) {
    DirtyRuns runs = new DirtyRuns(LongStream.of(blocks).iterator(), max);
    List<List<DirtyRuns.Run>> out = new ArrayList<>();
    while (runs.hasNext()) {
      out.add(runs.next());
    }
    return out;
  }
}
