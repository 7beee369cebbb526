package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.change.FileChange;
import io.replicator.meta.NodeMetadataStore;
import io.replicator.proto.NodeMetadata;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A resync cut short, by the secondary's machine going down or by the link. Blocks the secondary
 * acknowledged may still have been only in its page cache: coming back under another boot, it has
 * every block compared, whether the resync had ended or not. And the end of a resync is a hand-shake: the primary calls the peer current
 * only once the peer acknowledged recording the end.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ResyncCutShortTest {
  private static final int FILES = 10;

  @TempDir Path base;
  private ReplicaPair pair;
  private ReplicatedFileSystem fs;
  /** Opened when the link (or the machine) is gone: a held step on the secondary then fails. */
  private final CountDownLatch cut = new CountDownLatch(1);

  @AfterEach
  void close() throws IOException {
    cut.countDown();
    if (pair != null) {
      pair.close();
    }
  }

  @ParameterizedTest(name = "inconsistent={0}, unflushed resync's boot [{1}], boot now [{2}] -> lost {3}")
  @CsvSource({
      "true,  boot-a, boot-b, true",   // the machine restarted during the resync
      "true,  boot-a, boot-a, false",  // only the process died: the page cache survived
      "false, '',     boot-b, false",  // no resync ran
      "false, boot-a, boot-b, true",   // the resync had ended, the flush after it had not
      "true,  '',     boot-b, false",  // inconsistent for another reason (no resync recorded)
      "true,  boot-a, '',     false",  // a kernel that gives no boot id: nothing to compare
  })
  void aResyncIsTakenAsLostOnlyWhenTheMachineRestartedDuringIt(boolean inconsistent, String resyncBoot,
      String bootNow, boolean lost) {
    NodeMetadata m = NodeMetadata.newBuilder().setInconsistent(inconsistent).setResyncBootId(resyncBoot).build();
    assertThat(ReplicaSyncState.resyncLostWithTheMachine(m, bootNow)).isEqualTo(lost);
  }

  @Test
  void blocksAppliedButNeverWrittenToDiskBeforeThePowerLossAreSentAgain() throws Exception {
    secondaryAwayWhileEvenFilesAreRewrittenInPlace();
    byte[] before = Files.readAllBytes(pair.replicaRoot.resolve("f0"));

    // the resync applies and acknowledges /f0's blocks; the machine goes down before the last file's
    holdThenCut(new ApplyFaults() {
      @Override
      public void beforeApply(long seq, FileChange change) throws IOException {
        if (change.path().endsWith("f8")) {
          hold(change);
        }
      }
    });
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

  @Test
  void aPowerLossAfterTheResyncsEndButBeforeItsFlushLeavesAnInconsistentCopyThatIsComparedWhole()
      throws Exception {
    assumeFalse(ReplicaSyncState.BOOT_ID.isEmpty(), "no boot id here: a resync's end waits for its flush");
    secondaryAwayWhileEvenFilesAreRewrittenInPlace();
    byte[] before = Files.readAllBytes(pair.replicaRoot.resolve("f0"));

    // the resync ends and the pair is in sync; the flush that follows is held
    pair.startReplica();
    ((ReplicaNode) pair.replica()).injectFaults(holdingTheFlush());
    await().atMost(Duration.ofSeconds(30)).until(() -> held.get() > 0 && fs.status().inSync());
    Path metadataDir = pair.replicaRoot.resolve(ReplicaSyncState.METADATA_DIRECTORY);
    NodeMetadata onDisk = NodeMetadataStore.open(metadataDir).current();
    assertThat(onDisk.getInconsistent()).as("the secondary's record once the resync ended").isFalse();
    assertThat(onDisk.getResyncBootId()).as("the boot its unflushed data depends on")
        .isEqualTo(ReplicaSyncState.BOOT_ID);

    // the power loss: the link, the page cache with the resync's blocks and the boot are gone; the
    // disk holds the record as it was written
    pair.proxy().refuse(true);
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    cut.countDown();
    pair.stopReplica();
    Files.write(pair.replicaRoot.resolve("f0"), before);
    NodeMetadataStore.open(metadataDir).write(onDisk.toBuilder()
        .setResyncBootId("the-boot-before-the-power-loss").build());
    assertThat(io.replicator.LocalData.read(pair.replicaRoot).consistent())
        .as("the copy, to whoever decides roles before it starts").isFalse();

    pair.startReplica();
    assertThat(pair.replica().status().problem()).as("the secondary back from the power loss")
        .hasValueSatisfying(p -> assertThat(p).contains("inconsistent"));
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("trees after the secondary came back from the power loss").isEmpty();
    assertThat(pair.replica().status().problem()).isEmpty();
  }

  @Test
  void aSecondaryStoppedBeforeItsFlushAfterAResyncFlushesAtItsNextStartUnderTheSameBoot() throws Exception {
    assumeFalse(ReplicaSyncState.BOOT_ID.isEmpty(), "no boot id here: a resync's end waits for its flush");
    secondaryAwayWhileEvenFilesAreRewrittenInPlace();
    pair.startReplica();
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    pair.stopReplica();

    // as the record reads when the process stopped between the resync's end and its flush
    Path metadataDir = pair.replicaRoot.resolve(ReplicaSyncState.METADATA_DIRECTORY);
    NodeMetadataStore.open(metadataDir).write(NodeMetadataStore.open(metadataDir).current().toBuilder()
        .setResyncBootId(ReplicaSyncState.BOOT_ID).build());
    assertThat(io.replicator.LocalData.read(pair.replicaRoot).consistent())
        .as("a copy whose page cache survived").isTrue();

    pair.startReplica();
    await().atMost(Duration.ofSeconds(30))
        .until(() -> NodeMetadataStore.open(metadataDir).current().getResyncBootId().isEmpty());
    assertThat(pair.replica().status().problem()).isEmpty();
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).isEmpty();
  }

  @Test
  void afterAFailedFlushEveryBlockIsComparedNotOnlyThoseNeverAcknowledged() throws Exception {
    secondaryAwayWhileEvenFilesAreRewrittenInPlace();
    byte[] before = Files.readAllBytes(pair.replicaRoot.resolve("f0"));

    // every block applied and acknowledged; then the flush fails, as a failed writeback reports it
    holdThenCut(holdingTheFlush());
    Path metadataDir = pair.replicaRoot.resolve(ReplicaSyncState.METADATA_DIRECTORY);
    await().atMost(Duration.ofSeconds(10))
        .until(() -> NodeMetadataStore.open(metadataDir).current().getDiscardLocal());
    pair.stopReplica();

    // the kernel dropped the pages it could not write: the old blocks are what the disk holds
    Files.write(pair.replicaRoot.resolve("f0"), before);
    pair.startReplica();
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as("trees after a failed flush on the secondary").isEmpty();
  }

  @Test
  void aLinkLostBeforeThePeerRecordedTheResyncsEndLeavesThePeerOutOfDate() throws Exception {
    secondaryAwayWhileEvenFilesAreRewrittenInPlace();

    // the secondary holds the resync's end until the link is gone, then fails it
    holdThenCut(new ApplyFaults() {
      @Override
      public void beforeResyncEnd() throws IOException {
        hold("the resync's end");
      }
    });
    await().atMost(Duration.ofSeconds(10)).until(() -> fs.status().resync().isEmpty());
    assertThat(fs.status().peerOutOfDate())
        .as("the primary, whose resync end the peer never recorded: %s", pair.describe()).isTrue();

    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
    assertThat(pair.differences()).as(pair.describe()).isEmpty();
  }

  private final AtomicLong held = new AtomicLong();

  /** Holds the secondary's apply thread (the first time only) until the link is cut, then fails. */
  private void hold(Object what) throws IOException {
    if (held.incrementAndGet() > 1) {
      return;
    }
    try {
      cut.await(60, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    throw new IOException("cut short at " + what);
  }

  /** Holds the secondary's flush of its file system (the resync's end), then fails it. */
  private ApplyFaults holdingTheFlush() {
    return new ApplyFaults() {
      @Override
      public void beforeFlush(Path root) throws IOException {
        hold(root);
      }
    };
  }

  /** In sync; then the secondary is away while every other file is rewritten in place and forced. */
  private void secondaryAwayWhileEvenFilesAreRewrittenInPlace() throws Exception {
    pair = ReplicaPair.start(base, true);
    fs = pair.openPrimary(ReplicationMode.SYNC);
    for (int i = 0; i < FILES; i++) {
      Files.write(fs.getPath("/f" + i), data(i));
    }
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    for (int i = 0; i < FILES; i += 2) {
      // in place: dirty blocks, no dirty path
      try (FileChannel ch = FileChannel.open(fs.getPath("/f" + i), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data(100 + i)), 0);
        ch.force(false);
      }
    }
  }

  /**
   * Starts the secondary with {@code faults} (before the primary can reach it), waits until a fault
   * holds, cuts the link (refusing new connections) and lets the held step fail.
   */
  private void holdThenCut(ApplyFaults faults) throws Exception {
    pair.proxy().refuse(true);
    pair.startReplica();
    ((ReplicaNode) pair.replica()).injectFaults(faults);
    pair.proxy().refuse(false);
    await().atMost(Duration.ofSeconds(30)).until(() -> held.get() > 0);
    pair.proxy().refuse(true);
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    cut.countDown();
  }

  private static byte[] data(long seed) {
    byte[] b = new byte[8_192];
    new Random(seed).nextBytes(b);
    return b;
  }
}
