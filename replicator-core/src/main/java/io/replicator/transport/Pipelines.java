package io.replicator.transport;

import io.netty.channel.ChannelPipeline;
import io.netty.handler.timeout.IdleStateHandler;
import java.util.concurrent.TimeUnit;

/** The one pipeline layout of every peer connection, with named handlers. */
final class Pipelines {
  private Pipelines() {}

  static void install(ChannelPipeline p, TransportSettings s, PeerChannelHandler peer) {
    p.addLast("frame-decoder", new FrameCodec.Decoder(s.maxFrameLength(), s.maxHeaderLength()));
    p.addLast("frame-encoder", new FrameCodec.Encoder());
    p.addLast("idle", new IdleStateHandler(
        s.peerTimeout().toNanos(), s.heartbeatInterval().toNanos(), 0, TimeUnit.NANOSECONDS));
    p.addLast("peer", peer);
  }
}
