package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.replicator.meta.NodeMetadataStore;
import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** What a primary does when its secondary dies or the link drops: keep every byte, say so, come back. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PeerLossTest {
  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void secondaryKilledPrimaryGoesAloneMarksItOutOfDateAndResyncsItOnReturn() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/before"), "replicated".getBytes());
    assertThat(fs.status().inSync()).isTrue();

    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    long t0 = System.nanoTime();
    Files.write(fs.getPath("/while-alone"), "local only".getBytes());
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("writes do not wait for a dead peer")
        .isLessThan(Duration.ofSeconds(2));

    ReplicationStatus alone = fs.status();
    assertThat(alone.state()).isEqualTo(NodeState.ALONE);
    assertThat(alone.peerOutOfDate()).isTrue();
    assertThat(alone.inSync()).isFalse();
    assertThat(NodeMetadataStore.open(pair.primaryRoot.resolve(".replicator")).current().getGenerations().getBitmap())
        .as("the primary tracks changes since the peer's generation, on disk").isNotZero();
    assertThat(Files.readString(pair.primaryRoot.resolve("while-alone"))).isEqualTo("local only");

    pair.startReplica();
    await().atMost(Duration.ofSeconds(20)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("the returning secondary was resynced").isEmpty();
    assertThat(fs.status().state()).isEqualTo(NodeState.PRIMARY);
  }

  @Test
  void linkCutMidStreamLosesAndCorruptsNothingLocally() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    byte[] expected = new byte[2 << 20];
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong writes = new AtomicLong();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread writer = new Thread(() -> {
      Random rnd = new Random(11);
      try (FileChannel ch = FileChannel.open(fs.getPath("/stream.dat"), StandardOpenOption.CREATE,
          StandardOpenOption.WRITE)) {
        while (!stop.get()) {
          byte[] data = new byte[1 + rnd.nextInt(32 * 1024)];
          rnd.nextBytes(data);
          int pos = rnd.nextInt(expected.length - data.length);
          ch.write(ByteBuffer.wrap(data), pos);
          System.arraycopy(data, 0, expected, pos, data.length);
          writes.incrementAndGet();
        }
      } catch (Throwable e) {
        failure.set(e);
      }
    });
    writer.start();
    await().atMost(Duration.ofSeconds(20)).until(() -> writes.get() > 200);
    pair.proxy().cut();
    pair.proxy().refuse(true);
    long atCut = writes.get();
    await().atMost(Duration.ofSeconds(20)).until(() -> writes.get() > atCut + 200);
    assertThat(fs.status().peerConnected()).isFalse();
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(20)).until(() -> fs.status().peerConnected());
    long afterReconnect = writes.get();
    await().atMost(Duration.ofSeconds(20)).until(() -> writes.get() > afterReconnect + 200);
    stop.set(true);
    writer.join(30_000);
    assertThat(failure.get()).as("the application saw no error").isNull();
    byte[] local = Files.readAllBytes(pair.primaryRoot.resolve("stream.dat"));
    assertThat(Arrays.copyOf(local, expected.length)).as("local data is exactly what was written").isEqualTo(expected);
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as(pair.describe()).isEmpty();
  }

  @Test
  void blockPolicyMakesWritesWaitThenFailClearly() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
        b -> b.onPeerLoss(PeerLossPolicy.BLOCK, Duration.ofMillis(700)));
    Files.write(fs.getPath("/ok"), "ok".getBytes());
    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    assertThat(fs.status().state()).isEqualTo(NodeState.WAIT);

    long t0 = System.nanoTime();
    assertThatThrownBy(() -> Files.write(fs.getPath("/refused"), "x".getBytes()))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("BLOCK");
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isBetween(Duration.ofMillis(600), Duration.ofSeconds(5));
    assertThat(Files.exists(pair.primaryRoot.resolve("refused"))).as("a refused change is not made locally").isFalse();

    pair.startReplica();
    await().atMost(Duration.ofSeconds(20)).until(() -> fs.status().peerConnected());
    Files.write(fs.getPath("/after"), "after".getBytes());
    assertThat(Files.readString(pair.replicaRoot.resolve("after"))).isEqualTo("after");
  }

  @Test
  void peerAbsentAtOpenPrimaryServesAloneThenConnects() throws Exception {
    pair = ReplicaPair.start(base, false);
    pair.stopReplica();
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.connectTimeout(Duration.ofMillis(300)));
    assertThat(fs.status().peerConnected()).isFalse();
    Files.write(fs.getPath("/alone"), "alone".getBytes());
    assertThat(fs.status().peerOutOfDate()).isTrue();
    pair.startReplica();
    await().atMost(Duration.ofSeconds(20)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).isEmpty();
  }

  @Test
  void cleanCloseAndReopenStaysInSync() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/one"), "1".getBytes());
    fs.close();
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(again.getPath("/two"), "2".getBytes());
    assertThat(again.status().inSync()).as(pair.describe()).isTrue();
    assertThat(pair.differences()).isEmpty();
  }

  @Test
  void peerThatAnswersAfterTheConnectTimeoutWhileTheApplicationWritesEndsInSync() throws Exception {
    // a secondary whose JVM is still warming up answers late: the primary goes on alone, marks what
    // the peer misses, and the late connection must not leave it behind on a link that looks in sync
    for (int round = 0; round < 3; round++) {
      Path dir = Files.createDirectories(base.resolve("round" + round));
      pair = ReplicaPair.start(dir, true);
      pair.proxy().delay(300);
      ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
          b -> b.connectTimeout(Duration.ofMillis(150)));
      AtomicBoolean stop = new AtomicBoolean();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      Thread writer = new Thread(() -> {
        try (FileChannel ch = FileChannel.open(fs.getPath("/log"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
          while (!stop.get()) {
            ch.write(ByteBuffer.wrap("record\n".getBytes()));
          }
        } catch (Throwable t) {
          failure.set(t);
        }
      }, "writer");
      writer.start();
      try {
        await().atMost(Duration.ofSeconds(5)).until(() -> fs.status().peerConnected());
        pair.proxy().delay(0);
        await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
      } finally {
        stop.set(true);
        writer.join(10_000);
      }
      assertThat(failure.get()).isNull();
      await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
      assertThat(pair.differences()).as("round %d: %s", round, pair.describe()).isEmpty();
      pair.close();
      pair = null;
    }
  }
}
