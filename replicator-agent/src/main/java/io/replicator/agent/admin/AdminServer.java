package io.replicator.agent.admin;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's admin HTTP endpoint: {@code GET /status}, {@code GET /metrics} and
 * {@code POST /ops/{name}}, the operator's console at {@code GET /}, on one Netty event loop
 * thread with handlers on a small pool. Every operation needs the bearer token; see {@link AccessPolicy}.
 *
 * <p>It uses the NIO transport, not epoll: admin traffic is a few requests a minute, so epoll
 * gains nothing, and NIO works wherever the JDK does.
 */
public final class AdminServer implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(AdminServer.class);
  /** Operations take no real input; 64 KiB is room for a small JSON argument later. */
  static final int MAX_BODY_BYTES = 64 * 1024;
  /**
   * How long a client may take. {@code request}: from the first byte of a request to its last,
   * so a client that sends half a request and stalls, or trickles it a byte at a time (slow loris),
   * holds a connection and its buffers no longer than this; it gets 408 and the connection closes.
   * {@code idle}: how long a connection with no request in progress stays open.
   */
  record Timeouts(Duration request, Duration idle) {
    /** An admin request is a few hundred bytes from a local tool: ten seconds is generous. */
    static final Timeouts DEFAULT = new Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(60));

    Timeouts {
      if (request.isNegative() || request.isZero() || idle.isNegative() || idle.isZero()) {
        throw new IllegalArgumentException("Timeouts must be positive: " + request + ", " + idle);
      }
    }
  }

  /** Handler threads: operations may block for their timeout, so more than one, but few. */
  private static final int HANDLER_THREADS = 4;
  /** Requests beyond the busy threads wait here; beyond that they get 503. */
  private static final int HANDLER_QUEUE = 32;

  private final EventLoopGroup group;
  private final ThreadPoolExecutor handlerPool;
  private final ChannelGroup channels;
  private final Channel serverChannel;
  private final InetSocketAddress localAddress;

  private AdminServer(EventLoopGroup group, ThreadPoolExecutor handlerPool, ChannelGroup channels,
      Channel serverChannel) {
    this.group = group;
    this.handlerPool = handlerPool;
    this.channels = channels;
    this.serverChannel = serverChannel;
    this.localAddress = (InetSocketAddress) serverChannel.localAddress();
  }

  /**
   * Binds and starts serving.
   *
   * @param bind where to listen; port 0 picks a free port (see {@link #localAddress()})
   * @param token the bearer token every operation needs (and every read off loopback)
   * @param handlers what to serve; operations may be added to it later
   * @throws IllegalArgumentException when the token is unusable
   * @throws IOException when the address cannot be bound
   */
  public static AdminServer start(InetSocketAddress bind, String token, AdminHandlers handlers)
      throws IOException {
    return start(bind, token, handlers, Timeouts.DEFAULT);
  }

  /** As {@link #start(InetSocketAddress, String, AdminHandlers)}, with other timeouts (for tests). */
  static AdminServer start(InetSocketAddress bind, String token, AdminHandlers handlers, Timeouts timeouts)
      throws IOException {
    Objects.requireNonNull(bind, "bind");
    Objects.requireNonNull(token, "token");
    Objects.requireNonNull(handlers, "handlers");
    Objects.requireNonNull(timeouts, "timeouts");
    AccessPolicy policy = AccessPolicy.forBind(bind, token);

    EventLoopGroup group = new MultiThreadIoEventLoopGroup(1,
        new DefaultThreadFactory("replicator-admin", true), NioIoHandler.newFactory());
    ThreadPoolExecutor handlerPool = new ThreadPoolExecutor(HANDLER_THREADS, HANDLER_THREADS,
        30, TimeUnit.SECONDS, new ArrayBlockingQueue<>(HANDLER_QUEUE),
        new DefaultThreadFactory("replicator-admin-handler", true));
    handlerPool.allowCoreThreadTimeOut(true);
    ChannelGroup channels = new DefaultChannelGroup("replicator-admin", GlobalEventExecutor.INSTANCE);
    try {
      ServerBootstrap bootstrap = new ServerBootstrap()
          .group(group)
          .channel(NioServerSocketChannel.class)
          .option(ChannelOption.SO_REUSEADDR, true)
          .childOption(ChannelOption.TCP_NODELAY, true)
          .childHandler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
              channels.add(ch);
              configure(ch.pipeline(), policy, handlers, handlerPool, timeouts);
            }
          });
      Channel server = bootstrap.bind(bind).syncUninterruptibly().channel();
      channels.add(server);
      AdminServer started = new AdminServer(group, handlerPool, channels, server);
      log.info("Admin endpoint and console on http://{}:{}/ (token required for operations{})",
          started.localAddress.getAddress().getHostAddress(), started.localAddress.getPort(),
          policy.readsNeedToken() ? " and reads" : "");
      return started;
    } catch (Exception e) {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      handlerPool.shutdown();
      // Netty rethrows the bind failure unchecked-ly; callers expect an IOException naming the address.
      throw new IOException("Cannot listen for admin requests on " + bind + ": " + e.getMessage(), e);
    }
  }

  /**
   * Sets up one connection's pipeline. Package-private so the fuzz test can drive the very same
   * pipeline in-process, a million inputs in minutes, as well as over sockets.
   */
  static void configure(ChannelPipeline pipeline, AccessPolicy policy, AdminHandlers handlers, Executor pool,
      Timeouts timeouts) {
    AdminHttpHandler admin = new AdminHttpHandler(policy, handlers, pool, timeouts.request());
    pipeline
        .addLast("request-clock", admin.requestClock())
        .addLast("idle", new IdleStateHandler(0, 0, timeouts.idle().toNanos(), TimeUnit.NANOSECONDS))
        .addLast("http", new HttpServerCodec())
        .addLast("aggregate", new InOrderAggregator(MAX_BODY_BYTES))
        .addLast("admin", admin);
  }

  /** The bound address, with the port the system chose when asked for port 0. */
  public InetSocketAddress localAddress() {
    return localAddress;
  }

  /**
   * Stops listening, closes open connections and stops the handler pool. Operations already
   * running finish on their own threads; their responses are dropped.
   */
  @Override
  public void close() {
    channels.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    handlerPool.shutdown();
    log.debug("Admin endpoint on {} closed", localAddress);
  }

  /** Whether the server is still listening (for tests and the agent's health view). */
  boolean isOpen() {
    return serverChannel.isOpen();
  }
}
