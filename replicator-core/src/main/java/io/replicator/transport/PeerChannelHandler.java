package io.replicator.transport;

import com.google.protobuf.ByteString;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelOutputShutdownEvent;
import io.netty.channel.socket.ChannelOutputShutdownException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.timeout.IdleState;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.concurrent.ScheduledFuture;
import io.replicator.proto.AuthChallenge;
import io.replicator.proto.AuthResponse;
import io.replicator.proto.CompressionCodec;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.Hello;
import io.replicator.proto.HelloReply;
import io.replicator.proto.Ping;
import io.replicator.proto.Pong;
import java.io.IOException;
import java.net.SocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one connection: the handshake (the connecting side speaks first; with a shared secret,
 * a mutual challenge–response, see {@link PeerAuth}), heartbeats, goodbyes and error handling,
 * then hands every other frame to the {@link PeerListener}. Until the handshake is complete no
 * frame reaches a listener, and the acceptor is asked only about an authenticated peer. Anything
 * unexpected closes the connection with one log line that says why.
 */
final class PeerChannelHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(PeerChannelHandler.class);

  private final TransportSettings settings;
  private final Hello ownHello;
  /** Server side: decides on a peer's Hello. Null on the client side. */
  private final PeerAcceptor acceptor;
  /** Client side: the listener given to connect and the future that the handshake completes. */
  private final PeerListener clientListener;
  private final CompletableFuture<PeerConnection> connected;
  /** Null when the link has no shared secret. */
  private final PeerAuth auth;

  /** Server side: the Hello of a peer that has yet to prove the secret. */
  private Hello pendingHello;
  /** The accepting side's nonce: made by the server, received by the client. */
  private ByteString acceptingNonce;
  private PeerConnection connection;
  private PeerListener listener;
  private ScheduledFuture<?> handshakeTimer;
  private boolean failed;
  /** Whether the listener was told the connection is over (see {@link #reportClosed}). */
  private boolean closeReported;
  /** Why our writes failed while the peer's input was still being read; null while they work. */
  private String outputFailure;

  private PeerChannelHandler(TransportSettings settings, Hello ownHello, PeerAcceptor acceptor,
      PeerListener clientListener, CompletableFuture<PeerConnection> connected) {
    this.settings = settings;
    this.auth = settings.security().sharedSecret().map(PeerAuth::new).orElse(null);
    // a fresh challenge on every connection, so no recorded answer can be replayed
    this.ownHello = acceptor == null && auth != null
        ? ownHello.toBuilder().setAuthNonce(PeerAuth.nonce()).build()
        : ownHello;
    this.acceptor = acceptor;
    this.clientListener = clientListener;
    this.connected = connected;
  }

  static PeerChannelHandler server(TransportSettings settings, Hello ownHello, PeerAcceptor acceptor) {
    return new PeerChannelHandler(settings, ownHello, acceptor, null, null);
  }

  static PeerChannelHandler client(TransportSettings settings, Hello ownHello, PeerListener listener,
      CompletableFuture<PeerConnection> connected) {
    return new PeerChannelHandler(settings, ownHello, null, listener, connected);
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    handshakeTimer = ctx.executor().schedule(() -> {
      if (connection == null) {
        fail(ctx, Goodbye.Code.TIMEOUT, "no handshake within " + settings.handshakeTimeout().toMillis() + " ms");
      }
    }, settings.handshakeTimeout().toNanos(), TimeUnit.NANOSECONDS);
    if (acceptor == null) {
      // the offer depends on where the peer is, known only now
      Hello hello = ownHello.toBuilder()
          .addAllCompression(FrameCompression.offer(settings.compression(), ctx.channel().remoteAddress()))
          .build();
      ctx.writeAndFlush(Frame.of(Envelope.newBuilder().setHello(hello).build()));
    }
    ctx.fireChannelActive();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    Frame frame = (Frame) msg;
    if (failed || (connection != null && connection.closing())) {
      // the reason was given once already; what follows a refusal is not worth another line
      frame.release();
      return;
    }
    Envelope header = frame.header();
    if (connection == null) {
      frame.release();
      if (header.getBodyCase() == Envelope.BodyCase.GOODBYE) {
        // the peer gave up on the handshake (shutting down, timed out): its reason is the one to report
        goodbyeDuringHandshake(ctx, header.getGoodbye());
      } else if (acceptor != null) {
        if (pendingHello == null) {
          onHello(ctx, header);
        } else {
          onAuthResponse(ctx, header);
        }
      } else if (header.getBodyCase() == Envelope.BodyCase.AUTH_CHALLENGE) {
        onAuthChallenge(ctx, header.getAuthChallenge());
      } else {
        onHelloReply(ctx, header);
      }
      return;
    }
    switch (header.getBodyCase()) {
      case PING -> {
        frame.release();
        ctx.writeAndFlush(Frame.of(Envelope.newBuilder()
            .setPong(Pong.newBuilder().setSentNanos(header.getPing().getSentNanos())).build()));
      }
      case PONG -> frame.release();
      case GOODBYE -> {
        frame.release();
        Goodbye bye = header.getGoodbye();
        connection.noteCloseReason("peer closed: " + bye.getCode() + " " + bye.getMessage());
        failed = true;
        ctx.close();
      }
      case HELLO, HELLO_REPLY, AUTH_CHALLENGE, AUTH_RESPONSE -> {
        frame.release();
        fail(ctx, Goodbye.Code.PROTOCOL_ERROR, "second handshake message " + header.getBodyCase());
      }
      default -> {
        try {
          listener.onFrame(connection, frame);
        } catch (RuntimeException e) {
          // our own bug, not the peer's: say so rather than blaming its input
          log.error("listener of {} failed on {}", describe(ctx), header.getBodyCase(), e);
          closeWith(ctx, Goodbye.Code.UNSPECIFIED, "internal error handling " + header.getBodyCase() + ": " + e);
        }
      }
    }
  }

  private void onHello(ChannelHandlerContext ctx, Envelope header) {
    if (header.getBodyCase() != Envelope.BodyCase.HELLO) {
      fail(ctx, Goodbye.Code.PROTOCOL_ERROR, "expected Hello first, got " + header.getBodyCase());
      return;
    }
    Hello hello = header.getHello();
    String problem = checkPeer(hello.getProtocolVersion(), hello.getClusterName(), hello.getNodeId());
    if (problem == null && auth != null) {
      if (hello.getAuthNonce().size() != PeerAuth.NONCE_BYTES) {
        problem = "authentication required: the peer did not offer the shared-secret handshake "
            + "(configure the same shared secret on both nodes)";
      } else {
        pendingHello = hello;
        acceptingNonce = PeerAuth.nonce();
        ctx.writeAndFlush(Frame.of(Envelope.newBuilder()
            .setAuthChallenge(AuthChallenge.newBuilder().setNonce(acceptingNonce)).build()));
        return;
      }
    }
    admit(ctx, hello, problem, null);
  }

  /** Server side: checks the connecting peer's proof, and admits it only when it holds the secret. */
  private void onAuthResponse(ChannelHandlerContext ctx, Envelope header) {
    if (header.getBodyCase() != Envelope.BodyCase.AUTH_RESPONSE) {
      fail(ctx, Goodbye.Code.PROTOCOL_ERROR, "expected AuthResponse, got " + header.getBodyCase());
      return;
    }
    Hello hello = pendingHello;
    boolean proven = auth.verify(header.getAuthResponse().getProof(), PeerAuth.Role.CONNECTING,
        settings.clusterName(), hello.getAuthNonce(), acceptingNonce);
    if (!proven) {
      admit(ctx, hello, "authentication failed: peer '" + printable(hello.getNodeId())
          + "' does not hold this cluster's shared secret", null);
      return;
    }
    admit(ctx, hello, null, auth.proof(PeerAuth.Role.ACCEPTING, settings.clusterName(), hello.getAuthNonce(),
        acceptingNonce));
  }

  /** Server side: asks the acceptor about a peer that passed every check, and answers the Hello. */
  private void admit(ChannelHandlerContext ctx, Hello hello, String refusal, ByteString proof) {
    String problem = refusal;
    CompressionCodec codec = FrameCompression.pick(settings.compression(), ctx.channel().remoteAddress(),
        hello.getCompressionList());
    PeerConnection candidate = new PeerConnection(ctx.channel(), hello, counters(ctx), codec);
    PeerAcceptor.Decision decision = null;
    if (problem == null) {
      try {
        decision = acceptor.accept(candidate);
        problem = decision.refusal();
      } catch (RuntimeException e) {
        log.error("accepting {} failed", describe(ctx), e);
        problem = "internal error while accepting: " + e;
      }
    }
    HelloReply.Builder reply = HelloReply.newBuilder()
        .setProtocolVersion(TransportSettings.PROTOCOL_VERSION)
        .setClusterName(settings.clusterName())
        .setNodeId(settings.nodeId())
        .setIncarnation(ByteString.copyFrom(settings.incarnation()));
    if (problem != null) {
      log.warn("refused peer {}: {}", describe(ctx), problem);
      failed = true;
      PeerConnection.writeLastAndClose(ctx.channel(), Frame.of(Envelope.newBuilder()
          .setHelloReply(reply.setAccepted(false).setReason(problem)).build()));
      return;
    }
    if (decision.generations() != null) {
      reply.setGenerations(decision.generations());
    }
    if (decision.syncState() != null) {
      reply.setSyncState(decision.syncState());
    }
    if (proof != null) {
      reply.setAuthProof(proof);
    }
    ctx.writeAndFlush(Frame.of(Envelope.newBuilder()
        .setHelloReply(reply.setAccepted(true).setCompression(codec)).build()));
    // the reply itself went out uncompressed; everything after it, both ways, may be compressed
    compress(ctx, codec);
    established(candidate, decision.listener());
  }

  /** Client side: answers the server's challenge with this node's proof. */
  private void onAuthChallenge(ChannelHandlerContext ctx, AuthChallenge challenge) {
    if (auth == null) {
      fail(ctx, Goodbye.Code.REFUSED, "peer requires a shared secret and none is configured on this node");
      return;
    }
    if (acceptingNonce != null || challenge.getNonce().size() != PeerAuth.NONCE_BYTES) {
      fail(ctx, Goodbye.Code.PROTOCOL_ERROR, acceptingNonce != null ? "second AuthChallenge"
          : "AuthChallenge with a nonce of " + challenge.getNonce().size() + " bytes");
      return;
    }
    acceptingNonce = challenge.getNonce();
    ctx.writeAndFlush(Frame.of(Envelope.newBuilder().setAuthResponse(AuthResponse.newBuilder()
        .setProof(auth.proof(PeerAuth.Role.CONNECTING, settings.clusterName(), ownHello.getAuthNonce(),
            acceptingNonce))).build()));
  }

  private void onHelloReply(ChannelHandlerContext ctx, Envelope header) {
    if (header.getBodyCase() != Envelope.BodyCase.HELLO_REPLY) {
      fail(ctx, Goodbye.Code.PROTOCOL_ERROR, "expected HelloReply, got " + header.getBodyCase());
      return;
    }
    HelloReply reply = header.getHelloReply();
    if (!reply.getAccepted()) {
      failed = true;
      connected.completeExceptionally(new PeerRefusedException(
          "peer at " + ctx.channel().remoteAddress() + " refused the connection: " + reply.getReason()));
      ctx.close();
      return;
    }
    String problem = checkPeer(reply.getProtocolVersion(), reply.getClusterName(), reply.getNodeId());
    if (problem == null && auth != null) {
      // mutual: a server that cannot prove the secret is not trusted with our changes
      if (acceptingNonce == null) {
        problem = "authentication failed: peer '" + printable(reply.getNodeId())
            + "' accepted without the shared-secret handshake (no shared secret configured there?)";
      } else if (!auth.verify(reply.getAuthProof(), PeerAuth.Role.ACCEPTING, settings.clusterName(),
          ownHello.getAuthNonce(), acceptingNonce)) {
        problem = "authentication failed: peer '" + printable(reply.getNodeId())
            + "' does not hold this cluster's shared secret";
      }
    }
    if (problem != null) {
      fail(ctx, Goodbye.Code.REFUSED, problem);
      return;
    }
    CompressionCodec codec = reply.getCompression();
    if (codec != CompressionCodec.COMPRESSION_NONE
        && !FrameCompression.offer(settings.compression(), ctx.channel().remoteAddress()).contains(codec)) {
      fail(ctx, Goodbye.Code.PROTOCOL_ERROR, "peer picked compression " + reply.getCompressionValue()
          + " that this node did not offer");
      return;
    }
    Hello asHello = Hello.newBuilder()
        .setProtocolVersion(reply.getProtocolVersion())
        .setClusterName(reply.getClusterName())
        .setNodeId(reply.getNodeId())
        .setIncarnation(reply.getIncarnation())
        .setGenerations(reply.getGenerations())
        .setSyncState(reply.getSyncState())
        .build();
    PeerConnection c = new PeerConnection(ctx.channel(), asHello, counters(ctx), codec);
    compress(ctx, codec);
    established(c, clientListener);
    connected.complete(c);
  }

  private void goodbyeDuringHandshake(ChannelHandlerContext ctx, Goodbye bye) {
    failed = true;
    String reason = "peer closed during the handshake: " + bye.getCode() + " " + printable(bye.getMessage());
    log.warn("connection {}: {}", describe(ctx), reason);
    if (connected != null) {
      String message = "connection to " + ctx.channel().remoteAddress() + " failed: " + reason;
      // a refusal proves the peer is there: callers must not take it for an absent peer
      connected.completeExceptionally(bye.getCode() == Goodbye.Code.REFUSED
          ? new PeerRefusedException(message) : new IOException(message));
    }
    ctx.close();
  }

  private void established(PeerConnection c, PeerListener l) {
    connection = c;
    listener = l;
    FrameCodec.Decoder decoder = c.channel().pipeline().get(FrameCodec.Decoder.class);
    if (decoder != null) {
      decoder.handshakeDone();
    }
    if (handshakeTimer != null) {
      handshakeTimer.cancel(false);
    }
  }

  /** Switches both directions of the frame codec to {@code codec}. */
  private static void compress(ChannelHandlerContext ctx, CompressionCodec codec) {
    if (codec == CompressionCodec.COMPRESSION_NONE) {
      return;
    }
    FrameCodec.Encoder encoder = ctx.pipeline().get(FrameCodec.Encoder.class);
    FrameCodec.Decoder decoder = ctx.pipeline().get(FrameCodec.Decoder.class);
    if (encoder != null) {
      encoder.compression(codec);
    }
    if (decoder != null) {
      decoder.compression(codec);
    }
  }

  private static LinkCounters counters(ChannelHandlerContext ctx) {
    FrameCodec.Encoder encoder = ctx.pipeline().get(FrameCodec.Encoder.class);
    return encoder != null ? encoder.counters() : new LinkCounters();
  }

  private String checkPeer(int version, String cluster, String nodeId) {
    if (version != TransportSettings.PROTOCOL_VERSION) {
      return "protocol version " + version + " is not supported (this node speaks "
          + TransportSettings.PROTOCOL_VERSION + ")";
    }
    if (!settings.clusterName().equals(cluster)) {
      return "cluster '" + printable(cluster) + "' is not this node's cluster '" + settings.clusterName() + "'";
    }
    if (nodeId.isBlank()) {
      return "peer sent no node id";
    }
    if (nodeId.equals(settings.nodeId())) {
      return "peer uses this node's own id '" + printable(nodeId) + "'";
    }
    return null;
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
    if (evt instanceof ChannelOutputShutdownEvent) {
      if (connection != null && outputFailure == null && !connection.closing()) {
        // ended without our asking and without a failed frame to say why: a failed heartbeat
        readOnAfterFailedWrite(ctx, "a write failed");
      }
      return;
    }
    if (evt == PeerConnection.OUTPUT_ENDED) {
      if (connection != null) {
        reportClosed(ctx);
      }
      return;
    }
    if (evt instanceof SslHandshakeCompletionEvent tls) {
      if (!tls.isSuccess()) {
        fail(ctx, Goodbye.Code.REFUSED, tlsFailure(tls.cause()));
      }
      return;
    }
    if (evt instanceof IdleStateEvent idle) {
      if (idle.state() == IdleState.WRITER_IDLE && connection != null) {
        ctx.writeAndFlush(Frame.of(Envelope.newBuilder()
            .setPing(Ping.newBuilder().setSentNanos(System.nanoTime())).build()));
      } else if (idle.state() == IdleState.READER_IDLE && connection != null) {
        // only an established link is held to the peer timeout: a handshake has its own, longer
        // limit, because a peer whose JVM is still warming up is slow, not gone
        fail(ctx, Goodbye.Code.TIMEOUT, "nothing heard from the peer for "
            + settings.peerTimeout().toMillis() + " ms");
        // a silent peer will not close its side: a graceful close would only wait out its grace,
        // and a failover's promotion waits for this close (the goodbye was written just above)
        ctx.channel().close();
      }
      return;
    }
    super.userEventTriggered(ctx, evt);
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
    if (connection != null) {
      listener.onWritabilityChanged(connection, connection.isWritable());
    }
    super.channelWritabilityChanged(ctx);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (failed || (connection != null && connection.closing())) {
      log.debug("connection {} closing; ignoring {}", describe(ctx), cause.toString());
      return;
    }
    if (outputFailure != null) {
      // the writes queued behind the one that failed, or the read that finds the reset
      log.debug("connection {}: output already failed; ignoring {}", describe(ctx), cause.toString());
      return;
    }
    if (connection != null && cause instanceof ChannelOutputShutdownException) {
      Throwable root = cause.getCause() != null ? cause.getCause() : cause;
      readOnAfterFailedWrite(ctx, root.getMessage() != null ? root.getMessage() : root.toString());
      return;
    }
    if (cause instanceof IOException && !(cause instanceof DecoderException)) {
      // resets and broken pipes: the peer went away, channelInactive reports it
      log.debug("connection {} failed: {}", describe(ctx), cause.toString());
      if (connection != null) {
        connection.noteCloseReason("connection lost: " + cause.getMessage());
      }
      failed = true;
      ctx.close();
      return;
    }
    Throwable reason = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    if (reason instanceof SSLException) {
      fail(ctx, Goodbye.Code.REFUSED, tlsFailure(reason));
      return;
    }
    String what = reason instanceof TooLongFrameException
        ? "oversize frame (" + reason.getMessage() + ")"
        : reason.getMessage() == null ? reason.toString() : reason.getMessage();
    fail(ctx, Goodbye.Code.PROTOCOL_ERROR, "bad input from peer: " + what);
  }

  /**
   * Our write failed: the peer reset the connection, typically having sent its goodbye and given
   * up waiting for us to read it (we were stalled past its grace). What it sent before is still in
   * our socket, so the channel stays open for reading (writes closed, see {@link EventLoops}) until
   * the peer's end of stream or reset is read, or the grace runs out, instead of dropping it.
   */
  private void readOnAfterFailedWrite(ChannelHandlerContext ctx, String failure) {
    outputFailure = failure;
    log.debug("connection {}: write failed ({}); reading what the peer sent before", describe(ctx), outputFailure);
    PeerConnection.closeAfterGrace(ctx.channel());
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    if (handshakeTimer != null) {
      handshakeTimer.cancel(false);
    }
    if (connection != null) {
      if (outputFailure != null) {
        // unless the peer said goodbye in what was read after the failed write
        connection.noteCloseReason("connection lost: " + outputFailure);
      }
      reportClosed(ctx);
    } else if (connected != null) {
      connected.completeExceptionally(new IOException(
          "connection to " + ctx.channel().remoteAddress() + " closed during the handshake"));
    }
    super.channelInactive(ctx);
  }

  /**
   * Tells the listener the connection is over, once: when the channel closes, or as soon as our
   * last frame is written and our side ended (the channel then waits for the peer to close its
   * side, which a slow or stuck peer may never do; the listener need not wait for that).
   */
  private void reportClosed(ChannelHandlerContext ctx) {
    if (closeReported) {
      return;
    }
    closeReported = true;
    try {
      listener.onClosed(connection, connection.closeReason());
    } catch (RuntimeException e) {
      log.error("listener of {} failed on close", describe(ctx), e);
    }
  }

  /** Logs the reason once, tells the peer, and closes. */
  private void fail(ChannelHandlerContext ctx, Goodbye.Code code, String reason) {
    if (failed) {
      return;
    }
    log.warn("closing connection {}: {}", describe(ctx), reason);
    closeWith(ctx, code, reason);
  }

  /** Tells the peer why and closes, without logging. */
  private void closeWith(ChannelHandlerContext ctx, Goodbye.Code code, String reason) {
    if (failed) {
      return;
    }
    failed = true;
    if (connection != null) {
      connection.close(code, reason);
      return;
    }
    Envelope bye = Envelope.newBuilder()
        .setGoodbye(Goodbye.newBuilder().setCode(code).setMessage(reason)).build();
    PeerConnection.writeLastAndClose(ctx.channel(), Frame.of(bye));
    // only now: failing the future runs the caller's callbacks (TransportClient closes the channel
    // in one), and the goodbye must already be written by then
    if (connected != null) {
      String message = "connection to " + ctx.channel().remoteAddress() + " failed: " + reason;
      connected.completeExceptionally(code == Goodbye.Code.REFUSED
          ? new PeerRefusedException(message) : new IOException(message));
    }
  }

  private static String tlsFailure(Throwable cause) {
    if (cause instanceof NotSslRecordException) {
      // its own message dumps the received bytes: say what they mean instead
      return "TLS handshake failed: the peer does not speak TLS (configure TLS on both nodes)";
    }
    Throwable root = cause;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return "TLS handshake failed: " + (root.getMessage() != null ? root.getMessage() : root.toString());
  }

  private String describe(ChannelHandlerContext ctx) {
    SocketAddress remote = ctx.channel().remoteAddress();
    return (connection != null ? connection.remoteNodeId() + "@" : "") + remote;
  }

  private static String printable(String s) {
    return io.replicator.change.ChangePaths.printable(s);
  }
}
