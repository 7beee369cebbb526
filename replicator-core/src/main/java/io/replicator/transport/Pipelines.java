package io.replicator.transport;

import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.timeout.IdleStateHandler;
import java.util.concurrent.TimeUnit;

/** The one pipeline layout of every peer connection, with named handlers. */
final class Pipelines {
  private Pipelines() {}

  static void install(ChannelPipeline p, TransportSettings s, PeerChannelHandler peer) {
    install(p, s, null, peer);
  }

  /** With TLS first when {@code tls} is not null: nothing is decoded from the peer before it. */
  static void install(ChannelPipeline p, TransportSettings s, SslContext tls, PeerChannelHandler peer) {
    if (tls != null) {
      io.netty.handler.ssl.SslHandler ssl = tls.newHandler(p.channel().alloc());
      // the handshake timer of PeerChannelHandler bounds the whole handshake, TLS included
      ssl.setHandshakeTimeout(s.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
      p.addLast("tls", ssl);
    }
    p.addLast("frame-decoder", new FrameCodec.Decoder(s.maxFrameLength(), s.maxHeaderLength()));
    p.addLast("frame-encoder", new FrameCodec.Encoder());
    p.addLast("idle", new IdleStateHandler(
        s.peerTimeout().toNanos(), s.heartbeatInterval().toNanos(), 0, TimeUnit.NANOSECONDS));
    p.addLast("peer", peer);
  }
}
