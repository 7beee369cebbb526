package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.testing.FrameMutator;
import io.replicator.testing.MemoryGauge;
import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Peers that send half a frame and stall: each is disconnected within a bounded time (the peer
 * timeout, or the handshake timeout before the handshake if that is shorter), may make the replica
 * buffer at most one header's worth before its handshake, and the replica goes on serving.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SlowLorisTest {
  /** The replica's handshake timeout (the default, longer than the pair's peer timeout) plus slack. */
  private static final Duration HANDSHAKE_BOUND =
      io.replicator.transport.TransportSettings.defaults("bound", "bound").handshakeTimeout().plusSeconds(3);
  private static final int STALLED_PEERS = 50;

  @TempDir Path base;
  private ReplicaPair pair;
  private final List<Socket> sockets = new ArrayList<>();

  @BeforeEach
  void start() throws IOException {
    pair = ReplicaPair.start(base, false);
  }

  @AfterEach
  void stop() throws IOException {
    for (Socket s : sockets) {
      s.close();
    }
    pair.close();
  }

  private Socket connect() throws IOException {
    Socket s = new Socket();
    sockets.add(s);
    s.connect(pair.replica().localAddress(), 5_000);
    return s;
  }

  @Test
  void peersThatSendHalfAFrameAndStallAreDisconnectedWithinTheHandshakeTimeout() throws Exception {
    long directBefore = MemoryGauge.direct();
    long t0 = System.nanoTime();
    for (int i = 0; i < STALLED_PEERS; i++) {
      Socket s = connect();
      // a frame as large as a handshake frame may be, and only half of it
      s.getOutputStream().write(ByteBuffer.allocate(4 + 30_000).putInt(60_000).array());
    }
    long directStalled = MemoryGauge.direct();
    for (Socket s : sockets) {
      long left = HANDSHAKE_BOUND.toNanos() - (System.nanoTime() - t0);
      assertThat(left).as("all stalled peers disconnected within %s", HANDSHAKE_BOUND).isPositive();
      assertClosedWithin(s, Duration.ofNanos(left));
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    System.out.printf("slow loris: %d stalled peers disconnected within %.1f s; direct memory %s -> %s while "
        + "stalled -> %s%n", STALLED_PEERS, seconds, MemoryGauge.mib(directBefore), MemoryGauge.mib(directStalled),
        MemoryGauge.mib(MemoryGauge.direct()));
    assertThat(directStalled - directBefore).as("memory held for %s stalled peers", STALLED_PEERS)
        .isLessThan(32L << 20);
    assertPrimaryIsServed();
  }

  @Test
  void aFrameClaimingMegabytesBeforeTheHandshakeIsRefusedAtOnce() throws Exception {
    Socket s = connect();
    long t0 = System.nanoTime();
    s.getOutputStream().write(ByteBuffer.allocate(4 + 1000).putInt(2 << 20).array());
    assertClosedWithin(s, Duration.ofSeconds(2));
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(2));
    assertPrimaryIsServed();
  }

  @Test
  void anAcceptedPeerThatStallsMidFrameIsDisconnectedWhenThePeerTimeoutExpires() throws Exception {
    Socket s = connect();
    FrameMutator frames = new FrameMutator(1, "replicator");
    s.getOutputStream().write(FrameMutator.frame(frames.hello("stalling-primary"), new byte[0]));
    long t0 = System.nanoTime();
    // a 1 MiB change frame, a tenth of it sent
    s.getOutputStream().write(ByteBuffer.allocate(4 + 100_000).putInt(1 << 20).array());
    // the replica's peer timeout in ReplicaPair is 1.5 s; its pings do not keep the link alive
    assertClosedWithin(s, Duration.ofSeconds(6));
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThan(Duration.ofMillis(1000));
    assertThat(pair.replica().status().lastSequence()).isZero();
    assertPrimaryIsServed();
  }

  private static void assertClosedWithin(Socket s, Duration timeout) throws IOException {
    s.setSoTimeout((int) Math.max(1, timeout.toMillis()));
    InputStream in = s.getInputStream();
    byte[] sink = new byte[4096];
    long deadline = System.nanoTime() + timeout.toNanos();
    try {
      while (in.read(sink) >= 0) {
        long left = (deadline - System.nanoTime()) / 1_000_000;
        assertThat(left).as("closed within %s", timeout).isPositive();
        s.setSoTimeout((int) left);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the replica kept a stalled peer connected for " + timeout);
    } catch (SocketException reset) {
      // closed
    }
  }

  private void assertPrimaryIsServed() throws IOException {
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Files.writeString(fs.getPath("/served"), "yes");
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
    assertThat(Files.readString(pair.replicaRoot.resolve("served"))).isEqualTo("yes");
  }
}
