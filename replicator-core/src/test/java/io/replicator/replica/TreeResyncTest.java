package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.google.common.io.MoreFiles;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.VerifyReport;
import io.replicator.proto.ManifestRequest;
import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resync and verify of trees while the application runs: renames made while the secondary was away
 * travel as renames, the peer's manifest can be slow without holding the application, and
 * directory streams' relative operations reach the secondary.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TreeResyncTest {
  @TempDir Path base;
  private ReplicaPair pair;
  private final CountDownLatch manifestGate = new CountDownLatch(1);
  private final AtomicInteger manifestsHeld = new AtomicInteger();

  @AfterEach
  void close() throws IOException {
    manifestGate.countDown();
    if (pair != null) {
      pair.close();
    }
  }

  private static void writeFiles(ReplicatedFileSystem fs, String dir, int files, int size, long seed)
      throws IOException {
    Random random = new Random(seed);
    Files.createDirectories(fs.getPath(dir));
    byte[] data = new byte[size];
    for (int i = 0; i < files; i++) {
      random.nextBytes(data);
      Files.write(fs.getPath(dir, "f" + i), data);
    }
  }

  /** A fault that holds every manifest the replica is asked for until the gate opens. */
  private ApplyFaults holdManifests() {
    return new ApplyFaults() {
      @Override
      public void beforeManifest(ManifestRequest request) throws IOException {
        manifestsHeld.incrementAndGet();
        try {
          manifestGate.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException();
        }
      }
    };
  }

  /** Closes the primary and empties the secondary, so opening the primary again resyncs everything. */
  private void newEmptySecondary(ApplyFaults faults) throws IOException {
    pair.fs().close();
    pair.stopReplica();
    MoreFiles.deleteRecursively(pair.replicaRoot);
    pair.startReplica();
    ((ReplicaNode) pair.replica()).injectFaults(faults);
  }

  @Test
  void renamesMadeWhileTheSecondaryWasAwaySendNoFileData() throws Exception {
    pair = ReplicaPair.start(base, true);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeFiles(fs, "/projects/alpha", 40, 32 * 1024, 1);
    writeFiles(fs, "/logs", 3, 300_000, 2);
    assertThat(fs.status().inSync()).isTrue();

    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    Files.move(fs.getPath("/projects/alpha"), fs.getPath("/projects/beta"));
    Files.move(fs.getPath("/logs/f0"), fs.getPath("/logs/f0.old"));
    Files.move(fs.getPath("/logs/f1"), fs.getPath("/logs/f0"));
    long renamed = 40 * 32 * 1024 + 2 * 300_000;

    long before = pair.proxy().upstreamBytes();
    pair.startReplica();
    await().atMost(Duration.ofSeconds(60)).until(() -> fs.status().inSync());
    long onTheWire = pair.proxy().upstreamBytes() - before;

    assertThat(pair.differences()).as(pair.describe()).isEmpty();
    assertThat(onTheWire).as("bytes on the wire for %d bytes renamed", renamed).isLessThan(renamed / 20);
  }

  @Test
  void theApplicationKeepsChangingTheTreeWhileThePeerIsSlowToListIt() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeFiles(fs, "/data", 30, 10_000, 3);
    writeFiles(fs, "/data/sub", 10, 10_000, 4);
    newEmptySecondary(holdManifests());
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC);
    await().atMost(Duration.ofSeconds(30)).until(() -> manifestsHeld.get() > 0);

    // the full resync waits for the secondary's listing; no lock is held meanwhile, so every
    // kind of change goes through, in places the secondary does not have yet too
    long t0 = System.nanoTime();
    Files.createDirectories(again.getPath("/fresh/inner"));
    Files.write(again.getPath("/fresh/inner/new"), "new".getBytes());
    Files.write(again.getPath("/data/f3"), "rewritten before the secondary has it".getBytes());
    Files.move(again.getPath("/data/f4"), again.getPath("/fresh/f4"));
    Files.delete(again.getPath("/data/f5"));
    Files.move(again.getPath("/data/sub"), again.getPath("/moved-sub"));
    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertThat(manifestGate.getCount()).as("the listing was still held").isEqualTo(1);
    assertThat(millis).as("changes made while the peer's listing was held").isLessThan(10_000);
    ReplicationStatus.ResyncProgress progress = again.status().resync().orElseThrow();
    await().atMost(Duration.ofSeconds(10)).until(() -> again.status().resync().map(p -> p.filesTotal() > 40)
        .orElse(false));
    assertThat(progress.bytesDone()).isZero();

    manifestGate.countDown();
    await().atMost(Duration.ofSeconds(60)).until(() -> again.status().inSync());
    assertThat(pair.differences()).as(pair.describe()).isEmpty();
    assertThat(again.verify().identical()).isTrue();
  }

  @Test
  void aFullResyncConvergesWhileTheApplicationWritesEverywhere() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeFiles(fs, "/data", 50, 20_000, 5);
    io.replicator.RandomWorkload.run(fs, 2, 60, 11, 0);
    newEmptySecondary(ApplyFaults.NONE);
    ReplicatedFileSystem again = pair.openPrimary(ReplicationMode.SYNC);
    long seed = System.nanoTime();
    io.replicator.RandomWorkload.run(again, 3, 150, seed, 10);
    await().atMost(Duration.ofSeconds(60)).until(() -> again.status().inSync());
    assertThat(pair.differences()).as("seed %d\n%s", seed, pair.describe()).isEmpty();
  }

  @Test
  void verifyShowsItsProgressWhileItRuns() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeFiles(fs, "/data", 25, 4096, 6);
    ((ReplicaNode) pair.replica()).injectFaults(holdManifests());
    Thread verify = new Thread(() -> {
      try {
        VerifyReport report = fs.verify();
        assertThat(report.identical()).isTrue();
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    verify.start();
    await().atMost(Duration.ofSeconds(10)).until(() -> fs.status().verify()
        .map(p -> p.filesTotal() >= 27 && p.etaSeconds() == -1).orElse(false));
    manifestGate.countDown();
    verify.join(30_000);
    assertThat(verify.isAlive()).isFalse();
    assertThat(fs.status().verify()).isEmpty();
  }

  @Test
  void directoryStreamOperationsReachTheSecondary() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    writeFiles(fs, "/tree/a/b", 5, 1000, 7);
    writeFiles(fs, "/tree/c", 5, 1000, 8);
    Files.createDirectories(fs.getPath("/keep"));
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(fs.getPath("/tree"));
        DirectoryStream<Path> keep = Files.newDirectoryStream(fs.getPath("/keep"))) {
      SecureDirectoryStream<Path> tree = (SecureDirectoryStream<Path>) stream;
      try (SeekableByteChannel ch = tree.newByteChannel(fs.getPath("made-here"),
          Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE))) {
        ch.write(ByteBuffer.wrap("relative".getBytes()));
      }
      tree.move(fs.getPath("made-here"), (SecureDirectoryStream<Path>) keep, fs.getPath("moved-here"));
      tree.deleteFile(fs.getPath("c/f0"));
    }
    MoreFiles.deleteRecursively(fs.getPath("/tree/a"));
    assertThat(pair.differences()).as(pair.describe()).isEmpty();
    assertThat(Files.readString(pair.replicaRoot.resolve("keep/moved-here"))).isEqualTo("relative");
    assertThat(Files.exists(pair.replicaRoot.resolve("tree/a"))).isFalse();
  }
}
