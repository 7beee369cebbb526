package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A primary that wrote without its peer and is then deposed (its unacknowledged changes
 * discarded) must not keep claiming, in its metadata, that it holds the newest data: the agents'
 * start-up rule and the witness both read that claim.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DeposedPrimaryTest {
  @TempDir Path base;
  private ReplicaPair pair;
  private ReplicaServer deposed;
  private ReplicatedFileSystem newPrimary;

  @AfterEach
  void close() throws IOException {
    if (newPrimary != null) {
      newPrimary.close();
    }
    if (deposed != null) {
      deposed.close();
    }
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void aDeposedPrimaryResyncedAsSecondaryNoLongerClaimsTheNewestData() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/shared"), "both".getBytes());
    pair.stopReplica();
    await().atMost(Duration.ofSeconds(10)).until(() -> !fs.status().peerConnected());
    Files.write(fs.getPath("/alone"), "only on the old primary".getBytes());
    fs.close();
    assertThat(LocalData.read(pair.primaryRoot).peerOutOfDate()).as("it wrote without its peer").isTrue();

    // the old primary is deposed: it serves as secondary, discarding what it wrote alone
    deposed = Replicator.replica(pair.primaryRoot).listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("old-primary").heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500))
        .discardLocalChanges().start();
    assertThat(deposed.localData().peerOutOfDate())
        .as("changes it will discard are no longer its to offer").isFalse();
    newPrimary = Replicator.primary(pair.replicaRoot).peer(deposed.localAddress()).nodeId("new-primary")
        .heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500)).open();
    Files.write(newPrimary.getPath("/after"), "new".getBytes());
    await().atMost(Duration.ofSeconds(20)).until(() -> newPrimary.status().inSync());

    assertThat(Files.exists(pair.primaryRoot.resolve("alone"))).as("the discarded write is gone").isFalse();
    assertThat(deposed.localData().peerOutOfDate()).isFalse();
    deposed.close();
    deposed = null;
    LocalData disk = LocalData.read(pair.primaryRoot);
    assertThat(disk.peerOutOfDate()).as("the metadata no longer says it holds changes the peer lacks").isFalse();
    assertThat(disk.consistent()).isTrue();
  }
}
