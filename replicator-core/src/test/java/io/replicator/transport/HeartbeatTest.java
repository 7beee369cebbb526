package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replicator.proto.Change;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.Write;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Liveness: pings keep a healthy idle connection up; silent, stalled and half-sent peers are cut off. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HeartbeatTest extends TransportFixture {
  private static final Duration HEARTBEAT = Duration.ofMillis(50);
  private static final Duration PEER_TIMEOUT = Duration.ofMillis(300);

  private static TransportSettings fast(String node) {
    return Wire.settings(node, HEARTBEAT, PEER_TIMEOUT, Duration.ofSeconds(5));
  }

  private static Duration since(long startNanos) {
    return Duration.ofNanos(System.nanoTime() - startNanos);
  }

  @Test
  void idleButHealthyConnectionStaysUp() throws Exception {
    TransportServer server = server(fast("server"));
    RecordingListener clientListener = new RecordingListener();
    PeerConnection c = result(client(fast("client")).connect(server.localAddress(), null, clientListener));
    await().during(Duration.ofMillis(1500)).atMost(Duration.ofSeconds(3))
        .until(() -> c.isActive() && accepted.get(0).isActive());
    assertThat(clientListener.closes).isEmpty();
    assertThat(serverListener.closes).isEmpty();
    assertThat(serverListener.headers).as("pings and pongs are not handed to the listener").isEmpty();
  }

  @Test
  void peerThatGoesSilentAfterTheHandshakeIsClosedAfterThePeerTimeout() throws Exception {
    TransportServer server = server(fast("server"));
    RawPeer peer = raw(server.localAddress());
    peer.handshake("raw");
    long start = System.nanoTime();
    List<Envelope> sent = peer.readUntilClosed();
    Duration took = since(start);
    assertThat(sent).as("the server pinged first").anySatisfy(e -> assertThat(e.hasPing()).isTrue());
    assertThat(sent).last().satisfies(e -> {
      assertThat(e.getGoodbye().getCode()).isEqualTo(Goodbye.Code.TIMEOUT);
      assertThat(e.getGoodbye().getMessage()).contains("nothing heard from the peer for 300 ms");
    });
    assertThat(took).isBetween(PEER_TIMEOUT.minusMillis(50), Duration.ofMillis(1500));
    await().atMost(Duration.ofSeconds(2)).until(() -> serverListener.closes.size() == 1);
    assertThat(serverListener.closes.get(0)).contains("nothing heard from the peer");
  }

  @Test
  void peerThatNeverSaysHelloIsClosedAfterTheHandshakeTimeout() throws Exception {
    TransportServer server = server(Wire.settings("server", HEARTBEAT, Duration.ofSeconds(5), Duration.ofMillis(400)));
    long start = System.nanoTime();
    RawPeer peer = raw(server.localAddress());
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(since(start)).isBetween(Duration.ofMillis(350), Duration.ofMillis(2000));
    assertThat(sent).singleElement().satisfies(e -> {
      assertThat(e.getGoodbye().getCode()).isEqualTo(Goodbye.Code.TIMEOUT);
      assertThat(e.getGoodbye().getMessage()).contains("no handshake within 400 ms");
    });
    assertThat(accepted).isEmpty();
  }

  @Test
  void halfAHelloThenSilenceIsClosedAtTheHandshakeLimit() throws Exception {
    TransportServer server = server(Wire.settings("server", HEARTBEAT, PEER_TIMEOUT, Duration.ofMillis(600)));
    RawPeer peer = raw(server.localAddress());
    byte[] hello = Wire.frame(Wire.hello("raw"));
    long start = System.nanoTime();
    peer.send(Arrays.copyOf(hello, hello.length / 2));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(since(start)).isBetween(Duration.ofMillis(550), Duration.ofMillis(2500));
    assertThat(sent).singleElement().satisfies(e -> {
      assertThat(e.getGoodbye().getCode()).isEqualTo(Goodbye.Code.TIMEOUT);
      assertThat(e.getGoodbye().getMessage()).contains("no handshake within 600 ms");
    });
  }

  @Test
  void aPeerSlowerThanThePeerTimeoutToSayHelloIsStillAccepted() throws Exception {
    // a JVM that is still starting can take longer than the peer timeout to answer: slow, not gone
    TransportServer server = server(Wire.settings("server", HEARTBEAT, PEER_TIMEOUT, Duration.ofSeconds(5)));
    RawPeer peer = raw(server.localAddress());
    long start = System.nanoTime();
    // the stall is the fault under test: the server must keep the connection while it lasts
    peer.readTimeout(PEER_TIMEOUT.multipliedBy(3));
    assertThatThrownBy(peer::read).as("nothing, and no goodbye, while the handshake is within its limit")
        .isInstanceOf(java.net.SocketTimeoutException.class);
    assertThat(since(start)).isGreaterThanOrEqualTo(PEER_TIMEOUT.multipliedBy(3).minusMillis(50));
    peer.readTimeout(Duration.ofSeconds(10));
    peer.handshake("raw");
    await().atMost(Duration.ofSeconds(2)).until(() -> accepted.size() == 1 && accepted.get(0).isActive());
  }

  @Test
  void halfAFrameAfterTheHandshakeThenSilenceIsClosed() throws Exception {
    TransportServer server = server(fast("server"));
    RawPeer peer = raw(server.localAddress());
    peer.handshake("raw");
    byte[] big = Wire.frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(1)
        .setWrite(Write.newBuilder().setPath("f"))).build(), new byte[1 << 20]);
    long start = System.nanoTime();
    peer.send(Arrays.copyOf(big, 100_000));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(since(start)).isLessThan(Duration.ofMillis(1500));
    assertThat(sent).last().satisfies(e -> assertThat(e.getGoodbye().getCode()).isEqualTo(Goodbye.Code.TIMEOUT));
    await().atMost(Duration.ofSeconds(2)).until(() -> serverListener.closes.size() == 1);
    assertThat(serverListener.headers).isEmpty();
  }

  @Test
  void peerThatStopsReadingIsClosedEvenWithOutputBackedUp() throws Exception {
    ByteBuf data = Unpooled.directBuffer(1 << 20).writeZero(1 << 20);
    try {
      TransportServer server = server(fast("server"), candidate -> {
        accepted.add(candidate);
        // after the reply is written: a replication stream that keeps sending to a dead reader
        candidate.eventLoop().execute(() -> {
          for (int i = 0; i < 64; i++) {
            candidate.send(new Frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(i)
                .setWrite(Write.newBuilder().setPath("big"))).build(), data.retainedDuplicate()));
          }
        });
        return PeerAcceptor.Decision.accept(serverListener, null);
      });
      RawPeer peer = closeLater(new RawPeer(server.localAddress(), 16 * 1024));
      peer.handshake("raw");
      long start = System.nanoTime();
      // the peer neither reads nor writes from here on
      await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.closes.size() == 1);
      assertThat(since(start)).isLessThan(Duration.ofMillis(2500));
      assertThat(serverListener.closes.get(0)).contains("nothing heard from the peer");
      assertThat(accepted.get(0).isActive()).isFalse();
      await().atMost(Duration.ofSeconds(2)).untilAsserted(() ->
          assertThat(data.refCnt()).as("queued payloads were released").isEqualTo(1));
    } finally {
      data.release();
    }
  }
}
