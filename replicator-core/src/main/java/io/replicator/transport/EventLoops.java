package io.replicator.transport;

import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.bootstrap.AbstractBootstrap;
import io.netty.util.concurrent.DefaultThreadFactory;

/** Picks the epoll transport on Linux and NIO elsewhere, and the socket options we always want. */
final class EventLoops {
  private static final boolean EPOLL = !Boolean.getBoolean("replicator.transport.nio") && Epoll.isAvailable();

  private EventLoops() {}

  static boolean epoll() {
    return EPOLL;
  }

  static EventLoopGroup newGroup(int threads, String name) {
    DefaultThreadFactory factory = new DefaultThreadFactory(name, true);
    return new MultiThreadIoEventLoopGroup(threads, factory,
        EPOLL ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
  }

  static Class<? extends SocketChannel> socketChannel() {
    return EPOLL ? EpollSocketChannel.class : NioSocketChannel.class;
  }

  static Class<? extends ServerChannel> serverChannel() {
    return EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
  }

  /**
   * TCP_NODELAY (we coalesce ourselves), keep-alive, a water mark for back-pressure, and no close
   * on a failed write: a write fails when the peer reset the connection, and what the peer sent
   * before the reset (its goodbye, a hand-over's last frames) is still in our socket, to be read
   * first (see {@code PeerChannelHandler}); Netty then only ends our output.
   */
  static void socketOptions(AbstractBootstrap<?, ?> b, boolean child) {
    WriteBufferWaterMark mark = new WriteBufferWaterMark(4 << 20, 16 << 20);
    if (child && b instanceof io.netty.bootstrap.ServerBootstrap sb) {
      sb.childOption(ChannelOption.TCP_NODELAY, true)
          .childOption(ChannelOption.SO_KEEPALIVE, true)
          .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, mark)
          .childOption(ChannelOption.AUTO_CLOSE, false);
    } else {
      b.option(ChannelOption.TCP_NODELAY, true)
          .option(ChannelOption.SO_KEEPALIVE, true)
          .option(ChannelOption.WRITE_BUFFER_WATER_MARK, mark)
          .option(ChannelOption.AUTO_CLOSE, false);
    }
  }
}
