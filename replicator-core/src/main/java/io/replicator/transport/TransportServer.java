package io.replicator.transport;

import com.google.protobuf.ByteString;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.replicator.proto.Hello;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Listens for peers, runs the handshake on each (TLS and the shared-secret proof when the settings'
 * {@link io.replicator.LinkSecurity} asks for them), and hands accepted ones to the acceptor's
 * listener. Any link (replication, heartbeat, witness) can use it.
 */
public final class TransportServer implements Closeable {
  private final EventLoopGroup group;
  private final Channel serverChannel;
  private final ChannelGroup children;
  private final AtomicBoolean closed = new AtomicBoolean();

  private TransportServer(EventLoopGroup group, Channel serverChannel, ChannelGroup children) {
    this.group = group;
    this.serverChannel = serverChannel;
    this.children = children;
  }

  /** Binds and starts accepting. */
  public static TransportServer start(InetSocketAddress address, TransportSettings settings,
      PeerAcceptor acceptor, int threads) throws IOException {
    // before the threads start: a bad PEM file fails here, with nothing to clean up
    SslContext tls = TlsContexts.server(settings.security());
    EventLoopGroup group = EventLoops.newGroup(threads, "replica-io");
    Hello ownHello = Hello.newBuilder()
        .setProtocolVersion(TransportSettings.PROTOCOL_VERSION)
        .setClusterName(settings.clusterName())
        .setNodeId(settings.nodeId())
        .setIncarnation(ByteString.copyFrom(settings.incarnation()))
        .build();
    // exists before the bind: a peer may connect before start() returns
    ChannelGroup children = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
    ServerBootstrap b = new ServerBootstrap()
        .group(group)
        .channel(EventLoops.serverChannel())
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            children.add(ch);
            Pipelines.install(ch.pipeline(), settings, tls, PeerChannelHandler.server(settings, ownHello, acceptor));
          }
        });
    EventLoops.socketOptions(b, true);
    try {
      Channel ch = b.bind(address).syncUninterruptibly().channel();
      return new TransportServer(group, ch, children);
    } catch (RuntimeException e) {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      throw new IOException("cannot listen on " + address + ": " + e.getMessage(), e);
    }
  }

  public InetSocketAddress localAddress() {
    return (InetSocketAddress) serverChannel.localAddress();
  }

  /** Stops listening and closes every connection; waits for the I/O threads to end. Idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    serverChannel.close().syncUninterruptibly();
    PeerConnection.awaitClosing(children);
    children.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
  }
}
