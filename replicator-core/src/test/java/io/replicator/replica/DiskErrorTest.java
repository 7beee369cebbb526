package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.google.common.jimfs.Configuration;
import com.google.common.jimfs.Jimfs;
import io.replicator.NodeState;
import io.replicator.PeerLossPolicy;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.Replicator;
import io.replicator.change.FileChange;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.proto.NodeMetadata;
import io.replicator.testing.ReplicaPair;
import io.replicator.tools.TreeDiff;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Full disks and I/O errors. On the secondary (an injected "No space left on device" in its apply
 * path): no write it failed to apply counts as replicated, the primary goes ALONE with the change
 * marked dirty, says why, and resyncs once space returns. On the primary's own disk: the
 * application gets the error and nothing is sent for that write.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DiskErrorTest {
  @TempDir Path base;
  private ReplicaPair pair;

  /** A secondary disk that fills up on demand: every change fails while it is full. */
  static final class FullDisk implements ApplyFaults {
    volatile boolean full;
    final AtomicLong refused = new AtomicLong();

    @Override
    public void beforeApply(long seq, FileChange change) throws IOException {
      if (full) {
        refused.incrementAndGet();
        throw new IOException("No space left on device");
      }
    }

    @Override
    public void beforeSync(Path path) throws IOException {
      if (full) {
        throw new IOException("No space left on device");
      }
    }
  }

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  private FullDisk startWithFullableReplica() throws IOException {
    pair = ReplicaPair.start(base, false);
    FullDisk disk = new FullDisk();
    ((ReplicaNode) pair.replica()).injectFaults(disk);
    return disk;
  }

  private static byte[] data(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void secondaryDiskFullInSyncGoesAloneSaysWhyAndResyncsWhenSpaceReturns() throws Exception {
    FullDisk disk = startWithFullableReplica();
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/before"), data(10_000, 1));
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();

    disk.full = true;
    byte[] during = data(200_000, 2);
    Files.write(fs.getPath("/during"), during);

    // the write returned because the primary went on alone with it marked dirty, not because
    // the secondary acknowledged it
    ReplicationStatus alone = fs.status();
    assertThat(alone.state()).as(pair.describe()).isEqualTo(NodeState.ALONE);
    assertThat(alone.peerOutOfDate()).isTrue();
    assertThat(alone.inSync()).isFalse();
    assertThat(alone.problem()).hasValueSatisfying(p -> assertThat(p).contains("No space left on device"));
    assertThat(disk.refused.get()).isPositive();
    assertThat(Files.readAllBytes(pair.primaryRoot.resolve("during"))).as("the primary's copy is intact")
        .isEqualTo(during);
    assertThat(pair.replicaRoot.resolve("during")).satisfiesAnyOf(
        p -> assertThat(Files.exists(p)).isFalse(),
        p -> assertThat(Files.readAllBytes(p)).isNotEqualTo(during));

    // while the disk stays full the primary keeps retrying and keeps saying why
    Files.write(fs.getPath("/while-full"), data(5_000, 3));
    long refusedSoFar = disk.refused.get();
    await().atMost(Duration.ofSeconds(20)).until(() -> disk.refused.get() > refusedSoFar);
    assertThat(fs.status().inSync()).isFalse();
    assertThat(fs.status().problem()).isPresent();

    disk.full = false;
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("trees after space returned").isEmpty();
    assertThat(fs.status().state()).isEqualTo(NodeState.PRIMARY);
    assertThat(fs.status().problem()).isEmpty();
  }

  /**
   * A resync's writes force nothing one by one, and once the secondary calls itself consistent
   * the primary no longer knows which blocks it sent. The file system is flushed after the resync's
   * end; a flush that fails makes the copy inconsistent again, with every block to be compared,
   * and drops the connection so that the primary resyncs it.
   */
  @Test
  void aSecondaryWhoseFlushFailsAfterAResyncStopsCallingItselfConsistent() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    for (int i = 0; i < 20; i++) {
      Files.write(fs.getPath("/f" + i), data(8_192, i));
    }
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();

    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    for (int i = 0; i < 20; i += 2) {
      Files.write(fs.getPath("/f" + i), data(8_192, 100 + i)); // forced on the primary alone
    }
    fs.close();

    AtomicLong refusedFlushes = new AtomicLong();
    java.util.concurrent.atomic.AtomicBoolean failing = new java.util.concurrent.atomic.AtomicBoolean(true);
    pair.startReplica();
    ((ReplicaNode) pair.replica()).injectFaults(new ApplyFaults() {
      @Override
      public void beforeFlush(Path root) throws IOException {
        if (failing.get()) {
          refusedFlushes.incrementAndGet();
          throw new IOException("Input/output error");
        }
      }
    });
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC);
    await().atMost(Duration.ofSeconds(30)).until(() -> refusedFlushes.get() > 0);

    // the copy records that its data is in doubt, to be compared whole; every later resync's flush
    // fails too, so the mark is found between them
    Path metadataDir = pair.replicaRoot.resolve(Replicator.METADATA_DIRECTORY);
    await().atMost(Duration.ofSeconds(30)).until(() -> {
      NodeMetadata m = NodeMetadataStore.open(metadataDir).current();
      return m.getDiscardLocal() && m.getInconsistent();
    });

    failing.set(false);
    await().atMost(Duration.ofSeconds(30)).until(() -> again.status().inSync());
    assertThat(pair.differences()).as("trees once the flush works").isEmpty();
    assertThat(pair.replica().status().problem()).isEmpty();
  }

  @Test
  void aSecondaryWhoseDiskHangsDoesNotHoldSyncWritesForever() throws Exception {
    pair = ReplicaPair.start(base, false);
    java.util.concurrent.CountDownLatch diskBack = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.atomic.AtomicBoolean hung = new java.util.concurrent.atomic.AtomicBoolean();
    ((ReplicaNode) pair.replica()).injectFaults(new ApplyFaults() {
      @Override
      public void beforeApply(long seq, FileChange change) {
        if (hung.get()) {
          try {
            diskBack.await(); // the hang itself: the apply thread is stuck in the kernel
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
      }
    });
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.ackTimeout(Duration.ofSeconds(1)));
    Files.write(fs.getPath("/before"), data(1_000, 7));
    assertThat(fs.status().inSync()).isTrue();

    hung.set(true);
    long t0 = System.nanoTime();
    // heartbeats keep the link alive; only the overdue acknowledgement gives the peer away
    Files.write(fs.getPath("/during"), data(20_000, 8));
    long waitedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertThat(waitedMillis).as("the write waited about the acknowledgement timeout").isBetween(900L, 10_000L);
    ReplicationStatus alone = fs.status();
    assertThat(alone.inSync()).isFalse();
    assertThat(alone.peerOutOfDate()).isTrue();
    assertThat(alone.problem()).hasValueSatisfying(p -> assertThat(p).contains("unacknowledged"));

    hung.set(false);
    diskBack.countDown();
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("trees once the disk is back").isEmpty();
  }

  @Test
  void underTheBlockPolicyAWriteTheSecondaryCouldNotApplyFailsInTheApplication() throws Exception {
    FullDisk disk = startWithFullableReplica();
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
        b -> b.onPeerLoss(PeerLossPolicy.BLOCK, Duration.ofSeconds(1)));
    Files.write(fs.getPath("/before"), data(1_000, 4));

    disk.full = true;
    assertThatThrownBy(() -> {
      try (FileChannel ch = FileChannel.open(fs.getPath("/refused"), StandardOpenOption.CREATE,
          StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data(50_000, 5)));
      }
    }).isInstanceOf(IOException.class);
    assertThat(fs.status().inSync()).isFalse();

    disk.full = false;
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("what the primary kept locally is resynced").isEmpty();
  }

  @Test
  void primaryDiskFullReachesTheApplicationAndNothingIsSentForThatWrite() throws Exception {
    pair = ReplicaPair.start(base, false);
    // the primary's own disk: 8 MiB, so a large write finds it full
    try (FileSystem disk = Jimfs.newFileSystem(Configuration.unix().toBuilder().setMaxSize(8L << 20).build())) {
      Path primaryRoot = disk.getPath("/data");
      try (ReplicatedFileSystem fs = Replicator.primary(primaryRoot)
          .peer(new InetSocketAddress("127.0.0.1", pair.replica().localAddress().getPort()))
          .nodeId("jimfs-primary").heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500)).open()) {
        Files.write(fs.getPath("/small"), data(4_000, 6));
        assertThat(fs.status().inSync()).as(pair.describe()).isTrue();

        try (FileChannel ch = FileChannel.open(fs.getPath("/big"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE)) {
          long sentBefore = fs.status().lastSequence();
          assertThatThrownBy(() -> ch.write(ByteBuffer.wrap(data(16 << 20, 7))))
              .isInstanceOf(IOException.class);
          assertThat(fs.status().lastSequence()).as("nothing numbered for the failed write").isEqualTo(sentBefore);
          // the open's create is applied (an open does not wait for it), and nothing after it
          await().atMost(Duration.ofSeconds(10)).until(() -> pair.replica().status().appliedSequence() >= sentBefore);
          assertThat(pair.replica().status().appliedSequence()).isEqualTo(sentBefore);
          assertThat(Files.size(pair.replicaRoot.resolve("big"))).isZero();
          assertThat(ch.size()).isEqualTo(Files.size(pair.replicaRoot.resolve("big")));

          // the file system is still usable, and still replicated
          ch.write(ByteBuffer.wrap(data(1_000, 8)));
        }
        assertThat(fs.status().inSync()).isTrue();
        assertThat(fs.status().state()).isEqualTo(NodeState.PRIMARY);
        assertThat(Files.readAllBytes(pair.replicaRoot.resolve("big")))
            .isEqualTo(Files.readAllBytes(primaryRoot.resolve("big")));
        assertThat(Arrays.equals(Files.readAllBytes(pair.replicaRoot.resolve("small")),
            Files.readAllBytes(primaryRoot.resolve("small")))).isTrue();
        assertThat(TreeDiff.compare(primaryRoot, pair.replicaRoot)).isEmpty();
      }
    }
  }
}
