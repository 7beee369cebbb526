package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.change.FileChange;
import io.replicator.meta.DirtyBitmap;
import io.replicator.proto.CopyMark;
import io.replicator.proto.CopyPosition;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a replica records by the primary's marks, and what it can (and cannot) say of another copy. */
class UnsharedChangesTest {
  private static final long EPOCH = 0x1234;
  private static final int BLOCK = DirtyBitmap.DEFAULT_BLOCK_SIZE;

  @TempDir Path dir;

  private static CopyMark mark(long epoch, long number, CopyPosition... positions) {
    return CopyMark.newBuilder().setEpoch(epoch).setNumber(number).addAllPositions(java.util.List.of(positions)).build();
  }

  private static CopyPosition follower(String name, long mark) {
    return CopyPosition.newBuilder().setName(name).setGeneration(0xabc).setMark(mark).build();
  }

  private static CopyPosition secondary(long mark) {
    return CopyPosition.newBuilder().setSecondary(true).setGeneration(0xdef).setMark(mark).build();
  }

  private static FileChange write(String path, long block) {
    return new FileChange.Write(path, block * BLOCK, ByteBuffer.allocate(BLOCK));
  }

  private static long blocks(UnsharedChanges u, String copy, String path) {
    return u.shortfall(copy).orElseThrow().blocks().snapshot().blockCount(path);
  }

  @Test
  void copyMissesOnlyWhatCameAfterTheMarkItApplied() {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.marked(mark(EPOCH, 1));
    u.received(write("a", 0));
    u.marked(mark(EPOCH, 2));
    u.received(write("a", 1));
    u.marked(mark(EPOCH, 3, follower("dr", 2)));
    u.received(write("a", 2));

    UnsharedChanges.Shortfall s = u.shortfall("dr").orElseThrow();
    assertThat(s.epoch()).isEqualTo(EPOCH);
    assertThat(s.generation()).isEqualTo(0xabc);
    // block 0 came before mark 2, which the follower applied; blocks 1 and 2 came after it
    assertThat(s.blocks().snapshot().blockCount("a")).isEqualTo(2);
  }

  @Test
  void nothingIsSaidOfACopyNeverReportedOrStandingBeforeTheRecordStarted() {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.received(write("before-any-mark", 0)); // not recorded: no mark yet in this session
    assertThat(u.shortfall("dr")).isEmpty();
    u.marked(mark(EPOCH, 5, follower("dr", 4)));
    // the follower stands before mark 5, where this record starts: what it lacks from before is unknown
    assertThat(u.shortfall("dr")).isEmpty();
    assertThat(u.shortfall(UnsharedChanges.SECONDARY)).isEmpty();
    u.marked(mark(EPOCH, 6, follower("dr", 5), secondary(5)));
    assertThat(u.shortfall("dr")).isPresent();
    assertThat(u.shortfall(UnsharedChanges.SECONDARY)).isPresent();
  }

  @Test
  void aCopyFirstReportedAfterWhatItLacksWasDroppedGetsNoAnswer() {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.marked(mark(EPOCH, 1));
    u.received(write("a", 0));
    u.marked(mark(EPOCH, 2));
    u.received(write("b", 0));
    // only the secondary is known: the segment it passed is dropped
    u.marked(mark(EPOCH, 3, secondary(2)));
    // the follower is reported later, standing at mark 1: the dropped segment held what it lacks
    u.marked(mark(EPOCH, 4, secondary(3), follower("dr", 1)));
    assertThat(u.shortfall("dr")).isEmpty();
    assertThat(u.shortfall(UnsharedChanges.SECONDARY)).isPresent();
  }

  @Test
  void aNewSessionStartsTheRecordAfreshAtItsFirstMark() {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.marked(mark(EPOCH, 1));
    u.received(write("a", 0));
    u.marked(mark(EPOCH, 2, follower("dr", 1)));
    assertThat(blocks(u, "dr", "a")).isEqualTo(1);

    // reconnected: changes between the sessions were not seen here, so positions before the new start say nothing
    u.sessionStarted();
    u.received(write("b", 0));
    u.marked(mark(EPOCH, 9, follower("dr", 2)));
    assertThat(u.shortfall("dr")).isEmpty();
    u.received(write("c", 0));
    u.marked(mark(EPOCH, 10, follower("dr", 9)));
    UnsharedChanges.Shortfall s = u.shortfall("dr").orElseThrow();
    assertThat(s.blocks().snapshot().files()).containsExactly("c");
  }

  @Test
  void segmentsEveryCopyPassedAreDroppedAndTheRestStayBounded() {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.marked(mark(EPOCH, 1));
    for (int n = 2; n < 200; n++) {
      u.received(write("f" + n, 0));
      // "slow" stays at mark 1 the whole time: nothing it may lack is dropped, only merged
      u.marked(mark(EPOCH, n, follower("slow", 1), follower("fast", n - 1)));
    }
    assertThat(u.shortfall("slow").orElseThrow().blocks().snapshot().files()).hasSize(198);
    assertThat(u.shortfall("fast").orElseThrow().blocks().snapshot().files()).hasSizeLessThanOrEqualTo(2);
  }

  @Test
  void renamesAndDeletesMarkBothNamesSoTheResyncReconcilesThem() {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.marked(mark(EPOCH, 1));
    u.received(write("a", 3));
    u.marked(mark(EPOCH, 2, follower("dr", 1)));
    u.received(new FileChange.Move("a", "b", true, true, false));
    u.received(new FileChange.Delete("gone"));
    DirtyBitmap.Snapshot s = u.shortfall("dr").orElseThrow().blocks().snapshot();
    assertThat(s.paths()).contains("a", "b", "gone");
  }

  @Test
  void aCleanCloseKeepsTheRecordForOneNextStartOnly() throws Exception {
    UnsharedChanges u = new UnsharedChanges(BLOCK);
    u.sessionStarted();
    u.marked(mark(EPOCH, 1));
    u.received(write("a", 0));
    u.marked(mark(EPOCH, 2, follower("dr", 1)));
    u.received(write("a", 7));
    u.save(dir, true);

    UnsharedChanges again = UnsharedChanges.take(dir, BLOCK);
    assertThat(again.keptBySecondary()).isTrue();
    assertThat(again.shortfall("dr").orElseThrow().blocks().snapshot().blockCount("a")).isEqualTo(2);
    // read once: a crash after this start must not find the old record
    assertThat(Files.exists(dir.resolve(UnsharedChanges.FILE_NAME))).isFalse();
    assertThat(UnsharedChanges.take(dir, BLOCK).shortfall("dr")).isEmpty();
  }

  @Test
  void aDamagedRecordIsIgnoredNotTrusted() throws Exception {
    Files.write(dir.resolve(UnsharedChanges.FILE_NAME), new byte[] {8, 1, 18, 99, 1, 2, 3});
    assertThat(UnsharedChanges.take(dir, BLOCK).shortfall("dr")).isEmpty();
    assertThat(Files.exists(dir.resolve(UnsharedChanges.FILE_NAME))).isFalse();
  }
}
