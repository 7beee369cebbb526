package io.replicator.transport;

import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.handler.traffic.ChannelTrafficShapingHandler;
import java.util.concurrent.TimeUnit;

/**
 * The one pipeline layout of every peer connection, with named handlers: the bandwidth cap nearest
 * the socket (it meters bytes as they leave, compressed and encrypted), then TLS, frames, heartbeats
 * and the connection's handler.
 */
final class Pipelines {
  /** The metering interval: short, so the rate holds over a second or so and not only on average. */
  private static final long CAP_CHECK_MILLIS = 100;
  /** Longest the cap holds back one write (a whole frame at a low cap takes this long and more). */
  private static final long CAP_MAX_WAIT_MILLIS = 60_000;
  /** Largest write the cap meters as one: small enough that a capped link never goes quiet for long. */
  private static final int CAP_CHUNK_BYTES = 16 * 1024;
  /** Output the cap may hold back, in time to send it, before the channel turns unwritable. */
  private static final long CAP_MAX_QUEUE_MILLIS = 500;

  private Pipelines() {}

  static void install(ChannelPipeline p, TransportSettings s, PeerChannelHandler peer) {
    install(p, s, null, peer);
  }

  /** With TLS when {@code tls} is not null: nothing is decoded from the peer before it. */
  static void install(ChannelPipeline p, TransportSettings s, SslContext tls, PeerChannelHandler peer) {
    if (s.bandwidthCap() > 0) {
      p.addLast("bandwidth-cap", bandwidthCap(s));
      p.addLast("cap-chunker", new WriteChunker(CAP_CHUNK_BYTES));
    }
    if (tls != null) {
      io.netty.handler.ssl.SslHandler ssl = tls.newHandler(p.channel().alloc());
      // the handshake timer of PeerChannelHandler bounds the whole handshake, TLS included
      ssl.setHandshakeTimeout(s.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
      p.addLast("tls", ssl);
    }
    // before the frame decoder: any bytes heard count, so a large frame crossing a slow link
    // slower than the peer timeout does not look like a dead peer
    p.addLast("idle", new IdleStateHandler(
        s.peerTimeout().toNanos(), s.heartbeatInterval().toNanos(), 0, TimeUnit.NANOSECONDS));
    LinkCounters counters = new LinkCounters();
    p.addLast("frame-decoder", new FrameCodec.Decoder(s.maxFrameLength(), s.maxHeaderLength(), counters));
    p.addLast("frame-encoder", new FrameCodec.Encoder(counters));
    p.addLast("peer", peer);
  }

  /**
   * Meters what this side writes. Output held back by the cap turns the channel unwritable once
   * it would take more than {@link #CAP_MAX_QUEUE_MILLIS} to send, so senders pause (through
   * {@link PeerListener#onWritabilityChanged}) instead of piling frames up in memory.
   */
  private static ChannelTrafficShapingHandler bandwidthCap(TransportSettings s) {
    ChannelTrafficShapingHandler shaper = new ChannelTrafficShapingHandler(s.bandwidthCap(), 0, CAP_CHECK_MILLIS,
        CAP_MAX_WAIT_MILLIS);
    shaper.setMaxWriteDelay(CAP_MAX_QUEUE_MILLIS);
    // a byte bound too, so a generous cap does not let a lot of memory wait
    shaper.setMaxWriteSize(Math.max(s.maxFrameLength(), Math.min(s.bandwidthCap() * CAP_MAX_QUEUE_MILLIS / 1000,
        64L << 20)));
    return shaper;
  }
}
