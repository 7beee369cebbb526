package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.netty.buffer.Unpooled;
import io.replicator.proto.Change;
import io.replicator.proto.Envelope;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A capped link sends no faster than its cap, and a sender that outpaces the cap is told so through
 * writability instead of filling memory.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class BandwidthCapTest extends TransportFixture {
  private static final long CAP = 1 << 20;
  private static final int FRAME = 32 * 1024;
  /** What the sender lets wait in the connection's own queue, like a well-behaved stream. */
  private static final long MAX_QUEUED = 4L * FRAME;

  @Test
  void aSenderFasterThanTheCapIsHeldNearTheCapAndSeesBackPressure() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    AtomicBoolean sawUnwritable = new AtomicBoolean();
    RecordingListener listener = new RecordingListener() {
      @Override
      public void onWritabilityChanged(PeerConnection connection, boolean writable) {
        if (!writable) {
          sawUnwritable.set(true);
        }
      }
    };
    PeerConnection client = result(client(Wire.settings("client").withBandwidthCap(CAP))
        .connect(server.localAddress(), null, listener));
    await().atMost(Duration.ofSeconds(5)).until(() -> !accepted.isEmpty());
    PeerConnection receiver = accepted.get(0);
    byte[] payload = new byte[FRAME];

    long receivedBefore = receiver.wireBytesReceived();
    long queued = client.rawBytesSent();
    long start = System.nanoTime();
    long window = TimeUnit.MILLISECONDS.toNanos(1200);
    for (long seq = 0; System.nanoTime() - start < window; ) {
      if (client.isWritable() && queued - client.rawBytesSent() < MAX_QUEUED) {
        client.send(new Frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(seq++)).build(),
            Unpooled.wrappedBuffer(payload)));
        queued += FRAME + 16;
      } else {
        // pacing a sender that has nothing to do until the link drains, not waiting for a result
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    double rate = (receiver.wireBytesReceived() - receivedBefore) / seconds;

    assertThat(rate).as("bytes per second received under a cap of %s", CAP)
        .isBetween(0.5 * CAP, 1.5 * CAP);
    assertThat(sawUnwritable).as("the sender was told to pause").isTrue();
  }

  @Test
  void aFrameSlowerToCrossTheCapThanThePeerTimeoutDoesNotLookLikeADeadPeer() throws Exception {
    // the receiver gives up after 300 ms of silence; the frame takes about a second at the cap
    TransportServer server = server(Wire.settings("server", Duration.ofMillis(100), Duration.ofMillis(300),
        Duration.ofSeconds(5)));
    RecordingListener listener = new RecordingListener();
    PeerConnection client = result(client(Wire.settings("client").withBandwidthCap(CAP))
        .connect(server.localAddress(), null, listener));
    await().atMost(Duration.ofSeconds(5)).until(() -> !accepted.isEmpty());
    byte[] payload = new byte[TransportSettings.MAX_PAYLOAD];
    new java.util.Random(7).nextBytes(payload);
    client.send(new Frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(1)).build(),
        Unpooled.wrappedBuffer(payload)));
    await().atMost(Duration.ofSeconds(10)).until(() -> serverListener.payloads.size() == 1
        || !serverListener.closes.isEmpty());
    assertThat(serverListener.closes).isEmpty();
    assertThat(serverListener.payloads.get(0)).isEqualTo(payload);
    assertThat(listener.closes).isEmpty();
  }

  @Test
  void anUncappedLinkIsNotHeldBack() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    PeerConnection client = result(client(Wire.settings("client")).connect(server.localAddress(), null,
        new RecordingListener()));
    await().atMost(Duration.ofSeconds(5)).until(() -> !accepted.isEmpty());
    long start = System.nanoTime();
    for (int i = 0; i < 64; i++) {
      client.send(new Frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(i)).build(),
          Unpooled.wrappedBuffer(new byte[FRAME])));
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.payloads.size() == 64);
    // 2 MiB would take two seconds under the cap above; loopback carries it in a blink
    assertThat(System.nanoTime() - start).isLessThan(TimeUnit.MILLISECONDS.toNanos(1000));
  }
}
