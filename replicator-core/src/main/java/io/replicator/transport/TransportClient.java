package io.replicator.transport;

import com.google.protobuf.ByteString;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.replicator.proto.GenerationIds;
import io.replicator.proto.Hello;
import io.replicator.proto.SyncState;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Opens handshaken connections to a peer (with TLS and the shared-secret proof when the settings'
 * {@link io.replicator.LinkSecurity} asks for them); owns the I/O thread they run on.
 */
public final class TransportClient implements Closeable {
  private final TransportSettings settings;
  private final SslContext tls;
  private final EventLoopGroup group;
  /** Every connection made, so that close lets those closing with a goodbye finish first. */
  private final ChannelGroup channels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);

  /**
   * @throws UncheckedIOException when the TLS files cannot be read or do not hold a usable
   *     certificate and key
   */
  public TransportClient(TransportSettings settings) {
    this.settings = settings;
    try {
      this.tls = TlsContexts.client(settings.security());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    this.group = EventLoops.newGroup(1, "replicator-peer-io");
  }

  /**
   * Connects and runs the handshake. The future completes with the connection once the peer
   * accepted, or fails with {@link PeerRefusedException} (the peer's reason) or an IOException.
   */
  public CompletableFuture<PeerConnection> connect(InetSocketAddress address, GenerationIds generations,
      PeerListener listener) {
    return connect(address, generations, null, listener);
  }

  /** Connects, telling the peer this node's generations and sync state in the Hello. */
  public CompletableFuture<PeerConnection> connect(InetSocketAddress address, GenerationIds generations,
      SyncState syncState, PeerListener listener) {
    return connect(address, generations, syncState, false, listener);
  }

  /**
   * Connects, telling the peer this node's generations and sync state in the Hello, and whether
   * it needs acknowledgements of receipt or only of application ({@code appliedAcksOnly}).
   */
  public CompletableFuture<PeerConnection> connect(InetSocketAddress address, GenerationIds generations,
      SyncState syncState, boolean appliedAcksOnly, PeerListener listener) {
    CompletableFuture<PeerConnection> result = new CompletableFuture<>();
    Hello.Builder hello = Hello.newBuilder()
        .setProtocolVersion(TransportSettings.PROTOCOL_VERSION)
        .setClusterName(settings.clusterName())
        .setNodeId(settings.nodeId())
        .setIncarnation(ByteString.copyFrom(settings.incarnation()))
        .setAppliedAcksOnly(appliedAcksOnly);
    if (generations != null) {
      hello.setGenerations(generations);
    }
    if (syncState != null) {
      hello.setSyncState(syncState);
    }
    Hello ownHello = hello.build();
    Bootstrap b = new Bootstrap()
        .group(group)
        .channel(EventLoops.socketChannel())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) settings.handshakeTimeout().toMillis())
        .handler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            channels.add(ch);
            Pipelines.install(ch.pipeline(), settings, tls, PeerChannelHandler.client(settings, ownHello, listener, result));
          }
        });
    EventLoops.socketOptions(b, false);
    ChannelFuture f;
    try {
      f = b.connect(address);
    } catch (RuntimeException e) {
      result.completeExceptionally(new IOException("cannot connect to " + address + ": " + e.getMessage(), e));
      return result;
    }
    f.addListener(done -> {
      if (!done.isSuccess()) {
        result.completeExceptionally(new IOException(
            "cannot connect to " + address + ": " + done.cause().getMessage(), done.cause()));
      }
    });
    // a caller that gives up (cancel or timeout) must not leave a half-open channel behind
    result.whenComplete((c, e) -> {
      if (e != null) {
        f.channel().close();
      }
    });
    return result;
  }

  /** Closes every connection made and stops the I/O thread. */
  @Override
  public void close() {
    PeerConnection.awaitClosing(channels);
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
  }
}
