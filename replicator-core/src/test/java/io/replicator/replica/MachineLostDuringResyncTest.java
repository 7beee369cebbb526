package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.proto.NodeMetadata;
import io.replicator.testing.ReplicaPair;
import io.replicator.change.FileChange;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A secondary's machine that goes down while a resync into it runs loses the blocks still in its
 * page cache, which it had acknowledged and the primary had forgotten. Coming back under another
 * boot, it has every block compared instead of resuming with what the primary still knows.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MachineLostDuringResyncTest {
  @TempDir Path base;
  private ReplicaPair pair;
  private final CountDownLatch powerLost = new CountDownLatch(1);

  @AfterEach
  void close() throws IOException {
    powerLost.countDown();
    if (pair != null) {
      pair.close();
    }
  }

  @ParameterizedTest(name = "inconsistent={0}, resync boot [{1}], boot now [{2}] -> lost {3}")
  @CsvSource({
      "true,  boot-a, boot-b, true",   // the machine restarted during the resync
      "true,  boot-a, boot-a, false",  // only the process died: the page cache survived
      "false, '',     boot-b, false",  // no resync ran
      "false, boot-a, boot-b, false",  // a copy that is consistent is not second-guessed
      "true,  '',     boot-b, false",  // inconsistent for another reason (no resync recorded)
      "true,  boot-a, '',     false",  // a kernel that gives no boot id: nothing to compare
  })
  void aResyncIsTakenAsLostOnlyWhenTheMachineRestartedDuringIt(boolean inconsistent, String resyncBoot,
      String bootNow, boolean lost) {
    NodeMetadata m = NodeMetadata.newBuilder().setInconsistent(inconsistent).setResyncBootId(resyncBoot).build();
    assertThat(ReplicaSyncState.resyncLostWithTheMachine(m, bootNow)).isEqualTo(lost);
  }

  private static byte[] data(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void blocksAppliedButNeverWrittenToDiskBeforeThePowerLossAreSentAgain() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    for (int i = 0; i < 10; i++) {
      Files.write(fs.getPath("/f" + i), data(8_192, i));
    }
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
    byte[] before = Files.readAllBytes(pair.replicaRoot.resolve("f0"));

    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    for (int i = 0; i < 10; i += 2) {
      // rewritten in place and forced on the primary alone: dirty blocks, no dirty path
      try (FileChannel ch = FileChannel.open(fs.getPath("/f" + i), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data(8_192, 100 + i)), 0);
        ch.force(false);
      }
    }

    // the resync applies and acknowledges /f0's blocks; the machine goes down before the last file's
    AtomicLong held = new AtomicLong();
    pair.proxy().refuse(true);
    pair.startReplica();
    ((ReplicaNode) pair.replica()).injectFaults(new ApplyFaults() {
      @Override
      public void beforeApply(long seq, FileChange change) throws IOException {
        if (change.path().endsWith("f8")) {
          held.incrementAndGet();
          try {
            powerLost.await(60, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          throw new IOException("the machine lost power");
        }
      }
    });
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(30)).until(() -> held.get() > 0);
    pair.proxy().refuse(true); // the link goes with the machine
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    powerLost.countDown();
    pair.stopReplica();

    // what the power loss did: the page cache with the resync's blocks is gone, and so is the boot
    Files.write(pair.replicaRoot.resolve("f0"), before);
    NodeMetadataStore metadata = NodeMetadataStore.open(pair.replicaRoot.resolve(ReplicaSyncState.METADATA_DIRECTORY));
    assertThat(metadata.current().getInconsistent()).as("the secondary's record after the lost resync").isTrue();
    metadata.write(metadata.current().toBuilder().setResyncBootId("the-boot-before-the-power-loss").build());

    pair.startReplica();
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("trees after the secondary came back from the power loss").isEmpty();
    assertThat(pair.replica().status().problem()).isEmpty();
  }
}
