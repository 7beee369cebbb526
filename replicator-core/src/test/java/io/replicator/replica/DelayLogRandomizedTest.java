package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.replica.DelayLog.Entry;
import io.replicator.replica.DelayLog.Logged;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Appends, applies in batches, syncs, restarts and tears the unsynced last append at random, against
 * a model of what was appended and not applied; fixed seeds, so a failure replays.
 */
class DelayLogRandomizedTest {
  private static final long CAPACITY = 200 * 1024;
  private static final long SEGMENT = 32 * 1024;

  @TempDir Path dir;

  private record Appended(long seq, long millis, int size) {
    long recordSize() {
      return DelayLog.OVERHEAD + header(seq).length + size;
    }
  }

  private static byte[] header(long seq) {
    return ("write " + seq).getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {1, 2, 3, 42, 7_331, 20_240_601})
  void the_unapplied_changes_are_exactly_those_appended_and_not_applied(long seed) throws IOException {
    Random rnd = new Random(seed);
    Deque<Appended> unapplied = new ArrayDeque<>();
    long nextSeq = 1;
    long lastAppended = 0;
    long syncedUpTo = 0;
    long applied = 0;
    long handed = 0; // applied by the applier, not yet recorded
    long millis = 1_000_000;
    DelayLog dl = DelayLog.open(dir, CAPACITY, SEGMENT);
    try {
      for (int step = 0; step < 400; step++) {
        int op = rnd.nextInt(100);
        if (op < 55) {
          long seq = nextSeq + rnd.nextInt(3); // gaps are allowed: only the order matters
          int size = rnd.nextInt(20) == 0 ? 40_000 + rnd.nextInt(10_000) : rnd.nextInt(5000);
          millis += rnd.nextInt(1000);
          Appended a = new Appended(seq, millis, size);
          ByteBuffer payload = DelayLogTest.payload(seq, size);
          if (dl.append(seq, millis, header(seq), payload)) {
            unapplied.addLast(a);
            lastAppended = seq;
            nextSeq = seq + 1;
          } else {
            assertThat(dl.diskBytes() + a.recordSize()).as("refused with room").isGreaterThan(CAPACITY);
          }
        } else if (op < 65) {
          dl.sync();
          syncedUpTo = lastAppended;
        } else if (op < 83) {
          // apply a batch, recording it with one applied() (or not, at random: the restart re-applies it)
          int k = 1 + rnd.nextInt(4);
          List<Appended> expected = new ArrayList<>(unapplied);
          int index = indexAfter(expected, handed);
          for (int i = 0; i < k; i++) {
            Entry e = dl.peekAfter(handed);
            if (index >= expected.size()) {
              assertThat(e).isNull();
              break;
            }
            Appended want = expected.get(index++);
            if (e == null) {
              // only what a sync covered must show; starting a new segment syncs the old one early
              assertThat(want.seq()).isGreaterThan(syncedUpTo);
              break;
            }
            assertThat(e.seq()).isEqualTo(want.seq());
            assertThat(e.receivedMillis()).isEqualTo(want.millis());
            assertThat(e.header()).isEqualTo(header(want.seq()));
            assertThat(e.payload()).isEqualTo(DelayLogTest.payload(want.seq(), want.size()));
            handed = e.seq();
          }
          if (handed > applied && rnd.nextInt(4) != 0) {
            dl.applied(handed);
            applied = handed;
            while (!unapplied.isEmpty() && unapplied.peekFirst().seq() <= applied) {
              unapplied.removeFirst();
            }
          }
        } else if (op < 93) {
          DelayLog fresh = DelayLog.open(dir, CAPACITY, SEGMENT); // a kill -9: files as they are
          dl.close();
          dl = fresh;
          syncedUpTo = lastAppended;
          handed = applied;
        } else if (lastAppended > syncedUpTo && !unapplied.isEmpty()) {
          // a crash in the middle of the last (unsynced) append
          dl.close();
          Appended last = unapplied.peekLast();
          Path seg = lastSegment();
          long size = Files.size(seg);
          long cut = 1 + rnd.nextLong(last.recordSize() - 1);
          try (FileChannel ch = FileChannel.open(seg, StandardOpenOption.WRITE)) {
            ch.truncate(size - cut);
          }
          dl = DelayLog.open(dir, CAPACITY, SEGMENT);
          unapplied.removeLast();
          lastAppended = unapplied.isEmpty() ? applied : unapplied.peekLast().seq();
          syncedUpTo = lastAppended;
          handed = applied;
          assertThat(dl.lastSeq()).isEqualTo(Math.max(lastAppended, applied));
        }

        assertThat(dl.appliedSeq()).isEqualTo(applied);
        assertThat(dl.backlogChanges()).isEqualTo(unapplied.size());
        assertThat(dl.backlogBytes()).isEqualTo(unapplied.stream().mapToLong(Appended::recordSize).sum());
        assertThat(dl.diskBytes()).isEqualTo(segmentBytesOnDisk()).isLessThanOrEqualTo(CAPACITY);
        if (step % 20 == 0) {
          List<Long> listed = dl.list(Long.MIN_VALUE, Integer.MAX_VALUE).stream()
              .filter(l -> !l.applied()).map(Logged::seq).toList();
          assertThat(listed).isEqualTo(unapplied.stream().map(Appended::seq).toList());
        }
      }

      // after a last restart, draining gives exactly the model, in order
      DelayLog fresh = DelayLog.open(dir, CAPACITY, SEGMENT);
      dl.close();
      dl = fresh;
      List<Long> drained = new ArrayList<>();
      for (Entry e; (e = dl.peek()) != null; ) {
        drained.add(e.seq());
        dl.applied(e.seq());
      }
      assertThat(drained).isEqualTo(unapplied.stream().map(Appended::seq).toList());
      assertThat(dl.backlogBytes()).isZero();
      assertThat(dl.segmentCount()).isLessThanOrEqualTo(1);
    } finally {
      dl.close();
    }
  }

  /** Index in {@code entries} of the first with a seq above {@code seq}. */
  private static int indexAfter(List<Appended> entries, long seq) {
    int i = 0;
    while (i < entries.size() && entries.get(i).seq() <= seq) {
      i++;
    }
    return i;
  }

  private List<Path> segmentFiles() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().startsWith("seg-")).sorted().toList();
    }
  }

  private Path lastSegment() throws IOException {
    List<Path> all = segmentFiles();
    return all.get(all.size() - 1);
  }

  private long segmentBytesOnDisk() throws IOException {
    long sum = 0;
    for (Path p : segmentFiles()) {
      sum += Files.size(p);
    }
    return sum;
  }
}
