package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The end of a resync is a hand-shake: the primary clears its record that the peer is out of date
 * only once the peer acknowledged that it recorded the end. A link lost in between leaves the
 * record, so the primary never calls a peer current that is not.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LinkLostAtResyncEndTest {
  @TempDir Path base;
  private ReplicaPair pair;
  private final CountDownLatch linkGone = new CountDownLatch(1);

  @AfterEach
  void close() throws IOException {
    linkGone.countDown();
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void aLinkLostBeforeThePeerRecordedTheEndLeavesThePeerOutOfDate() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Random random = new Random(1);
    byte[] data = new byte[8_192];
    for (int i = 0; i < 6; i++) {
      random.nextBytes(data);
      Files.write(fs.getPath("/f" + i), data);
    }
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();

    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    for (int i = 0; i < 6; i += 2) {
      random.nextBytes(data);
      try (FileChannel ch = FileChannel.open(fs.getPath("/f" + i), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data), 0);
      }
    }

    // the secondary holds the resync's end (its flush) until the link is gone, then fails it
    Path replicaRoot = pair.replicaRoot.toRealPath();
    AtomicLong ending = new AtomicLong();
    pair.proxy().refuse(true);
    pair.startReplica();
    ((ReplicaNode) pair.replica()).injectFaults(new ApplyFaults() {
      @Override
      public void beforeSync(Path path) throws IOException {
        if (path.toRealPath().equals(replicaRoot) && ending.incrementAndGet() == 1) {
          try {
            linkGone.await(60, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          throw new IOException("Input/output error");
        }
      }
    });
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(30)).until(() -> ending.get() > 0);
    pair.proxy().refuse(true);
    await().atMost(Duration.ofSeconds(10)).until(() -> {
      ReplicationStatus s = fs.status();
      return !s.peerConnected() && s.resync().isEmpty();
    });

    assertThat(fs.status().peerOutOfDate()).as("the primary, whose resync end was never recorded by the peer: %s",
        pair.describe()).isTrue();

    linkGone.countDown();
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as(pair.describe()).isEmpty();
  }
}
