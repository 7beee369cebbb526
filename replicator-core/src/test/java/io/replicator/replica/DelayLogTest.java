package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.replicator.proto.Change;
import io.replicator.proto.Delete;
import io.replicator.proto.Write;
import io.replicator.replica.DelayLog.Entry;
import io.replicator.replica.DelayLog.Logged;
import io.replicator.replica.DelaySchedule.Action;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.DisplayNameGeneration;
import org.junit.jupiter.api.DisplayNameGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@DisplayNameGeneration(DisplayNameGenerator.ReplaceUnderscores.class)
class DelayLogTest {
  private static final long T0 = 1_700_000_000_000L;
  private static final long CAPACITY = 64L << 20;

  @TempDir Path dir;

  private static byte[] writeHeader(long seq, String path) {
    return Change.newBuilder().setSeq(seq).setWrite(Write.newBuilder().setPath(path).setPosition(1_000_000))
        .build().toByteArray();
  }

  private static byte[] deleteHeader(long seq, String path) {
    return Change.newBuilder().setSeq(seq).setDelete(Delete.newBuilder().setPath(path)).build().toByteArray();
  }

  /** Bytes that differ per seq, so a record read from the wrong place shows. */
  static ByteBuffer payload(long seq, int size) {
    ByteBuffer b = ByteBuffer.allocate(size);
    for (int i = 0; i < size; i++) {
      b.put((byte) (seq * 31 + i * 7));
    }
    return b.flip();
  }

  private static long recordSize(byte[] header, int payload) {
    return DelayLog.OVERHEAD + header.length + payload;
  }

  private static void append(DelayLog dl, long seq, int size) throws IOException {
    assertThat(dl.append(seq, T0 + seq, writeHeader(seq, "f"), payload(seq, size))).isTrue();
  }

  private List<Path> segmentFiles() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().startsWith("seg-")).sorted().toList();
    }
  }

  private long segmentBytesOnDisk() throws IOException {
    long sum = 0;
    for (Path p : segmentFiles()) {
      sum += Files.size(p);
    }
    return sum;
  }

  /**
   * What a kill -9 leaves: the files as written (the page cache outlives the process), opened by a new
   * instance; the old one's descriptors are then closed, as the kernel would, without writing anything.
   */
  private DelayLog restartAfterKill(DelayLog old, long capacity, long segmentBytes) throws IOException {
    DelayLog fresh = DelayLog.open(dir, capacity, segmentBytes);
    old.close();
    return fresh;
  }

  private static void assertEntry(Entry e, long seq, int size) {
    assertThat(e).isNotNull();
    assertThat(e.seq()).isEqualTo(seq);
    assertThat(e.receivedMillis()).isEqualTo(T0 + seq);
    assertThat(e.header()).isEqualTo(writeHeader(seq, "f"));
    assertThat(e.payload()).isEqualTo(payload(seq, size));
  }

  @Test
  void a_change_survives_a_restart_of_the_follower() throws IOException {
    DelayLog dl = DelayLog.open(dir, CAPACITY);
    append(dl, 1, 3000);
    append(dl, 2, 0);
    append(dl, 3, 100_000);
    dl.sync();

    dl = restartAfterKill(dl, CAPACITY, DelayLog.DEFAULT_SEGMENT_BYTES);
    assertThat(dl.lastSeq()).isEqualTo(3);
    assertThat(dl.backlogChanges()).isEqualTo(3);
    assertThat(dl.appliedSeq()).isZero();
    assertEntry(dl.peek(), 1, 3000);
    assertEntry(dl.peek(), 1, 3000); // peek does not consume
    dl.applied(1);

    dl = restartAfterKill(dl, CAPACITY, DelayLog.DEFAULT_SEGMENT_BYTES);
    assertThat(dl.appliedSeq()).isEqualTo(1);
    assertThat(dl.lastAppliedMillis()).isEqualTo(T0 + 1);
    assertThat(dl.backlogChanges()).isEqualTo(2);
    assertThat(dl.backlogBytes())
        .isEqualTo(recordSize(writeHeader(2, "f"), 0) + recordSize(writeHeader(3, "f"), 100_000));
    assertEntry(dl.peek(), 2, 0);
    dl.applied(2);
    assertEntry(dl.peek(), 3, 100_000);
    dl.applied(3);
    assertThat(dl.peek()).isNull();
    assertThat(dl.backlogChanges()).isZero();
    assertThat(dl.backlogBytes()).isZero();
    dl.close();
  }

  @Test
  void a_change_reaches_the_applier_only_once_it_is_durable() throws IOException {
    try (DelayLog dl = DelayLog.open(dir, CAPACITY)) {
      append(dl, 1, 10);
      assertThat(dl.backlogChanges()).isEqualTo(1);
      assertThat(dl.peek()).isNull();
      dl.sync();
      assertEntry(dl.peek(), 1, 10);
    }
  }

  @Test
  void a_torn_tail_from_a_crash_is_cut_off_not_applied() throws IOException {
    long keep = recordSize(writeHeader(1, "f"), 500) + recordSize(writeHeader(2, "f"), 500);
    long third = recordSize(writeHeader(3, "f"), 500);
    // the three shapes a crash leaves: a record cut short, one whose end was never written (zeros,
    // same length), and zeros the file system extended the file by
    List<String> shapes = List.of("cut", "zeroed", "zeros after");
    for (String shape : shapes) {
      DelayLog dl = DelayLog.open(dir, CAPACITY);
      append(dl, 1, 500);
      append(dl, 2, 500);
      dl.sync();
      append(dl, 3, 500); // the crash comes before its sync
      dl.close();
      Path seg = segmentFiles().get(0);
      try (FileChannel ch = FileChannel.open(seg, StandardOpenOption.WRITE)) {
        switch (shape) {
          case "cut" -> ch.truncate(keep + third - 7);
          case "zeroed" -> ch.write(ByteBuffer.allocate((int) third - 40), keep + 40);
          default -> ch.write(ByteBuffer.allocate(4096), keep + third);
        }
      }
      if (shape.equals("zeros after")) {
        keep += third; // the third record is whole: only the zeros go
      }

      dl = DelayLog.open(dir, CAPACITY);
      assertThat(Files.size(seg)).as(shape).isEqualTo(keep);
      assertThat(dl.diskBytes()).as(shape).isEqualTo(keep);
      long last = shape.equals("zeros after") ? 3 : 2;
      assertThat(dl.lastSeq()).as(shape).isEqualTo(last);
      for (long seq = 1; seq <= last; seq++) {
        assertEntry(dl.peek(), seq, 500);
        dl.applied(seq);
      }
      assertThat(dl.peek()).as(shape).isNull();
      // the follower goes on: the lost change comes again from the primary
      append(dl, last + 1, 500);
      dl.sync();
      assertEntry(dl.peek(), last + 1, 500);
      dl.close();
      try (Stream<Path> files = Files.list(dir)) {
        for (Path p : files.toList()) {
          Files.delete(p);
        }
      }
      keep = recordSize(writeHeader(1, "f"), 500) + recordSize(writeHeader(2, "f"), 500);
    }
  }

  @Test
  void corruption_in_the_middle_is_reported_never_skipped() throws IOException {
    try (DelayLog dl = DelayLog.open(dir, CAPACITY)) {
      for (long seq = 1; seq <= 3; seq++) {
        append(dl, seq, 1000);
      }
      dl.sync();
    }
    Path seg = segmentFiles().get(0);
    long second = recordSize(writeHeader(1, "f"), 1000);
    flipByte(seg, second + 100); // inside the payload of seq 2; seq 3 follows intact

    assertThatThrownBy(() -> DelayLog.open(dir, CAPACITY))
        .isInstanceOf(IOException.class)
        .hasMessageContaining(seg.toString())
        .hasMessageContaining("offset " + second)
        .hasMessageContaining("CRC");
    assertThat(Files.size(seg)).isEqualTo(3 * second); // nothing was cut off
  }

  @Test
  void a_damaged_end_of_a_segment_that_is_not_the_last_is_corruption() throws IOException {
    long record = recordSize(writeHeader(1, "f"), 1000);
    try (DelayLog dl = DelayLog.open(dir, CAPACITY, 2 * record)) {
      for (long seq = 1; seq <= 5; seq++) {
        append(dl, seq, 1000);
      }
      dl.sync();
    }
    assertThat(segmentFiles()).hasSize(3);
    Path first = segmentFiles().get(0);
    try (FileChannel ch = FileChannel.open(first, StandardOpenOption.WRITE)) {
      ch.truncate(2 * record - 1);
    }
    assertThatThrownBy(() -> DelayLog.open(dir, CAPACITY, 2 * record))
        .isInstanceOf(IOException.class)
        .hasMessageContaining(first.toString())
        .hasMessageContaining("offset " + record);
  }

  @Test
  void a_record_damaged_after_the_open_is_reported_by_peek() throws IOException {
    try (DelayLog dl = DelayLog.open(dir, CAPACITY)) {
      append(dl, 1, 1000);
      dl.sync();
      flipByte(segmentFiles().get(0), 200);
      assertThatThrownBy(dl::peek).isInstanceOf(IOException.class).hasMessageContaining("offset 0");
      assertThatThrownBy(() -> dl.list(0, 10)).isInstanceOf(IOException.class).hasMessageContaining("offset 0");
    }
  }

  @Test
  void a_full_log_refuses_the_append_and_never_blocks() throws IOException {
    long record = recordSize(writeHeader(1, "f"), 10_000);
    long capacity = 10 * record;
    DelayLog dl = DelayLog.open(dir, capacity, capacity);
    for (long seq = 1; seq <= 10; seq++) {
      append(dl, seq, 10_000);
    }
    dl.sync();
    ByteBuffer next = payload(11, 10_000);
    DelayLog full = dl;
    boolean accepted = assertTimeoutPreemptively(Duration.ofSeconds(2),
        () -> full.append(11, T0 + 11, writeHeader(11, "f"), next));
    assertThat(accepted).isFalse();
    assertThat(next.position()).isZero(); // the caller keeps its buffer as it was
    assertThat(dl.lastSeq()).isEqualTo(10);
    assertThat(dl.diskBytes()).isEqualTo(capacity).isEqualTo(segmentBytesOnDisk());

    // the refused change can come again once the log has room; a restart does not lose the count
    dl = restartAfterKill(dl, capacity, capacity);
    assertThat(dl.append(11, T0 + 11, writeHeader(11, "f"), next)).isFalse();
    for (long seq = 1; seq <= 10; seq++) {
      assertEntry(dl.peek(), seq, 10_000);
      dl.applied(seq);
    }
    // everything applied: the segment being written goes, though it was not full of applied records
    // by the segment size, so a caught-up follower is never stuck at full
    append(dl, 11, 10_000);
    assertThat(segmentFiles()).hasSize(1);
    assertThat(dl.diskBytes()).isEqualTo(record).isEqualTo(segmentBytesOnDisk());
    dl.close();
  }

  @Test
  void a_full_log_takes_changes_again_as_the_applier_catches_up() throws IOException {
    long capacity = 8L << 20; // segments of capacity / 8
    try (DelayLog dl = DelayLog.open(dir, capacity)) {
      long seq = 0;
      while (dl.append(seq + 1, T0 + seq + 1, writeHeader(seq + 1, "f"), payload(seq + 1, 64 * 1024))) {
        seq++;
        assertThat(dl.diskBytes()).isLessThanOrEqualTo(capacity);
      }
      long full = seq;
      assertThat(full).isGreaterThan(100);
      dl.sync();
      for (long s = 1; s <= full / 2; s++) {
        dl.peek();
        dl.applied(s);
      }
      assertThat(dl.diskBytes()).isLessThan(capacity * 6 / 10);
      assertThat(dl.append(full + 1, T0 + full + 1, writeHeader(full + 1, "f"), payload(full + 1, 64 * 1024)))
          .isTrue();
      assertThat(dl.diskBytes()).isEqualTo(segmentBytesOnDisk());
    }
  }

  @Test
  void applied_segments_are_deleted_and_the_disk_shrinks() throws IOException {
    long record = recordSize(writeHeader(1, "f"), 1000);
    DelayLog dl = DelayLog.open(dir, CAPACITY, 4 * record);
    for (long seq = 1; seq <= 20; seq++) {
      append(dl, seq, 1000);
    }
    dl.sync();
    assertThat(segmentFiles()).hasSize(5);
    assertThat(dl.diskBytes()).isEqualTo(20 * record).isEqualTo(segmentBytesOnDisk());

    for (long seq = 1; seq <= 10; seq++) {
      assertEntry(dl.peek(), seq, 1000);
      dl.applied(seq);
    }
    // 1-4 and 5-8 are gone; 9-12 holds two unapplied entries
    assertThat(segmentFiles()).hasSize(3);
    assertThat(dl.segmentCount()).isEqualTo(3);
    assertThat(dl.diskBytes()).isEqualTo(12 * record).isEqualTo(segmentBytesOnDisk());
    assertThat(dl.backlogBytes()).isEqualTo(10 * record);
    assertThat(dl.backlogChanges()).isEqualTo(10);

    dl = restartAfterKill(dl, CAPACITY, 4 * record);
    assertThat(dl.diskBytes()).isEqualTo(12 * record);
    assertThat(dl.backlogChanges()).isEqualTo(10);
    dl.applied(20); // a batch at once
    assertThat(dl.backlogChanges()).isZero();
    assertThat(dl.lastAppliedMillis()).isEqualTo(T0 + 20);
    assertThat(segmentFiles()).hasSize(1); // the segment being written stays
    assertThat(dl.diskBytes()).isEqualTo(4 * record).isEqualTo(segmentBytesOnDisk());
    dl.close();
  }

  @Test
  void list_since_a_time_finds_the_delete_to_undo() throws IOException {
    long rmAt = T0 + 30 * 60_000; // someone ran rm -rf projects half an hour in
    try (DelayLog dl = DelayLog.open(dir, CAPACITY, 8 * 1024)) {
      long seq = 0;
      for (long t = T0; t < rmAt; t += 60_000) {
        seq++;
        dl.append(seq, t, writeHeader(seq, "projects/report.txt"), payload(seq, 2000));
      }
      long rmSeq = ++seq;
      dl.append(rmSeq, rmAt, deleteHeader(rmSeq, "projects"), ByteBuffer.allocate(0));
      for (long t = rmAt + 1000; t < rmAt + 10_000; t += 1000) {
        seq++;
        dl.append(seq, t, writeHeader(seq, "elsewhere"), payload(seq, 100));
      }
      dl.sync();

      // with a delay of one hour, twenty minutes after the rm nothing has reached the copy
      long now = rmAt + 20 * 60_000;
      Entry first = dl.peek();
      assertThat(DelaySchedule.decide(now, 3_600_000, false, OptionalLong.empty(), first.receivedMillis()).action())
          .isEqualTo(Action.WAIT);

      // the operator looks for deletes in the last half hour
      List<Logged> recent = dl.list(now - 30 * 60_000, 1000);
      assertThat(recent).isNotEmpty();
      assertThat(recent).extracting(Logged::seq).isSorted();
      assertThat(recent).allSatisfy(l -> assertThat(l.receivedMillis()).isGreaterThanOrEqualTo(now - 30 * 60_000));
      Logged rm = null;
      for (Logged l : recent) {
        Change c = Change.parseFrom(l.header());
        if (c.hasDelete()) {
          rm = l;
          assertThat(c.getDelete().getPath()).isEqualTo("projects");
        }
      }
      assertThat(rm).isNotNull();
      assertThat(rm.seq()).isEqualTo(rmSeq);
      assertThat(rm.receivedMillis()).isEqualTo(rmAt);
      assertThat(rm.payloadBytes()).isZero();
      assertThat(rm.applied()).isFalse();
      assertThat(dl.list(rmAt, 1)).extracting(Logged::seq).containsExactly(rmSeq);

      // apply-until the rm: everything before it reaches the copy now, the rm never does
      OptionalLong until = OptionalLong.of(rm.receivedMillis());
      Entry e;
      while ((e = dl.peek()) != null
          && DelaySchedule.decide(now, 3_600_000, false, until, e.receivedMillis()).action() == Action.APPLY) {
        dl.applied(e.seq());
      }
      assertThat(e).isNotNull();
      assertThat(e.seq()).isEqualTo(rmSeq);
      assertThat(dl.appliedSeq()).isEqualTo(rmSeq - 1);
      assertThat(dl.lastAppliedMillis()).isEqualTo(rmAt - 60_000);
      assertThat(dl.list(rmAt - 60_000, 2)).extracting(Logged::applied).containsExactly(true, false);
    }
  }

  @Test
  void sequence_numbers_must_increase_also_across_a_restart() throws IOException {
    DelayLog dl = DelayLog.open(dir, CAPACITY);
    append(dl, 5, 10);
    DelayLog first = dl;
    assertThatThrownBy(() -> first.append(5, T0, new byte[0], ByteBuffer.allocate(0)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> first.append(3, T0, new byte[0], ByteBuffer.allocate(0)))
        .isInstanceOf(IllegalArgumentException.class);
    dl.sync();
    dl.applied(5);
    assertThatThrownBy(() -> first.applied(4)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> first.applied(6)).isInstanceOf(IllegalArgumentException.class);
    dl.applied(5); // again: nothing to do

    dl = restartAfterKill(dl, CAPACITY, DelayLog.DEFAULT_SEGMENT_BYTES);
    assertThat(dl.lastSeq()).isEqualTo(5);
    DelayLog second = dl;
    assertThatThrownBy(() -> second.append(5, T0, new byte[0], ByteBuffer.allocate(0)))
        .isInstanceOf(IllegalArgumentException.class);
    append(dl, 9, 10);
    dl.close();
  }

  @Test
  void a_torn_applied_pointer_falls_back_to_the_slot_written_before() throws IOException {
    DelayLog dl = DelayLog.open(dir, CAPACITY);
    for (long seq = 1; seq <= 3; seq++) {
      append(dl, seq, 10);
    }
    dl.sync();
    dl.applied(1); // slot 0
    dl.applied(2); // slot 1
    dl.close();
    flipByte(dir.resolve(DelayLog.POINTER_SLOTS[1]), 10);

    dl = DelayLog.open(dir, CAPACITY);
    assertThat(dl.appliedSeq()).isEqualTo(1);
    assertEntry(dl.peek(), 2, 10); // applied again: at least once, never lost
    dl.applied(2);
    dl.close();

    flipByte(dir.resolve(DelayLog.POINTER_SLOTS[0]), 10);
    flipByte(dir.resolve(DelayLog.POINTER_SLOTS[1]), 10);
    assertThatThrownBy(() -> DelayLog.open(dir, CAPACITY))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("applied pointer");
  }

  @Test
  void the_writer_the_applier_and_a_lister_run_at_once() throws Exception {
    int n = 2000;
    long record = recordSize(writeHeader(1, "f"), 300);
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try (DelayLog dl = DelayLog.open(dir, 40 * record, 8 * record)) {
      AtomicBoolean done = new AtomicBoolean();
      Future<Integer> refusals = pool.submit(() -> {
        int refused = 0;
        for (long seq = 1; seq <= n; seq++) {
          while (!dl.append(seq, T0 + seq, writeHeader(seq, "f"), payload(seq, 300))) {
            refused++; // full: the real caller marks the bitmap; here wait for the applier
            dl.sync();
            Thread.onSpinWait();
          }
          if (seq % 7 == 0) {
            dl.sync();
          }
        }
        dl.sync();
        return refused;
      });
      Future<?> applier = pool.submit(() -> {
        long handed = 0; // applied, not yet recorded: a batch records with one fsync
        while (dl.appliedSeq() < n) {
          Entry e = dl.peekAfter(handed);
          if (e == null) {
            if (handed > dl.appliedSeq()) {
              dl.applied(handed);
            }
            Thread.onSpinWait();
            continue;
          }
          assertEntry(e, handed + 1, 300);
          handed = e.seq();
          if (handed % 10 == 0) {
            dl.applied(handed);
          }
        }
        done.set(true);
        return null;
      });
      Future<?> lister = pool.submit(() -> {
        while (!done.get()) {
          List<Logged> l = dl.list(0, 50);
          assertThat(l).extracting(Logged::seq).isSorted();
          dl.diskBytes();
          dl.backlogChanges();
        }
        return null;
      });
      refusals.get(20, TimeUnit.SECONDS);
      applier.get(20, TimeUnit.SECONDS);
      lister.get(20, TimeUnit.SECONDS);
      assertThat(dl.backlogChanges()).isZero();
      assertThat(dl.appliedSeq()).isEqualTo(n);
      assertThat(dl.diskBytes()).isEqualTo(segmentBytesOnDisk()).isLessThanOrEqualTo(40 * record);
    } finally {
      pool.shutdownNow();
    }
  }

  static void flipByte(Path file, long offset) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.allocate(1);
      ch.read(b, offset);
      b.put(0, (byte) (b.get(0) ^ 0x5a)).rewind();
      ch.write(b, offset);
    }
  }

}
