package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What a PeerListener sees: every frame in order, one onClosed per side with the right reason. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ListenerSemanticsTest extends TransportFixture {
  private final RecordingListener clientListener = new RecordingListener();

  private static Frame numbered(long seq) {
    return new Frame(Wire.change(seq), Unpooled.buffer(8).writeLong(seq));
  }

  private PeerConnection connect(TransportSettings serverSettings, TransportSettings clientSettings) throws Exception {
    TransportServer server = server(serverSettings);
    PeerConnection c = result(client(clientSettings).connect(server.localAddress(), null, clientListener));
    await().atMost(Duration.ofSeconds(5)).until(() -> accepted.size() == 1);
    return c;
  }

  private PeerConnection connect() throws Exception {
    return connect(Wire.settings("server"), Wire.settings("client"));
  }

  @Test
  void tenThousandFramesArriveInOrder() throws Exception {
    PeerConnection c = connect();
    int n = 10_000;
    for (int i = 0; i < n; i++) {
      c.send(numbered(i));
    }
    await().atMost(Duration.ofSeconds(20)).until(() -> serverListener.headers.size() >= n);
    assertThat(serverListener.headers).hasSize(n);
    for (int i = 0; i < n; i++) {
      assertThat(serverListener.headers.get(i).getChange().getSeq()).isEqualTo(i);
      assertThat(ByteBuffer.wrap(serverListener.payloads.get(i)).getLong()).isEqualTo(i);
    }
  }

  @Test
  void framesFromSeveralThreadsArriveInEachThreadsOrder() throws Exception {
    PeerConnection c = connect();
    int threads = 4;
    int perThread = 2_000;
    List<Thread> senders = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      long base = t * 1_000_000L;
      senders.add(new Thread(() -> {
        for (int i = 0; i < perThread; i++) {
          c.send(numbered(base + i));
        }
      }));
    }
    senders.forEach(Thread::start);
    for (Thread s : senders) {
      s.join(20_000);
    }
    await().atMost(Duration.ofSeconds(20)).until(() -> serverListener.headers.size() >= threads * perThread);
    long[] next = new long[threads];
    synchronized (serverListener.headers) {
      for (Envelope e : serverListener.headers) {
        long seq = e.getChange().getSeq();
        int t = (int) (seq / 1_000_000L);
        assertThat(seq % 1_000_000L).isEqualTo(next[t]++);
      }
    }
    assertThat(next).containsOnly(perThread);
  }

  /** Frames sent from outside the event loop must be flushed by the send itself, not by a later heartbeat. */
  @Test
  void burstsFromAnotherThreadAreFlushedWithoutWaitingForAHeartbeat() throws Exception {
    TransportSettings slow = Wire.settings("server", Duration.ofSeconds(20), Duration.ofSeconds(60), Duration.ofSeconds(5));
    PeerConnection c = connect(slow, Wire.settings("client", Duration.ofSeconds(20), Duration.ofSeconds(60),
        Duration.ofSeconds(5)));
    int expected = 0;
    for (int burst = 0; burst < 50; burst++) {
      int size = 1 + burst * 20;
      for (int i = 0; i < size; i++) {
        c.send(numbered(expected++));
      }
      int target = expected;
      int b = burst;
      await().atMost(Duration.ofSeconds(2)).pollInterval(Duration.ofMillis(5))
          .alias("burst " + b + " of " + size + " frames delivered")
          .until(() -> serverListener.headers.size() == target);
    }
  }

  @Test
  void framesSentBeforeCloseGoOutBeforeTheGoodbye() throws Exception {
    PeerConnection c = connect();
    // from the event loop itself, as a listener would, and from another thread
    c.eventLoop().execute(() -> {
      c.send(numbered(1));
      c.send(numbered(2));
      c.close(Goodbye.Code.SHUTDOWN, "after two");
    });
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.closes.size() == 1);
    assertThat(serverListener.headers).extracting(e -> e.getChange().getSeq()).containsExactly(1L, 2L);
    assertThat(serverListener.closes.get(0)).isEqualTo("peer closed: SHUTDOWN after two");
  }

  @Test
  void framesSentFromAnotherThreadBeforeCloseGoOutBeforeTheGoodbye() throws Exception {
    PeerConnection c = connect();
    for (int i = 0; i < 1000; i++) {
      c.send(numbered(i));
    }
    c.close(Goodbye.Code.SHUTDOWN, "after a thousand");
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.closes.size() == 1);
    assertThat(serverListener.headers).hasSize(1000);
    assertThat(serverListener.closes.get(0)).isEqualTo("peer closed: SHUTDOWN after a thousand");
  }

  /**
   * A sender faster than its connection's event loop is told to wait once a bounded amount is
   * queued, and told when it may send again: without it, frames pile up in memory unseen by the
   * channel's water marks (hundreds of MiB under load), and the busy event loop stops reading.
   */
  @Test
  void aSenderFasterThanTheEventLoopIsHeldBackAndThenReleased() throws Exception {
    PeerConnection c = connect();
    java.util.concurrent.CountDownLatch busy = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch held = new java.util.concurrent.CountDownLatch(1);
    c.eventLoop().execute(() -> {
      held.countDown();
      try {
        busy.await(20, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    int frameBytes = 16 * 1024;
    int sent = 0;
    try {
      assertThat(held.await(5, TimeUnit.SECONDS)).isTrue();
      while (c.isWritable()) {
        assertThat(sent).as("frames queued while the event loop is busy").isLessThan(10_000);
        c.send(new Frame(Wire.change(sent), Unpooled.wrappedBuffer(new byte[frameBytes])));
        sent++;
      }
    } finally {
      busy.countDown();
    }
    // the bound, less a frame's headers' worth
    assertThat((long) sent * frameBytes).isBetween(PeerConnection.MAX_QUEUED_BYTES * 9 / 10,
        PeerConnection.MAX_QUEUED_BYTES);
    await().atMost(Duration.ofSeconds(10)).until(() -> clientListener.writability.contains(true));
    assertThat(c.isWritable()).isTrue();
    int total = sent;
    await().atMost(Duration.ofSeconds(20)).until(() -> serverListener.headers.size() >= total);
    assertThat(serverListener.headers).hasSize(total);
  }

  /**
   * A server that accepted one client and floods it with 16 KiB frames from a thread of its own,
   * as a sender does: while the connection is not writable it waits, so a client that stopped
   * reading fills its socket, not our memory.
   */
  private final class FloodedLink {
    final RecordingListener received = new RecordingListener();
    final java.util.concurrent.atomic.AtomicLong flooded = new java.util.concurrent.atomic.AtomicLong();
    final TransportServer server;
    final PeerConnection client;
    final PeerConnection serverSide;
    private final java.util.concurrent.atomic.AtomicBoolean flooding = new java.util.concurrent.atomic.AtomicBoolean(true);
    private final Thread flood;

    FloodedLink(TransportClient transport) throws Exception {
      List<PeerConnection> sides = new java.util.concurrent.CopyOnWriteArrayList<>();
      server = server(Wire.settings("server"), candidate -> {
        sides.add(candidate);
        return PeerAcceptor.Decision.accept(received, null);
      });
      client = result(transport.connect(server.localAddress(), null, new PeerListener() {
        @Override
        public void onFrame(PeerConnection connection, Frame frame) {
          frame.release();
          flooded.incrementAndGet();
        }

        @Override
        public void onClosed(PeerConnection connection, String reason) {
        }
      }));
      await().atMost(Duration.ofSeconds(5)).until(() -> sides.size() == 1);
      serverSide = sides.get(0);
      flood = new Thread(() -> {
        for (long i = 0; flooding.get() && serverSide.isActive(); i++) {
          if (!serverSide.isWritable()) {
            java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            continue;
          }
          serverSide.send(new Frame(Wire.change(i), Unpooled.wrappedBuffer(new byte[16 * 1024])));
        }
      });
      flood.start();
    }

    void awaitFlooded(long frames) {
      await().atMost(Duration.ofSeconds(5)).until(() -> flooded.get() >= frames);
    }

    void stop() throws InterruptedException {
      flooding.set(false);
      flood.join(5_000);
    }
  }

  /**
   * A connection closed while the peer is still sending (heartbeats, acknowledgements) must not
   * end with a reset: the peer would lose the frames it had not read yet, the goodbye among them,
   * and a hand-over's last frames with it. Closed here with the client's I/O thread stopping at
   * once, as a closing stream does.
   */
  @Test
  void closeWhileThePeerFloodsUsLosesNoFrameSentBeforeTheGoodbye() throws Exception {
    for (int round = 0; round < 10; round++) {
      TransportClient client = new TransportClient(Wire.settings("client"));
      FloodedLink link = null;
      try {
        link = new FloodedLink(client);
        RecordingListener received = link.received;
        link.awaitFlooded(100 + round * 20L);
        int n = 200;
        for (int i = 0; i < n; i++) {
          link.client.send(numbered(i));
        }
        link.client.close(Goodbye.Code.SHUTDOWN, "hand-over " + round);
        client.close();
        int r = round;
        await().atMost(Duration.ofSeconds(5)).alias("round " + r + ": the server saw the connection end")
            .until(() -> received.closes.size() == 1);
        assertThat(received.headers)
            .as("round %d: frames the server received before %s", round, received.closes).hasSize(n);
        assertThat(received.closes.get(0)).isEqualTo("peer closed: SHUTDOWN hand-over " + round);
      } finally {
        if (link != null) {
          link.stop();
          link.server.close();
        }
        client.close();
      }
    }
  }

  /**
   * The close above with the peer's I/O thread stalled (a long collection pause, a starved CPU)
   * past our goodbye's grace: we close with its frames unread, so its next write fails on a reset.
   * The frames we sent before the goodbye are already in its socket, and it must still read them,
   * not drop them with its failed write.
   */
  @Test
  void aPeerStalledPastTheGoodbyeGraceStillReadsEveryFrameSentBeforeIt() throws Exception {
    FloodedLink link = new FloodedLink(closeLater(new TransportClient(Wire.settings("client"))));
    RecordingListener received = link.received;
    PeerConnection c = link.client;
    java.util.concurrent.CountDownLatch stalled = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch resume = new java.util.concurrent.CountDownLatch(1);
    try {
      link.awaitFlooded(100);
      link.serverSide.eventLoop().execute(() -> {
        stalled.countDown();
        try {
          resume.await(20, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      assertThat(stalled.await(5, TimeUnit.SECONDS)).isTrue();
      int n = 200;
      for (int i = 0; i < n; i++) {
        c.send(numbered(i));
      }
      c.close(Goodbye.Code.SHUTDOWN, "hand-over");
      // the grace runs out on our side while the peer cannot read
      await().atMost(Duration.ofSeconds(5)).until(() -> !c.channel().isOpen());
      resume.countDown();
      await().atMost(Duration.ofSeconds(5)).alias("the server saw the connection end")
          .until(() -> received.closes.size() == 1);
      assertThat(received.headers).as("frames the server received before %s", received.closes).hasSize(n);
      for (int i = 0; i < n; i++) {
        assertThat(received.headers.get(i).getChange().getSeq()).isEqualTo(i);
      }
      assertThat(received.closes.get(0)).isEqualTo("peer closed: SHUTDOWN hand-over");
    } finally {
      resume.countDown();
      link.stop();
    }
  }

  @Test
  void clientCloseIsReportedOnceOnEachSide() throws Exception {
    PeerConnection c = connect();
    c.close(Goodbye.Code.SHUTDOWN, "maintenance");
    c.close(Goodbye.Code.PROTOCOL_ERROR, "second close is ignored");
    await().atMost(Duration.ofSeconds(5)).until(() -> clientListener.closes.size() == 1 && serverListener.closes.size() == 1);
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2))
        .until(() -> clientListener.closes.size() == 1 && serverListener.closes.size() == 1);
    assertThat(clientListener.closes.get(0)).isEqualTo("closed by us: maintenance");
    assertThat(serverListener.closes.get(0)).isEqualTo("peer closed: SHUTDOWN maintenance");
  }

  @Test
  void serverCloseIsReportedOnceOnEachSide() throws Exception {
    PeerConnection c = connect();
    accepted.get(0).close(Goodbye.Code.APPLY_FAILED, "disk full");
    await().atMost(Duration.ofSeconds(5)).until(() -> clientListener.closes.size() == 1 && serverListener.closes.size() == 1);
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2))
        .until(() -> clientListener.closes.size() == 1 && serverListener.closes.size() == 1);
    assertThat(serverListener.closes.get(0)).isEqualTo("closed by us: disk full");
    assertThat(clientListener.closes.get(0)).isEqualTo("peer closed: APPLY_FAILED disk full");
    assertThat(c.isActive()).isFalse();
  }

  @Test
  void peerVanishingWithoutGoodbyeIsReportedOnce() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    RawPeer peer = raw(server.localAddress());
    peer.handshake("raw");
    peer.close();
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.closes.size() == 1);
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2)).until(() -> serverListener.closes.size() == 1);
  }

  @Test
  void serverShutdownClosesTheClientOnce() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    result(client(Wire.settings("client")).connect(server.localAddress(), null, clientListener));
    server.close();
    await().atMost(Duration.ofSeconds(5)).until(() -> clientListener.closes.size() == 1);
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2)).until(() -> clientListener.closes.size() == 1);
  }

  @Test
  void listenerThatThrowsClosesTheConnectionWithoutBlamingThePeer() throws Exception {
    RecordingListener throwing = new RecordingListener() {
      @Override
      public void onFrame(PeerConnection connection, Frame frame) {
        frame.release();
        throw new IllegalStateException("listener bug");
      }
    };
    TransportServer server = server(Wire.settings("server"), candidate -> PeerAcceptor.Decision.accept(throwing, null));
    PeerConnection c = result(client(Wire.settings("client")).connect(server.localAddress(), null, clientListener));
    c.send(numbered(1));
    await().atMost(Duration.ofSeconds(5)).until(() -> throwing.closes.size() == 1 && clientListener.closes.size() == 1);
    assertThat(throwing.closes.get(0)).contains("listener bug").doesNotContain("bad input from peer");
    assertThat(clientListener.closes.get(0)).contains("listener bug");
  }

  @Test
  void sendingOnAClosedConnectionReleasesThePayload() throws Exception {
    PeerConnection c = connect();
    c.close(Goodbye.Code.SHUTDOWN, "done");
    await().atMost(Duration.ofSeconds(5)).until(() -> !c.isActive());
    ByteBuf early = Unpooled.buffer(4).writeInt(1);
    c.send(new Frame(Wire.change(1), early));
    // once the channel is deregistered its handlers are gone and a frame reaches the bare socket
    await().atMost(Duration.ofSeconds(5)).until(() -> c.channel().pipeline().get("peer") == null);
    ByteBuf late = Unpooled.buffer(4).writeInt(2);
    c.send(new Frame(Wire.change(2), late));
    await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
      assertThat(early.refCnt()).as("sent while closing").isZero();
      assertThat(late.refCnt()).as("sent after teardown").isZero();
    });
  }
}
