package io.replicator.stream;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The spill's file FIFO: order, bound, emptying and reuse, large records, and what a stop leaves. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class SpillQueueTest {
  @TempDir Path dir;

  private static FileChange.Write write(String path, long position, byte[] data) {
    return new FileChange.Write(path, position, ByteBuffer.wrap(data));
  }

  private static byte[] bytes(FileChange change) {
    ByteBuffer b = change.payload().duplicate();
    byte[] out = new byte[b.remaining()];
    b.get(out);
    return out;
  }

  private static List<FileChange> drain(SpillQueue q) throws IOException {
    List<FileChange> out = new ArrayList<>();
    for (SpillQueue.Head h; (h = q.peek()) != null; ) {
      out.add(h.change());
      q.remove();
    }
    return out;
  }

  private long filesBytes() throws IOException {
    try (Stream<Path> files = Files.list(dir.resolve("spill"))) {
      return files.mapToLong(f -> f.toFile().length()).sum();
    }
  }

  @Test
  void changesComeBackInTheOrderTheyWereSpilledWithTheirData() throws IOException {
    Random rnd = new Random(1);
    List<byte[]> data = new ArrayList<>();
    try (SpillQueue q = SpillQueue.open(dir.resolve("spill"), 64L << 20)) {
      for (int i = 0; i < 200; i++) {
        byte[] d = new byte[rnd.nextInt(20_000)];
        rnd.nextBytes(d);
        data.add(d);
        assertThat(q.append(write("f" + (i % 7), i * 100L, d))).isTrue();
        if (i % 10 == 0) {
          assertThat(q.append(new FileChange.Delete("gone" + i))).isTrue();
        }
      }
      assertThat(q.changes()).isEqualTo(220);
      List<FileChange> out = drain(q);
      int w = 0;
      for (int i = 0; i < out.size(); i++) {
        FileChange c = out.get(i);
        if (c instanceof FileChange.Delete d) {
          assertThat(d.path()).isEqualTo("gone" + (w - 1));
          continue;
        }
        FileChange.Write got = (FileChange.Write) c;
        assertThat(got.path()).isEqualTo("f" + (w % 7));
        assertThat(got.position()).isEqualTo(w * 100L);
        assertThat(bytes(got)).as("write %d", w).isEqualTo(data.get(w));
        w++;
      }
      assertThat(w).isEqualTo(200);
      assertThat(q.isEmpty()).isTrue();
      assertThat(q.bytes()).isZero();
    }
  }

  @Test
  void appendPastTheBoundIsRefusedAndLeavesTheQueueAsItWas() throws IOException {
    try (SpillQueue q = SpillQueue.open(dir.resolve("spill"), 100_000)) {
      int accepted = 0;
      while (q.append(write("a", accepted * 10_000L, new byte[10_000]))) {
        accepted++;
      }
      assertThat(accepted).isBetween(8, 9);
      long bytes = q.bytes();
      assertThat(bytes).isLessThanOrEqualTo(100_000);
      assertThat(q.append(write("a", 0, new byte[10_000]))).isFalse();
      assertThat(q.bytes()).isEqualTo(bytes);
      assertThat(q.changes()).isEqualTo(accepted);
      // a small change still fits where a large one did not
      assertThat(q.append(new FileChange.Delete("b"))).isTrue();
      assertThat(drain(q)).hasSize(accepted + 1);
    }
  }

  @Test
  void aDrainedQueueReusesItsFileFromTheStart() throws IOException {
    try (SpillQueue q = SpillQueue.open(dir.resolve("spill"), 64L << 20)) {
      for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 50; i++) {
          assertThat(q.append(write("r", i, new byte[4096]))).isTrue();
        }
        assertThat(filesBytes()).isGreaterThan(50 * 4096);
        assertThat(drain(q)).hasSize(50);
        assertThat(filesBytes()).as("round %d", round).isZero();
      }
      try (Stream<Path> files = Files.list(dir.resolve("spill"))) {
        assertThat(files.count()).isEqualTo(1);
      }
    }
  }

  @Test
  void aBacklogThatNeverEmptiesStillGivesBackTheSpaceItRead() throws IOException {
    // a 1 MiB bound gives 1 MiB segments: reading keeps pace with appending, the queue never empties
    try (SpillQueue q = SpillQueue.open(dir.resolve("spill"), 1L << 20)) {
      byte[] d = new byte[16 * 1024];
      for (int i = 0; i < 1000; i++) {
        assertThat(q.append(write("s", i, d))).isTrue();
        if (i >= 10) {
          assertThat(q.peek()).isNotNull();
          q.remove();
        }
      }
      assertThat(q.changes()).isEqualTo(10);
      assertThat(filesBytes()).as("disk held by a 10-change backlog").isLessThan(3L << 20);
    }
  }

  @Test
  void recordsOfOneMebibyteGoThroughEvenPastTheSegmentSize() throws IOException {
    Random rnd = new Random(2);
    try (SpillQueue q = SpillQueue.open(dir.resolve("spill"), 8L << 20)) {
      List<byte[]> data = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        byte[] d = new byte[1 << 20];
        rnd.nextBytes(d);
        data.add(d);
        assertThat(q.append(write("big", (long) i << 20, d))).isTrue();
      }
      List<FileChange> out = drain(q);
      assertThat(out).hasSize(5);
      for (int i = 0; i < 5; i++) {
        assertThat(bytes(out.get(i))).as("record %d", i).isEqualTo(data.get(i));
      }
    }
  }

  @Test
  void whatAStoppedProcessLeftIsReadBackUpToATornAppend() throws IOException {
    Path spill = dir.resolve("spill");
    try (SpillQueue q = SpillQueue.open(spill, 64L << 20)) {
      for (int i = 0; i < 3; i++) {
        q.append(write("left", i * 10L, new byte[] {1, 2, 3}));
      }
    }
    // a torn append at the end: a length and half a header
    Path segment;
    try (Stream<Path> files = Files.list(spill)) {
      segment = files.findFirst().orElseThrow();
    }
    Files.write(segment, new byte[] {0, 0, 0, 40, 0, 0, 0, 0, 9, 9}, java.nio.file.StandardOpenOption.APPEND);
    try (SpillQueue q = SpillQueue.open(spill, 64L << 20)) {
      assertThat(q.changes()).isEqualTo(3);
      List<String> seen = new ArrayList<>();
      q.forEach(false, h -> seen.add(h.change().path() + "@" + ((FileChange.Write) h.change()).position()
          + "+" + h.payloadLength()));
      assertThat(seen).containsExactly("left@0+3", "left@10+3", "left@20+3");
      q.clear();
      assertThat(q.isEmpty()).isTrue();
      assertThat(q.append(new FileChange.Delete("next"))).isTrue();
      assertThat(drain(q)).extracting(FileChange::path).containsExactly("next");
    }
  }
}
