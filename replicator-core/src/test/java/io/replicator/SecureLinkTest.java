package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.LogCapture;
import io.replicator.testing.ReplicaPair;
import io.replicator.testing.TestCertificates;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A primary and a replica on a secured link, through the public API: with the same secret and
 * certificates they replicate; a primary with the wrong secret is refused before any change, goes
 * on alone, and says why in {@code status()}, without the secret ever showing.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class SecureLinkTest {
  private static final String SECRET_TEXT = "replica-link-secret-d41d8cd98f00";
  private static final byte[] SECRET = SECRET_TEXT.getBytes(StandardCharsets.US_ASCII);

  @TempDir static Path certs;
  private static LinkSecurity primaryTls;
  private static LinkSecurity replicaTls;

  @TempDir Path base;
  private ReplicaPair pair;

  @BeforeAll
  static void makeCertificates() throws IOException {
    TestCertificates ca = TestCertificates.authority(certs, "pair-ca");
    primaryTls = ca.issue("primary");
    replicaTls = ca.issue("replica");
  }

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  private void startReplica(LinkSecurity security) throws IOException {
    pair = ReplicaPair.start(base, false);
    pair.stopReplica();
    pair.startReplica(b -> b.security(security));
  }

  @Test
  void primaryAndReplicaWithTheSameSecretAndCertificatesReplicate() throws Exception {
    startReplica(replicaTls.withSharedSecret(SECRET));
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
        b -> b.security(primaryTls.withSharedSecret(SECRET)));
    Files.write(fs.getPath("/orders.log"), "paid".getBytes());
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
    assertThat(Files.readString(pair.replicaRoot.resolve("orders.log"))).isEqualTo("paid");
  }

  @Test
  void secretReadFromAFileWorksLikeTheSameBytes(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("secret"), SECRET_TEXT + "\n");
    LinkSecurity fromFile = LinkSecurity.secretFile(file);
    startReplica(LinkSecurity.sharedSecret(SECRET));
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC, b -> b.security(fromFile));
    Files.write(fs.getPath("/a"), "1".getBytes());
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
  }

  @Test
  void primaryWithTheWrongSecretIsRefusedBeforeAnyFileOperationAndGoesOnAlone() throws Exception {
    try (LogCapture logs = LogCapture.start()) {
      startReplica(LinkSecurity.sharedSecret(SECRET));
      ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC,
          b -> b.security(LinkSecurity.sharedSecret("not-the-replica-secret-000".getBytes(StandardCharsets.US_ASCII))));
      Files.write(fs.getPath("/stays-local"), "x".getBytes());

      ReplicationStatus status = fs.status();
      assertThat(status.state()).isEqualTo(NodeState.ALONE);
      assertThat(status.problem()).hasValueSatisfying(p -> assertThat(p).contains("authentication failed"));
      assertThat(Files.exists(pair.replicaRoot.resolve("stays-local"))).isFalse();
      assertThat(pair.replica().status().peerConnected()).isFalse();
      assertThat(pair.replica().status().lastSequence()).isZero();
      await().atMost(Duration.ofSeconds(5)).until(() -> logs.warnings().stream()
          .anyMatch(l -> l.contains("refused peer") && l.contains("shared secret")));

      for (String text : concat(logs.lines(), status.toString(), pair.replica().status().toString())) {
        assertThat(text).doesNotContain(SECRET_TEXT).doesNotContain("not-the-replica-secret");
      }
    }
  }

  @Test
  void plaintextPrimaryAgainstATlsReplicaIsRefusedAndWritesNothingThere() throws Exception {
    startReplica(replicaTls);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/plain"), "x".getBytes());
    assertThat(fs.status().state()).isEqualTo(NodeState.ALONE);
    assertThat(Files.exists(pair.replicaRoot.resolve("plain"))).isFalse();
    assertThat(pair.replica().status().lastSequence()).isZero();
  }

  private static java.util.List<String> concat(java.util.List<String> lines, String... more) {
    java.util.List<String> all = new java.util.ArrayList<>(lines);
    all.addAll(java.util.List.of(more));
    return all;
  }
}
