package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Online verify finds what silently differs, marks it dirty, and resync repairs it. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OnlineVerifyTest {
  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  private ReplicatedFileSystem populated() throws IOException {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.createDirectories(fs.getPath("/d"));
    for (int i = 0; i < 5; i++) {
      byte[] data = new byte[300_000 + i];
      new java.util.Random(i).nextBytes(data);
      Files.write(fs.getPath("/d/f" + i), data);
    }
    return fs;
  }

  @Test
  void identicalTreesVerifyClean() throws Exception {
    ReplicatedFileSystem fs = populated();
    VerifyReport report = fs.verify();
    assertThat(report.identical()).as(report.toString()).isTrue();
    assertThat(report.pathsCompared()).isEqualTo(7); // root, d, five files
    assertThat(report.bytesCompared()).isGreaterThanOrEqualTo(5 * 300_000L);
    assertThat(fs.status().inSync()).isTrue();
  }

  @Test
  void silentCorruptionOnTheSecondaryIsFoundAndRepaired() throws Exception {
    ReplicatedFileSystem fs = populated();
    // behind the replica's back: a flipped block, an extra file, a missing file
    try (FileChannel ch = FileChannel.open(pair.replicaRoot.resolve("d/f2"), StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(new byte[100]), 10_000);
    }
    Files.write(pair.replicaRoot.resolve("d/stray"), "stray".getBytes());
    Files.delete(pair.replicaRoot.resolve("d/f4"));

    VerifyReport report = fs.verify();
    assertThat(report.blocksDiffering()).isEqualTo(1);
    assertThat(report.pathsDiffering()).isEqualTo(2);
    assertThat(report.examples()).anyMatch(e -> e.contains("d/f2")).anyMatch(e -> e.contains("d/stray"))
        .anyMatch(e -> e.contains("d/f4"));
    assertThat(fs.status().inSync()).as("differences are marked dirty").isFalse();

    fs.resync();
    assertThat(fs.status().inSync()).as(fs.status().toString()).isTrue();
    assertThat(pair.differences()).isEmpty();
    assertThat(fs.verify().identical()).isTrue();
  }

  @Test
  void verifyOfALiveTreeReportsNothingWhileEveryKindOfChangeGoesOn() throws Exception {
    ReplicatedFileSystem fs = populated();
    long seed = System.nanoTime();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    List<Thread> writers = new ArrayList<>();
    // a log appended and forced without pause, as the demo's ledger is
    writers.add(new Thread(() -> {
      try (FileChannel log = FileChannel.open(fs.getPath("/ledger.log"), StandardOpenOption.CREATE,
          StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
        byte[] record = new byte[32];
        for (long n = 0; !stop.get(); n++) {
          java.util.Arrays.fill(record, (byte) n);
          log.write(ByteBuffer.wrap(record));
          log.force(false);
        }
      } catch (Throwable e) {
        failure.compareAndSet(null, e);
      }
    }, "ledger"));
    // every other kind of change, in rounds over fresh directories
    writers.add(new Thread(() -> {
      try {
        for (int round = 0; !stop.get(); round++) {
          RandomWorkload.run(fs, 2, 40, seed + round, 2 * round);
        }
      } catch (Throwable e) {
        failure.compareAndSet(null, e);
      }
    }, "workload"));
    writers.forEach(Thread::start);
    try {
      await().atMost(Duration.ofSeconds(30)).until(() -> Files.size(fs.getPath("/ledger.log")) > 3_200);
      for (int i = 0; i < 3; i++) {
        VerifyReport report = fs.verify();
        assertThat(report.identical()).as("verify %d under writes (seed %d): %s", i, seed, report).isTrue();
        assertThat(report.pathsCompared()).isGreaterThan(7);
        assertThat(fs.status().peerOutOfDate()).as("nothing was marked dirty").isFalse();
      }
    } finally {
      stop.set(true);
      for (Thread t : writers) {
        t.join(60_000);
      }
    }
    assertThat(failure.get()).isNull();
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("seed %d", seed).isEmpty();
    assertThat(fs.verify().identical()).isTrue();
  }

  @Test
  void verifyWithoutThePeerSaysSo() throws Exception {
    ReplicatedFileSystem fs = populated();
    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    assertThatThrownBy(fs::verify).isInstanceOf(IOException.class).hasMessageContaining("not connected");
  }
}
