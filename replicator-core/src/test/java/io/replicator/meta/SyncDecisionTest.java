package io.replicator.meta;

import io.replicator.SplitBrainPolicy;
import static io.replicator.meta.SyncDecision.FULL_LOCAL_SOURCE;
import static io.replicator.meta.SyncDecision.FULL_PEER_SOURCE;
import static io.replicator.meta.SyncDecision.INCREMENTAL_LOCAL_SOURCE;
import static io.replicator.meta.SyncDecision.INCREMENTAL_PEER_SOURCE;
import static io.replicator.meta.SyncDecision.IN_SYNC;
import static io.replicator.meta.SyncDecision.SPLIT_BRAIN;
import static io.replicator.meta.SyncDecision.UNRELATED;
import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.SplitBrainPolicy.Victim;
import io.replicator.meta.SyncDecision.Side;
import java.util.List;
import org.junit.jupiter.api.DisplayNameGeneration;
import org.junit.jupiter.api.DisplayNameGenerator;
import org.junit.jupiter.api.Test;

/** The DRBD matrix, played as the life of two nodes, checked from both sides. */
@DisplayNameGeneration(DisplayNameGenerator.ReplaceUnderscores.class)
class SyncDecisionTest {

  /** Two nodes that were connected and in sync at generation X. */
  private static final GenerationIds SYNCED = GenerationIds.NONE.newGeneration(0x1111);

  /** What a primary does when it loses its peer and then writes. */
  private static GenerationIds losePeerAndWrite(GenerationIds ids, long id) {
    return ids.startTracking().newGeneration(id);
  }

  private static void assertDecision(GenerationIds a, GenerationIds b, SyncDecision forA, SyncDecision forB) {
    assertThat(SyncDecision.decide(a, b)).as("first side").isEqualTo(forA);
    assertThat(SyncDecision.decide(b, a)).as("second side").isEqualTo(forB);
  }

  @Test
  void both_fresh_nodes_are_in_sync() {
    assertDecision(GenerationIds.NONE, GenerationIds.NONE, IN_SYNC, IN_SYNC);
  }

  @Test
  void nodes_at_the_same_generation_are_in_sync() {
    assertDecision(SYNCED, SYNCED, IN_SYNC, IN_SYNC);
  }

  @Test
  void promotion_without_writes_is_no_split_brain() {
    GenerationIds promoted = SYNCED.startTracking();
    assertDecision(promoted, SYNCED, IN_SYNC, IN_SYNC);
    // Even both promoted without writing: still the same data.
    assertDecision(promoted, SYNCED.startTracking(), IN_SYNC, IN_SYNC);
  }

  @Test
  void primary_that_wrote_alone_is_incremental_source() {
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222);
    assertDecision(primary, SYNCED, INCREMENTAL_LOCAL_SOURCE, INCREMENTAL_PEER_SOURCE);
  }

  @Test
  void primary_that_wrote_through_several_generations_is_still_incremental_source() {
    // The bitmap mark stays at the generation the peer has; later generations only add to the bitmap.
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222).startTracking().newGeneration(0x3333);
    assertThat(primary.bitmap()).isEqualTo(SYNCED.current());
    assertDecision(primary, SYNCED, INCREMENTAL_LOCAL_SOURCE, INCREMENTAL_PEER_SOURCE);
  }

  @Test
  void both_wrote_while_apart_is_split_brain() {
    GenerationIds a = losePeerAndWrite(SYNCED, 0x2222);
    GenerationIds b = losePeerAndWrite(SYNCED, 0x3333);
    assertDecision(a, b, SPLIT_BRAIN, SPLIT_BRAIN);
  }

  @Test
  void wiped_secondary_gets_a_full_resync() {
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222);
    assertDecision(primary, GenerationIds.NONE, FULL_LOCAL_SOURCE, FULL_PEER_SOURCE);
    // Also when the primary is not tracking: any data beats none.
    assertDecision(SYNCED, GenerationIds.NONE, FULL_LOCAL_SOURCE, FULL_PEER_SOURCE);
  }

  @Test
  void peer_behind_without_a_bitmap_gets_a_full_resync() {
    // The primary wrote alone, then lost its bitmap (e.g. corrupt): the peer's generation is only history.
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222).clearBitmap();
    assertThat(primary.history()).contains(SYNCED.current());
    assertDecision(primary, SYNCED, FULL_LOCAL_SOURCE, FULL_PEER_SOURCE);
  }

  @Test
  void no_common_history_is_refused() {
    GenerationIds a = GenerationIds.NONE.newGeneration(0xaaaa);
    GenerationIds b = GenerationIds.NONE.newGeneration(0xbbbb);
    assertDecision(a, b, UNRELATED, UNRELATED);
  }

  @Test
  void a_generation_pushed_out_of_the_bounded_history_is_unrelated() {
    GenerationIds primary = SYNCED;
    for (int i = 0; i <= GenerationIds.MAX_HISTORY; i++) {
      primary = primary.newGeneration(0x5000 + i);
    }
    assertThat(primary.history()).hasSize(GenerationIds.MAX_HISTORY).doesNotContain(SYNCED.current());
    assertDecision(primary, SYNCED, UNRELATED, UNRELATED);
  }

  @Test
  void after_an_incremental_resync_both_are_in_sync() {
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222);
    GenerationIds target = SYNCED.adoptFrom(primary);
    primary = primary.clearBitmap();
    assertDecision(primary, target, IN_SYNC, IN_SYNC);
  }

  @Test
  void after_a_split_brain_resolution_the_victim_adopts_the_winner() {
    GenerationIds winner = losePeerAndWrite(SYNCED, 0x2222);
    GenerationIds victim = losePeerAndWrite(SYNCED, 0x3333).adoptFrom(winner);
    assertDecision(winner.clearBitmap(), victim, IN_SYNC, IN_SYNC);
  }

  @Test
  void operator_discard_on_one_side_makes_it_the_full_target() {
    GenerationIds a = losePeerAndWrite(SYNCED, 0x2222);
    GenerationIds b = losePeerAndWrite(SYNCED, 0x3333);
    Side discarding = new Side(a, true, 1 << 20, 0);
    Side keeping = new Side(b, false, 1, 0);
    // The operator wins over a policy that would discard the other side.
    assertThat(SyncDecision.decide(discarding, keeping, SplitBrainPolicy.DISCARD_LEAST_CHANGES)).isEqualTo(FULL_PEER_SOURCE);
    assertThat(SyncDecision.decide(keeping, discarding, SplitBrainPolicy.DISCARD_LEAST_CHANGES)).isEqualTo(FULL_LOCAL_SOURCE);
  }

  @Test
  void both_operators_discarding_stays_split_brain() {
    Side a = new Side(losePeerAndWrite(SYNCED, 0x2222), true, 1, 0);
    Side b = new Side(losePeerAndWrite(SYNCED, 0x3333), true, 2, 0);
    assertThat(SyncDecision.decide(a, b, SplitBrainPolicy.DISCARD_LEAST_CHANGES)).isEqualTo(SPLIT_BRAIN);
  }

  @Test
  void discard_flag_does_not_override_a_decision_that_is_no_split_brain() {
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222);
    Side local = new Side(primary, true, 0, 0);
    assertThat(SyncDecision.decide(local, Side.of(SYNCED), SplitBrainPolicy.DISCONNECT)).isEqualTo(INCREMENTAL_LOCAL_SOURCE);
  }

  @Test
  void default_policy_keeps_a_split_brain_disconnected() {
    Side a = new Side(losePeerAndWrite(SYNCED, 0x2222), false, 10, 100);
    Side b = new Side(losePeerAndWrite(SYNCED, 0x3333), false, 20, 200);
    assertThat(SyncDecision.decide(a, b, SplitBrainPolicy.DISCONNECT)).isEqualTo(SPLIT_BRAIN);
  }

  @Test
  void policy_discard_least_changes_resolves_from_both_sides_alike() {
    Side few = new Side(losePeerAndWrite(SYNCED, 0x2222), false, 4096, 0);
    Side many = new Side(losePeerAndWrite(SYNCED, 0x3333), false, 8192, 0);
    assertThat(SyncDecision.decide(few, many, SplitBrainPolicy.DISCARD_LEAST_CHANGES)).isEqualTo(FULL_PEER_SOURCE);
    assertThat(SyncDecision.decide(many, few, SplitBrainPolicy.DISCARD_LEAST_CHANGES)).isEqualTo(FULL_LOCAL_SOURCE);
  }

  @Test
  void policy_discard_younger_primary() {
    Side older = new Side(losePeerAndWrite(SYNCED, 0x2222), false, 0, 1_000);
    Side younger = new Side(losePeerAndWrite(SYNCED, 0x3333), false, 0, 2_000);
    assertThat(SyncDecision.decide(younger, older, SplitBrainPolicy.DISCARD_YOUNGER_PRIMARY)).isEqualTo(FULL_PEER_SOURCE);
    assertThat(SyncDecision.decide(older, younger, SplitBrainPolicy.DISCARD_YOUNGER_PRIMARY)).isEqualTo(FULL_LOCAL_SOURCE);
  }

  @Test
  void policy_ties_and_unknown_times_disconnect() {
    assertThat(SplitBrainPolicy.DISCARD_LEAST_CHANGES.victim(5, 0, 5, 0)).isEqualTo(Victim.NONE);
    assertThat(SplitBrainPolicy.DISCARD_YOUNGER_PRIMARY.victim(0, 7, 0, 7)).isEqualTo(Victim.NONE);
    assertThat(SplitBrainPolicy.DISCARD_YOUNGER_PRIMARY.victim(0, 0, 0, 7)).isEqualTo(Victim.NONE);
    assertThat(SplitBrainPolicy.DISCONNECT.victim(1, 1, 2, 2)).isEqualTo(Victim.NONE);
    assertThat(SplitBrainPolicy.DISCARD_LEAST_CHANGES.victim(1, 0, 2, 0)).isEqualTo(Victim.LOCAL);
    assertThat(SplitBrainPolicy.DISCARD_LEAST_CHANGES.victim(3, 0, 2, 0)).isEqualTo(Victim.PEER);
  }

  @Test
  void decision_helpers() {
    assertThat(INCREMENTAL_LOCAL_SOURCE.localIsSource()).isTrue();
    assertThat(FULL_PEER_SOURCE.peerIsSource()).isTrue();
    assertThat(FULL_PEER_SOURCE.isFull()).isTrue();
    assertThat(SPLIT_BRAIN.refusesConnection()).isTrue();
    assertThat(UNRELATED.refusesConnection()).isTrue();
    assertThat(IN_SYNC.refusesConnection()).isFalse();
    assertThat(List.of(SyncDecision.values())).hasSize(7);
  }

  // ------------------------------------------------------------------ followers

  @Test
  void a_follower_is_never_a_source_and_never_refused_for_what_it_holds() {
    GenerationIds primary = losePeerAndWrite(SYNCED, 0x2222);
    GenerationIds[] followers = {GenerationIds.NONE, SYNCED, losePeerAndWrite(SYNCED, 0x3333),
        GenerationIds.NONE.newGeneration(0x9999), primary};
    for (GenerationIds follower : followers) {
      SyncDecision d = SyncDecision.decideForFollower(primary, follower);
      assertThat(d.peerIsSource()).as("%s", follower).isFalse();
      assertThat(d.refusesConnection()).as("%s", follower).isFalse();
    }
  }

  @Test
  void follower_table_in_sync_bitmap_or_checksum() {
    GenerationIds tracking = losePeerAndWrite(SYNCED, 0x2222); // bitmap started at 0x1111
    assertThat(SyncDecision.decideForFollower(SYNCED, SYNCED)).isEqualTo(IN_SYNC);
    assertThat(SyncDecision.decideForFollower(tracking, SYNCED)).isEqualTo(INCREMENTAL_LOCAL_SOURCE);
    // a follower at a generation this primary did not track from: compare everything
    assertThat(SyncDecision.decideForFollower(tracking, GenerationIds.NONE.newGeneration(0x4444)))
        .isEqualTo(FULL_LOCAL_SOURCE);
    assertThat(SyncDecision.decideForFollower(tracking, GenerationIds.NONE)).isEqualTo(FULL_LOCAL_SOURCE);
  }

  @Test
  void a_follower_continued_from_the_previous_primary_stays_incremental_only_with_its_own_report() {
    long epoch = 0x5151;
    // no continuation: the decision stands whatever the report
    assertThat(SyncDecision.continueFollower(INCREMENTAL_LOCAL_SOURCE, 0, 0)).isEqualTo(INCREMENTAL_LOCAL_SOURCE);
    assertThat(SyncDecision.continueFollower(INCREMENTAL_LOCAL_SOURCE, 0, 0x7777)).isEqualTo(INCREMENTAL_LOCAL_SOURCE);
    // continued: its report of the same epoch keeps the bitmap; none, or another epoch's, compares everything
    assertThat(SyncDecision.continueFollower(INCREMENTAL_LOCAL_SOURCE, epoch, epoch)).isEqualTo(INCREMENTAL_LOCAL_SOURCE);
    assertThat(SyncDecision.continueFollower(INCREMENTAL_LOCAL_SOURCE, epoch, 0)).isEqualTo(FULL_LOCAL_SOURCE);
    assertThat(SyncDecision.continueFollower(INCREMENTAL_LOCAL_SOURCE, epoch, 0x7777)).isEqualTo(FULL_LOCAL_SOURCE);
    // a decision that was not incremental is never made incremental by a report
    for (SyncDecision d : List.of(IN_SYNC, FULL_LOCAL_SOURCE)) {
      assertThat(SyncDecision.continueFollower(d, epoch, epoch)).isEqualTo(d);
    }
  }

  @Test
  void after_a_failover_the_new_primary_continues_a_follower_that_held_the_old_primarys_generation() {
    long held = 0x6161;
    GenerationIds follower = GenerationIds.NONE.newGeneration(held);
    // the new primary's stream for it: a generation of its own, tracking from the one the follower held
    GenerationIds continued = GenerationIds.of(held, 0, List.of()).startTracking().newGeneration(0x7171);
    assertThat(SyncDecision.decideForFollower(continued, follower)).isEqualTo(INCREMENTAL_LOCAL_SOURCE);
    // a follower that moved on since (resynced by the old primary after the record was taken)
    GenerationIds movedOn = follower.newGeneration(0x8181);
    assertThat(SyncDecision.decideForFollower(continued, movedOn)).isEqualTo(FULL_LOCAL_SOURCE);
  }
}
