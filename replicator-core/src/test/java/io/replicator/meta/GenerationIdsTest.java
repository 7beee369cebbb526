package io.replicator.meta;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.DisplayNameGeneration;
import org.junit.jupiter.api.DisplayNameGenerator;
import org.junit.jupiter.api.Test;

@DisplayNameGeneration(DisplayNameGenerator.ReplaceUnderscores.class)
class GenerationIdsTest {

  @Test
  void new_generation_pushes_the_current_into_history_newest_first() {
    GenerationIds ids = GenerationIds.NONE.newGeneration(1).newGeneration(2).newGeneration(3);
    assertThat(ids.current()).isEqualTo(3);
    assertThat(ids.history()).containsExactly(2L, 1L);
    assertThat(ids.bitmap()).isZero();
  }

  @Test
  void history_is_bounded_to_eight() {
    GenerationIds ids = GenerationIds.NONE;
    for (int i = 1; i <= 20; i++) {
      ids = ids.newGeneration(i);
    }
    assertThat(ids.history()).hasSize(GenerationIds.MAX_HISTORY).first().isEqualTo(19L);
    assertThat(ids.history()).last().isEqualTo(12L);
  }

  @Test
  void start_tracking_marks_the_current_and_keeps_an_older_mark() {
    GenerationIds ids = GenerationIds.NONE.newGeneration(7).startTracking();
    assertThat(ids.bitmap()).isEqualTo(7);
    GenerationIds later = ids.newGeneration(8).startTracking();
    assertThat(later.bitmap()).isEqualTo(7);
    assertThat(later.clearBitmap().bitmap()).isZero();
  }

  @Test
  void adopt_takes_the_source_current_and_history_and_drops_the_bitmap() {
    GenerationIds source = GenerationIds.NONE.newGeneration(1).startTracking().newGeneration(2);
    GenerationIds target = GenerationIds.NONE.newGeneration(9).startTracking().newGeneration(10).adoptFrom(source);
    assertThat(target.current()).isEqualTo(2);
    assertThat(target.history()).containsExactly(1L);
    assertThat(target.bitmap()).isZero();
  }

  @Test
  void proto_round_trip_and_bounded_input() {
    GenerationIds ids = GenerationIds.NONE.newGeneration(-5).startTracking().newGeneration(Long.MIN_VALUE);
    assertThat(GenerationIds.fromProto(ids.toProto())).isEqualTo(ids);
    List<Long> longHistory = new ArrayList<>();
    for (long i = 0; i < 30; i++) {
      longHistory.add(i); // includes a 0, which means none
    }
    GenerationIds fromPeer = GenerationIds.fromProto(io.replicator.proto.GenerationIds.newBuilder()
        .setCurrent(100).addAllHistory(longHistory).build());
    assertThat(fromPeer.history()).hasSize(GenerationIds.MAX_HISTORY).doesNotContain(0L).first().isEqualTo(1L);
  }

  @Test
  void random_ids_are_non_zero_and_distinct() {
    Set<Long> seen = new HashSet<>();
    for (int i = 0; i < 1000; i++) {
      long id = GenerationIds.randomId();
      assertThat(id).isNotZero();
      seen.add(id);
    }
    assertThat(seen).hasSize(1000);
    GenerationIds ids = GenerationIds.NONE.newGeneration();
    assertThat(ids.current()).isNotZero();
  }

  @Test
  void zero_or_same_id_is_refused() {
    assertThatThrownBy(() -> GenerationIds.NONE.newGeneration(0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> GenerationIds.NONE.newGeneration(4).newGeneration(4)).isInstanceOf(IllegalArgumentException.class);
  }
}
