package io.replicator.transport;

import com.google.protobuf.ByteString;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replicator.proto.Hello;

/**
 * The real server pipeline (frame decoder, handshake, heartbeats) on an {@link EmbeddedChannel}:
 * input is fed in the calling thread without sockets, for fuzzing at millions of inputs.
 */
public final class EmbeddedPeers {
  private EmbeddedPeers() {}

  /** An accepting side as {@link TransportServer} would set it up for one connection. */
  public static EmbeddedChannel server(TransportSettings settings, PeerAcceptor acceptor) {
    // registered only once the pipeline is in place, so the handshake timer starts as on a socket
    EmbeddedChannel ch = new EmbeddedChannel(false, false);
    Hello hello = Hello.newBuilder().setProtocolVersion(TransportSettings.PROTOCOL_VERSION)
        .setClusterName(settings.clusterName()).setNodeId(settings.nodeId())
        .setIncarnation(ByteString.copyFrom(settings.incarnation())).build();
    Pipelines.install(ch.pipeline(), settings, PeerChannelHandler.server(settings, hello, acceptor));
    try {
      ch.register();
    } catch (Exception e) {
      throw new IllegalStateException("cannot register an embedded channel", e);
    }
    return ch;
  }
}
