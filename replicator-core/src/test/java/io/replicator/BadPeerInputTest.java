package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.proto.Change;
import io.replicator.proto.CreateSymbolicLink;
import io.replicator.proto.Goodbye;
import io.replicator.proto.HelloReply;
import io.replicator.proto.Write;
import io.replicator.testing.RawPeer;
import io.replicator.testing.ReplicaPair;
import io.replicator.transport.TransportSettings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A malicious or broken peer sends raw bytes to a replica: every bad input closes that connection
 * with a reason, nothing is written outside the root, and a well-behaved primary is served after.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BadPeerInputTest {
  @TempDir Path base;
  private ReplicaPair pair;
  private Path outside;

  @BeforeEach
  void start() throws IOException {
    pair = ReplicaPair.start(base, false);
    outside = Files.createDirectories(base.resolve("outside"));
  }

  @AfterEach
  void stop() throws IOException {
    pair.close();
  }

  private RawPeer connected() throws IOException {
    RawPeer peer = new RawPeer(pair.replica().localAddress());
    HelloReply reply = peer.handshake(TransportSettings.PROTOCOL_VERSION, "replicator", "evil-primary");
    assertThat(reply.getAccepted()).as(reply.getReason()).isTrue();
    return peer;
  }

  private static Change write(long seq, String path, long position) {
    return Change.newBuilder().setSeq(seq).setWrite(Write.newBuilder().setPath(path).setPosition(position)).build();
  }

  @ParameterizedTest
  @ValueSource(strings = {"/etc/passwd", "../escape", "a/../../escape", "a/./b", "a//b", "a/", "nul\0byte",
      ".replicator/node-meta.0", "..", ""})
  void hostilePathsAreRefused(String path) throws Exception {
    Path target = outside.resolve("escape");
    try (RawPeer peer = connected()) {
      peer.sendChange(write(1, path.replace("escape", base.relativize(target).toString()), 0), "pwned".getBytes());
      Optional<Goodbye> bye = peer.awaitClosed();
      assertThat(bye).as("the replica says why it closed").isPresent();
    }
    assertNothingOutsideTheRoot();
    assertGoodPrimaryIsServed();
  }

  @Test
  void symlinkEscapeIsRefused() throws Exception {
    try (RawPeer peer = connected()) {
      peer.sendChange(Change.newBuilder().setSeq(1).setCreateSymbolicLink(
          CreateSymbolicLink.newBuilder().setPath("door").setTarget("../outside")).build(), new byte[0]);
      peer.sendChange(write(2, "door/pwned", 0), "pwned".getBytes());
      Optional<Goodbye> bye = peer.awaitClosed();
      assertThat(bye).isPresent();
      assertThat(bye.get().getCode()).isIn(Goodbye.Code.BAD_PATH, Goodbye.Code.APPLY_FAILED);
    }
    assertNothingOutsideTheRoot();
    assertGoodPrimaryIsServed();
  }

  @Test
  void oversizeFrameIsRefused() throws Exception {
    try (RawPeer peer = connected()) {
      ByteBuffer b = ByteBuffer.allocate(8).putInt(Integer.MAX_VALUE).putInt(10);
      peer.send(b.array());
      peer.send(new byte[64 * 1024]);
      assertThat(peer.awaitClosed()).isPresent();
    }
    assertGoodPrimaryIsServed();
  }

  @Test
  void garbageBytesAreRefused() throws Exception {
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      byte[] garbage = new byte[4096];
      new java.util.Random(3).nextBytes(garbage);
      ByteBuffer.wrap(garbage).putInt(200); // a plausible length, then noise
      peer.send(garbage);
      peer.awaitClosed();
    }
    assertNothingOutsideTheRoot();
    assertGoodPrimaryIsServed();
  }

  @Test
  void unknownProtocolVersionIsRefused() throws Exception {
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      HelloReply reply = peer.handshake(99, "replicator", "future-primary");
      assertThat(reply.getAccepted()).isFalse();
      assertThat(reply.getReason()).contains("protocol version 99");
    }
    assertGoodPrimaryIsServed();
  }

  @Test
  void anotherClustersPrimaryIsRefused() throws Exception {
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      HelloReply reply = peer.handshake(TransportSettings.PROTOCOL_VERSION, "someone-else", "their-primary");
      assertThat(reply.getAccepted()).isFalse();
      assertThat(reply.getReason()).contains("someone-else");
    }
    assertGoodPrimaryIsServed();
  }

  @Test
  void changesBeforeTheHandshakeAreRefused() throws Exception {
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      peer.sendChange(write(1, "early", 0), "x".getBytes());
      assertThat(peer.awaitClosed()).isPresent();
    }
    assertThat(Files.exists(pair.replicaRoot.resolve("early"))).isFalse();
    assertGoodPrimaryIsServed();
  }

  @Test
  void outOfOrderSequenceIsRefused() throws Exception {
    try (RawPeer peer = connected()) {
      peer.sendChange(write(5, "ordered", 0), "a".getBytes());
      peer.sendChange(write(4, "ordered", 0), "b".getBytes());
      assertThat(peer.awaitClosed()).isPresent();
    }
    assertGoodPrimaryIsServed();
  }

  @Test
  void aBadPeerDoesNotDisturbAConnectedPrimary() throws Exception {
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/before"), "1".getBytes());
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      HelloReply reply = peer.handshake(TransportSettings.PROTOCOL_VERSION, "replicator", "intruder");
      assertThat(reply.getAccepted()).as("a second primary is refused while one is connected").isFalse();
    }
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      peer.send(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
      peer.awaitClosed();
    }
    Files.write(fs.getPath("/after"), "2".getBytes());
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
    assertThat(Files.readString(pair.replicaRoot.resolve("after"))).isEqualTo("2");
  }

  private void assertNothingOutsideTheRoot() throws IOException {
    try (Stream<Path> s = Files.list(outside)) {
      assertThat(s).as("files written outside the replica root").isEmpty();
    }
    assertThat(Files.exists(Path.of("/etc/passwd-pwned"))).isFalse();
  }

  private void assertGoodPrimaryIsServed() throws IOException {
    ReplicatedFileSystem fs = pair.fs() != null && pair.fs().isOpen() ? pair.fs() : pair.openPrimary(ReplicationMode.SYNC);
    Files.write(fs.getPath("/good"), "served".getBytes());
    assertThat(Files.readString(pair.replicaRoot.resolve("good"))).isEqualTo("served");
    assertThat(fs.status().inSync()).isTrue();
  }

}
