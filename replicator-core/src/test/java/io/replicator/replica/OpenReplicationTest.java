package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.replicator.PeerLossPolicy;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.change.FileChange;
import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What an open that creates (or empties) a file promises in SYNC: the open itself does not wait
 * for the secondary, but the channel's first write, truncate or force, and its close, return only
 * once the secondary has the file; an error replicating the open surfaces there.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OpenReplicationTest {
  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  /** Holds the secondary's create of one file until released: a slow secondary disk. */
  private static final class SlowCreate implements ApplyFaults {
    final String path;
    final CountDownLatch release = new CountDownLatch(1);
    final CountDownLatch reached = new CountDownLatch(1);

    SlowCreate(String path) {
      this.path = path;
    }

    @Override
    public void beforeApply(long seq, FileChange change) throws IOException {
      if (change instanceof FileChange.CreateFile && change.path().equals(path)) {
        reached.countDown();
        try {
          if (!release.await(30, TimeUnit.SECONDS)) {
            throw new IOException("test latch never released");
          }
        } catch (InterruptedException e) {
          throw new InterruptedIOException("interrupted in the fault hook");
        }
      }
    }
  }

  @Test
  void anOpenThatCreatesReturnsBeforeTheSecondaryHasTheFileAndItsCloseReturnsAfter() throws Exception {
    pair = ReplicaPair.start(base, false);
    SlowCreate slow = new SlowCreate("made");
    ((ReplicaNode) pair.replica()).injectFaults(slow);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);

    FileChannel ch = FileChannel.open(fs.getPath("/made"), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    // the open returned while the secondary is still held in its create
    assertThat(slow.reached.await(10, TimeUnit.SECONDS)).isTrue();
    assertThat(Files.exists(pair.replicaRoot.resolve("made"))).isFalse();

    Thread closer = new Thread(() -> {
      try {
        ch.close();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }, "test-closer");
    closer.start();
    // the close waits for the create: still running while the secondary is held
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(5)).until(closer::isAlive);
    slow.release.countDown();
    closer.join(TimeUnit.SECONDS.toMillis(10));
    assertThat(closer.isAlive()).isFalse();
    assertThat(Files.exists(pair.replicaRoot.resolve("made"))).as("the file is there once close returned").isTrue();
  }

  @Test
  void theFirstWriteAfterAnOpenReturnsWithTheFileAndItsDataOnTheSecondary() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    for (int i = 0; i < 50; i++) {
      byte[] data = ("file " + i).getBytes(java.nio.charset.StandardCharsets.UTF_8);
      try (FileChannel ch = FileChannel.open(fs.getPath("/f" + i), StandardOpenOption.CREATE,
          StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data));
        // checked before close: the write alone implies the create
        assertThat(Files.readAllBytes(pair.replicaRoot.resolve("f" + i))).isEqualTo(data);
      }
    }
    assertThat(pair.differences()).isEmpty();
  }

  @Test
  void underTheBlockPolicyAnOpenTheSecondaryCouldNotApplyFailsAtTheChannelsNextStep() throws Exception {
    pair = ReplicaPair.start(base, false);
    DiskErrorTest.FullDisk disk = new DiskErrorTest.FullDisk();
    ((ReplicaNode) pair.replica()).injectFaults(disk);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
        b -> b.onPeerLoss(PeerLossPolicy.BLOCK, Duration.ofSeconds(1)));
    Files.write(fs.getPath("/before"), new byte[] {1});

    disk.full = true;
    FileChannel ch = FileChannel.open(fs.getPath("/refused"), StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE);
    // the secondary refuses the create; the link drops, and the channel's close reports it
    assertThatThrownBy(ch::close).isInstanceOf(IOException.class).hasMessageContaining("not replicated");
    assertThat(fs.status().peerOutOfDate()).isTrue();

    disk.full = false;
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(Files.exists(pair.replicaRoot.resolve("refused"))).as("resynced once space returned").isTrue();
    assertThat(pair.differences()).isEmpty();
  }
}
