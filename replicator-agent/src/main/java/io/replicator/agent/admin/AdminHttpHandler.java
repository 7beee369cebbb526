package io.replicator.agent.admin;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandler;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.codec.http.TooLongHttpContentException;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.ReferenceCountUtil;
import io.replicator.proto.AdminRefusal;
import io.replicator.proto.StatusDocument;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection's request handling: routes each aggregated request, runs its handler on the pool,
 * and writes responses strictly in request order (HTTP/1.1 pipelining), one request at a time.
 *
 * <p>Every refusal (a 4xx or 5xx answer, or a connection dropped for its client's behaviour) is
 * logged once, as one line without a stack trace: WARN for a wrong or missing token and a busy
 * pool, INFO for the rest. The line names the method and the path, cut short and without control
 * characters; never the query, the headers or the body, where a token could be.
 */
final class AdminHttpHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(AdminHttpHandler.class);
  static final String JSON = "application/json; charset=utf-8";
  static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
  static final String TEXT = "text/plain; charset=utf-8";
  private static final String OPS_PREFIX = "/ops/";
  static final String CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; "
      + "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  /** Pipelined requests a client may queue before we stop serving it. */
  private static final int MAX_PENDING = 16;

  private final AccessPolicy policy;
  private final AdminHandlers handlers;
  private final Executor pool;
  private final Duration requestTimeout;
  /** Requests read and not yet answered; this and the fields below are touched only on the event loop. */
  private final ArrayDeque<FullHttpRequest> pending = new ArrayDeque<>();
  private boolean busy;
  /** Set once the connection is being closed: nothing more is served or logged on it. */
  private boolean closing;
  /** Too many requests pipelined: those queued are answered, later ones ignored, then it closes. */
  private boolean draining;
  /** Runs from the first byte of a request until the request is complete; null between requests. */
  private ScheduledFuture<?> requestClock;
  /** The clock ran out while an earlier request was being answered: close once that answer is out. */
  private boolean overdue;
  private ChannelHandlerContext context;

  AdminHttpHandler(AccessPolicy policy, AdminHandlers handlers, Executor pool, Duration requestTimeout) {
    this.policy = policy;
    this.handlers = handlers;
    this.pool = pool;
    this.requestTimeout = requestTimeout;
  }

  /**
   * The handler to put in front of the HTTP decoder: it starts the request clock when the first
   * byte of a request arrives. The idle timer alone is reset by every byte, so a client that
   * trickles a request a byte at a time would hold the connection forever. (The start of a request
   * that came in the same read as the end of the one before is not seen here; if nothing more
   * arrives, the idle limit closes the connection; if more does, the clock starts then.)
   */
  ChannelInboundHandler requestClock() {
    return new ChannelInboundHandlerAdapter() {
      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (requestClock == null && !overdue && !closing && msg instanceof ByteBuf bytes && bytes.isReadable()) {
          requestClock = ctx.executor().schedule(AdminHttpHandler.this::requestOverdue,
              requestTimeout.toNanos(), TimeUnit.NANOSECONDS);
        }
        ctx.fireChannelRead(msg);
      }
    };
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    context = ctx;
  }

  /** A response before it becomes Netty objects, so handler threads never touch buffers. */
  record Reply(HttpResponseStatus status, String contentType, String body, String headerName, String headerValue) {
    static Reply of(HttpResponseStatus status, String contentType, String body) {
      return new Reply(status, contentType, body, null, null);
    }

    static Reply text(HttpResponseStatus status, String message) {
      return of(status, TEXT, message.endsWith("\n") ? message : message + "\n");
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof FullHttpRequest request)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    stopRequestClock();
    if (closing || draining) {
      // The decoder may hand over more requests from bytes it already had; none is served now.
      request.release();
      return;
    }
    if (pending.size() >= MAX_PENDING) {
      request.release();
      // Not closed at once: the request being handled may be an operation that already ran, and
      // its client must learn how it ended. Those queued are answered, the last with Connection: close.
      draining = true;
      log.info("Admin connection from {} closed: more than {} requests pipelined (those queued are answered first)",
          ctx.channel().remoteAddress(), MAX_PENDING);
      return;
    }
    pending.add(request);
    if (!busy) {
      serveNext(ctx);
    }
  }

  private void serveNext(ChannelHandlerContext ctx) {
    if (!ctx.channel().isActive()) {
      // Closed under us, e.g. by Netty's codec with the last answer once a client pipelined past
      // its limit: whatever is queued must not run, since its client could never learn the outcome.
      log.debug("Admin connection {} closed; {} queued requests not run", ctx.channel().remoteAddress(),
          pending.size());
      busy = false;
      releasePending();
      return;
    }
    FullHttpRequest request = pending.poll();
    if (request == null) {
      busy = false;
      if (overdue) {
        refuseOverdue(ctx);
      }
      return;
    }
    busy = true;
    HttpVersion version;
    boolean close;
    CompletableFuture<Reply> reply;
    try {
      if (!request.decoderResult().isSuccess()) {
        // (A client that closed mid-request never gets here: the channel is inactive by then.)
        // The decoder gave up on this connection's framing; nothing after it can be trusted.
        version = HttpVersion.HTTP_1_1;
        close = true;
        reply = done(malformed(ctx, request.decoderResult().cause()));
      } else if (!isHttp1(request.protocolVersion())) {
        // Netty accepts any NAME/major.minor; answering in it ("HTTP/0.9 200 OK") would be no HTTP/1.x at all.
        version = HttpVersion.HTTP_1_1;
        close = true;
        reply = done(refuse(ctx, request.method(), rawPath(request.uri()),
            Reply.text(HttpResponseStatus.HTTP_VERSION_NOT_SUPPORTED, "Use HTTP/1.1"), "not HTTP/1.x"));
      } else {
        // HTTP/1.2 and up are answered as 1.1, which they must understand (RFC 9110, section 6.2).
        version = request.protocolVersion().minorVersion() == 0 ? HttpVersion.HTTP_1_0 : HttpVersion.HTTP_1_1;
        close = !keepAlive(request, version) || (draining && pending.isEmpty());
        reply = routeOrRefuse(ctx, request);
      }
    } finally {
      request.release();
    }
    reply.whenComplete((r, e) -> ctx.executor().execute(() -> {
      Reply answer = r != null ? r : Reply.text(HttpResponseStatus.INTERNAL_SERVER_ERROR, "Internal error");
      write(ctx, answer, version, close);
    }));
  }

  private static boolean isHttp1(HttpVersion version) {
    return version.protocolName().equals("HTTP") && version.majorVersion() == 1;
  }

  private static boolean keepAlive(FullHttpRequest request, HttpVersion version) {
    if (request.headers().containsValue(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE, true)) {
      return false;
    }
    return version.equals(HttpVersion.HTTP_1_1)
        || request.headers().containsValue(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE, true);
  }

  /** The answer to a request the decoder could not make sense of, logged; never the decoder's message, which quotes the input. */
  private Reply malformed(ChannelHandlerContext ctx, Throwable cause) {
    HttpResponseStatus status;
    String why;
    if (cause instanceof TooLongHttpLineException) {
      status = HttpResponseStatus.REQUEST_URI_TOO_LONG;
      why = "request line too long";
    } else if (cause instanceof TooLongHttpHeaderException) {
      status = HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE;
      why = "headers too large";
    } else if (cause instanceof TooLongHttpContentException) {
      status = HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE;
      why = "body over " + AdminServer.MAX_BODY_BYTES + " bytes";
    } else {
      status = HttpResponseStatus.BAD_REQUEST;
      why = "malformed (" + cause.getClass().getSimpleName() + ")";
    }
    log.info("Admin request from {} refused with {}: {}", ctx.channel().remoteAddress(), status.code(), why);
    return Reply.text(status, status.reasonPhrase());
  }

  private void write(ChannelHandlerContext ctx, Reply reply, HttpVersion version, boolean close) {
    if (!ctx.channel().isActive()) {
      return;
    }
    byte[] body = reply.body().getBytes(StandardCharsets.UTF_8);
    FullHttpResponse response = new DefaultFullHttpResponse(version, reply.status(), Unpooled.wrappedBuffer(body));
    response.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, reply.contentType())
        .setInt(HttpHeaderNames.CONTENT_LENGTH, body.length)
        .set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_STORE)
        .set("X-Content-Type-Options", "nosniff")
        // The console runs only its own script, talks only to this endpoint, and is never framed.
        .set("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .set("X-Frame-Options", "DENY")
        .set("Referrer-Policy", "no-referrer")
        .set("Cross-Origin-Resource-Policy", "same-origin");
    if (reply.headerName() != null) {
      response.headers().set(reply.headerName(), reply.headerValue());
    }
    if (close) {
      closing = true;
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    } else if (version.equals(HttpVersion.HTTP_1_0)) {
      // HTTP/1.0 closes by default; say we keep it open since the client asked to.
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
    }
    ctx.writeAndFlush(response).addListener((ChannelFutureListener) future -> {
      if (!future.isSuccess()) {
        future.channel().close();
      } else if (close) {
        lingerThenClose(future.channel());
      } else {
        serveNext(ctx);
      }
    });
  }

  /**
   * Closes once the client has had the answer. A client still sending a body that was refused
   * (413) would get a reset from an immediate close, and a reset can make it drop the answer
   * unread; so the output is shut, whatever still arrives is dropped, and the connection closes at
   * the client's end of stream or after two seconds.
   */
  private static void lingerThenClose(io.netty.channel.Channel ch) {
    if (!(ch instanceof io.netty.channel.socket.DuplexChannel duplex) || !ch.isActive()) {
      ch.close();
      return;
    }
    ch.pipeline().addFirst("linger-discard", new io.netty.channel.ChannelInboundHandlerAdapter() {
      @Override
      public void channelRead(ChannelHandlerContext c, Object msg) {
        io.netty.util.ReferenceCountUtil.release(msg);
      }
    });
    ch.config().setAutoRead(true);
    duplex.shutdownOutput().addListener(f -> {
      if (!f.isSuccess()) {
        ch.close();
      } else {
        ch.eventLoop().schedule(() -> ch.close(), 2, java.util.concurrent.TimeUnit.SECONDS);
      }
    });
  }

  private CompletableFuture<Reply> routeOrRefuse(ChannelHandlerContext ctx, FullHttpRequest request) {
    try {
      return route(ctx, request);
    } catch (IllegalArgumentException e) {
      // QueryStringDecoder rejects bad percent-encoding; that is the client's mistake, not ours.
      return done(refuse(ctx, request.method(), rawPath(request.uri()),
          Reply.text(HttpResponseStatus.BAD_REQUEST, "Malformed request target"), "bad percent-encoding"));
    }
  }

  /**
   * Picks the handler. The order (where the request comes from, path, token, method, operation)
   * tells a caller without the token which paths exist, but not which operations.
   */
  private CompletableFuture<Reply> route(ChannelHandlerContext ctx, FullHttpRequest request) {
    QueryStringDecoder target = new QueryStringDecoder(request.uri());
    String path = target.path();
    HttpMethod method = request.method();
    String authorization = request.headers().get(HttpHeaderNames.AUTHORIZATION);
    boolean page = ConsoleAssets.at(path).isPresent();
    boolean pageNavigation = page && path.equals("/") && HttpMethod.GET.equals(method)
        && "navigate".equalsIgnoreCase(request.headers().get("Sec-Fetch-Mode"));
    String foreign = policy.refusal(request.headers().get(HttpHeaderNames.HOST),
        request.headers().get(HttpHeaderNames.ORIGIN), request.headers().get("Sec-Fetch-Site"), pageNavigation);
    if (foreign != null) {
      if (path.startsWith(OPS_PREFIX)) {
        handlers.refusals().refused(printable(path.substring(OPS_PREFIX.length())), "FORBIDDEN", foreign);
      }
      return done(refuse(ctx, method, path, Reply.text(HttpResponseStatus.FORBIDDEN, "Forbidden: " + foreign), foreign));
    }
    if (page) {
      // The page, its script and its style hold no data: served without the token, even off
      // loopback, so that the page can ask for it.
      if (!HttpMethod.GET.equals(method)) {
        return done(refuse(ctx, method, path, methodNotAllowed("GET"), "wrong method"));
      }
      ConsoleAssets.Asset asset = ConsoleAssets.at(path).orElseThrow();
      return done(Reply.of(HttpResponseStatus.OK, asset.contentType(), asset.text()));
    }
    Optional<AdminHandlers.Query> document = handlers.document(path);
    if (path.equals("/status") || path.equals("/metrics") || document.isPresent()) {
      Reply refused = authorize(ctx, method, path, policy.readsNeedToken(), authorization);
      if (refused != null) {
        return done(refused);
      }
      if (!HttpMethod.GET.equals(method)) {
        return done(refuse(ctx, method, path, methodNotAllowed("GET"), "wrong method"));
      }
      if (document.isPresent()) {
        Map<String, String> parameters = new LinkedHashMap<>();
        target.parameters().forEach((k, v) -> parameters.put(k, v.isEmpty() ? "" : v.get(v.size() - 1)));
        return run(ctx, method, path, path.substring(1), () -> Reply.of(HttpResponseStatus.OK, JSON,
            document.get().answer(parameters) + "\n"));
      }
      return path.equals("/status") ? status(ctx, method, path) : metrics(ctx, method, path);
    }
    if (path.startsWith(OPS_PREFIX)) {
      String name = path.substring(OPS_PREFIX.length());
      Reply refused = authorize(ctx, method, path, true, authorization);
      if (refused != null) {
        handlers.refusals().refused(printable(name), "UNAUTHORIZED",
            authorization == null || authorization.isBlank() ? "no admin token" : "wrong admin token");
        return done(refused);
      }
      if (!HttpMethod.POST.equals(method)) {
        return done(refuse(ctx, method, path, methodNotAllowed("POST"), "wrong method"));
      }
      Optional<AdminOperation> operation = handlers.operation(name);
      if (operation.isEmpty()) {
        return done(refuse(ctx, method, path,
            Reply.text(HttpResponseStatus.NOT_FOUND, "No operation named " + printable(name)), "no such operation"));
      }
      // Decoded here, on the event loop: a bad escape in the query is the client's 400, where decoding
      // it lazily inside the operation made it a 500 with a stack trace.
      Map<String, String> parameters = new LinkedHashMap<>();
      target.parameters().forEach((k, v) -> parameters.put(k, v.isEmpty() ? "" : v.get(v.size() - 1)));
      String body = request.content().toString(StandardCharsets.UTF_8);
      return run(ctx, method, path, "operation " + name, () -> {
        if (handlers.routine(name)) {
          log.debug("Admin operation {} requested", name);
        } else {
          log.info("Admin operation {} requested", name);
        }
        try {
          String result = operation.get().run(parameters, body);
          return Reply.text(HttpResponseStatus.OK, result == null ? "" : result);
        } catch (OperationFailure f) {
          handlers.refusals().refused(name, f.code().name(), String.valueOf(f.getMessage()));
          throw f;
        }
      });
    }
    return done(refuse(ctx, method, path,
        Reply.text(HttpResponseStatus.NOT_FOUND, "Not found; try /, /status, /metrics or POST /ops/{name}"),
        "no such path"));
  }

  private CompletableFuture<Reply> status(ChannelHandlerContext ctx, HttpMethod method, String path) {
    Optional<Supplier<StatusDocument>> status = handlers.status();
    if (status.isEmpty()) {
      return done(refuse(ctx, method, path, Reply.text(HttpResponseStatus.NOT_FOUND, "No status configured"),
          "no status configured"));
    }
    return run(ctx, method, path, "status",
        () -> Reply.of(HttpResponseStatus.OK, JSON, AdminJson.print(status.get().get()) + "\n"));
  }

  private CompletableFuture<Reply> metrics(ChannelHandlerContext ctx, HttpMethod method, String path) {
    Optional<PrometheusMeterRegistry> registry = handlers.registry();
    if (registry.isEmpty()) {
      return done(refuse(ctx, method, path, Reply.text(HttpResponseStatus.NOT_FOUND, "No metrics configured"),
          "no metrics configured"));
    }
    Runnable beforeScrape = handlers.beforeScrape();
    return run(ctx, method, path, "metrics", () -> {
      beforeScrape.run();
      return Reply.of(HttpResponseStatus.OK, PROMETHEUS_TEXT, registry.get().scrape());
    });
  }

  /** Runs {@code work} on the pool with the configured timeout; failures become 500, lateness 504. */
  private CompletableFuture<Reply> run(ChannelHandlerContext ctx, HttpMethod method, String path, String what,
      Callable<Reply> work) {
    Duration timeout = handlers.timeout();
    CompletableFuture<Reply> result = new CompletableFuture<>();
    try {
      pool.execute(() -> {
        try {
          result.complete(work.call());
        } catch (Throwable t) {
          result.completeExceptionally(t);
        }
      });
    } catch (RejectedExecutionException e) {
      return done(refuse(ctx, method, path,
          Reply.text(HttpResponseStatus.SERVICE_UNAVAILABLE, "Admin endpoint busy; retry later"), "handlers busy"));
    }
    return result.orTimeout(timeout.toNanos(), TimeUnit.NANOSECONDS).handle((reply, error) -> {
      if (error == null) {
        return reply;
      }
      Throwable cause = unwrap(error);
      if (cause instanceof TimeoutException) {
        log.warn("Admin {} did not finish within {} ms; it keeps running", what, timeout.toMillis());
        return Reply.text(HttpResponseStatus.GATEWAY_TIMEOUT,
            "The " + what + " did not finish within " + timeout.toMillis() + " ms; it may still complete");
      }
      if (cause instanceof BadRequest b) {
        log.info("Admin {}: bad request: {}", what, b.getMessage());
        return Reply.text(HttpResponseStatus.BAD_REQUEST, "Bad request: " + b.getMessage());
      }
      if (cause instanceof OperationFailure f) {
        log.warn("Admin {} refused: {}", what, f.getMessage());
        return Reply.of(HttpResponseStatus.CONFLICT, JSON, AdminJson.print(AdminRefusal.newBuilder()
            .setError(AdminRefusal.Code.valueOf(f.code().name())).setMessage(String.valueOf(f.getMessage())))
            + "\n");
      }
      log.warn("Admin {} failed", what, cause);
      String message = cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
      return Reply.text(HttpResponseStatus.INTERNAL_SERVER_ERROR, message);
    });
  }

  private Reply authorize(ChannelHandlerContext ctx, HttpMethod method, String path, boolean needed,
      String authorization) {
    if (!needed) {
      return null;
    }
    AccessPolicy.Verdict verdict = policy.check(authorization);
    if (verdict == AccessPolicy.Verdict.GRANTED) {
      return null;
    }
    // RFC 6750: no error code when credentials were absent, invalid_token when they were wrong.
    String challenge = verdict == AccessPolicy.Verdict.MISSING
        ? "Bearer realm=\"replicator\""
        : "Bearer realm=\"replicator\", error=\"invalid_token\"";
    return refuse(ctx, method, path, new Reply(HttpResponseStatus.UNAUTHORIZED, TEXT, "Unauthorized\n",
        HttpHeaderNames.WWW_AUTHENTICATE.toString(), challenge),
        verdict == AccessPolicy.Verdict.MISSING ? "no token" : "wrong token");
  }

  /** Logs the one line a refused request gets, and returns the answer. */
  private static Reply refuse(ChannelHandlerContext ctx, HttpMethod method, String path, Reply reply, String why) {
    boolean warn = reply.status().equals(HttpResponseStatus.UNAUTHORIZED)
        || reply.status().equals(HttpResponseStatus.SERVICE_UNAVAILABLE);
    String format = "Admin request {} {} from {} refused with {}: {}";
    Object[] args = {printable(method.name()), printable(path), ctx.channel().remoteAddress(), reply.status().code(), why};
    if (warn) {
      log.warn(format, args);
    } else {
      log.info(format, args);
    }
    return reply;
  }

  private void requestOverdue() {
    requestClock = null;
    overdue = true;
    if (!busy) {
      refuseOverdue(context);
    }
  }

  /** A request took too long to arrive: 408, one log line, and the connection closes. */
  private void refuseOverdue(ChannelHandlerContext ctx) {
    if (closing) {
      return;
    }
    busy = true;
    log.info("Admin connection from {} closed: no complete request within {} ms", ctx.channel().remoteAddress(),
        requestTimeout.toMillis());
    write(ctx, Reply.text(HttpResponseStatus.REQUEST_TIMEOUT, "Request not received in time"),
        HttpVersion.HTTP_1_1, true);
  }

  private void stopRequestClock() {
    if (requestClock != null) {
      requestClock.cancel(false);
      requestClock = null;
    }
    overdue = false;
  }

  /** The path part of a request target as sent, for a log line when it does not decode. */
  private static String rawPath(String uri) {
    int query = uri.indexOf('?');
    return query < 0 ? uri : uri.substring(0, query);
  }

  private static Reply methodNotAllowed(String allowed) {
    return new Reply(HttpResponseStatus.METHOD_NOT_ALLOWED, TEXT, "Method not allowed; use " + allowed + "\n",
        HttpHeaderNames.ALLOW.toString(), allowed);
  }

  private static CompletableFuture<Reply> done(Reply reply) {
    return CompletableFuture.completedFuture(reply);
  }

  private static Throwable unwrap(Throwable error) {
    Throwable t = error;
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  /**
   * A name from the request line, cut short and without control characters (C0, DEL, C1 and the
   * Unicode line separators), so a client cannot forge log lines.
   */
  static String printable(String name) {
    String cut = name.length() > 64 ? name.substring(0, 64) + "..." : name;
    StringBuilder out = new StringBuilder(cut.length());
    for (int i = 0; i < cut.length(); i++) {
      char c = cut.charAt(i);
      out.append(Character.isISOControl(c) || c == '\u2028' || c == '\u2029' ? '?' : c);
    }
    return out.toString();
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
    if (evt instanceof IdleStateEvent) {
      // A request still being handled is not idleness on the client's part.
      if (!busy && !closing) {
        if (requestClock != null) {
          // Only when the idle limit is the shorter one: a request was under way.
          stopRequestClock();
          refuseOverdue(ctx);
        } else {
          log.debug("Admin connection {} idle; closed", ctx.channel().remoteAddress());
          closing = true;
          ctx.close();
        }
      }
      return;
    }
    super.userEventTriggered(ctx, evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    stopRequestClock();
    releasePending();
    super.channelInactive(ctx);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    stopRequestClock();
    releasePending();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    log.debug("Admin connection {} failed", ctx.channel().remoteAddress(), cause);
    if (draining && ctx.channel().isActive()) {
      // Past 128 requests the codec throws and then discards all input; the requests queued
      // before still get their answers, and the last of them closes the connection.
      return;
    }
    ctx.close();
  }

  private void releasePending() {
    FullHttpRequest request;
    while ((request = pending.poll()) != null) {
      request.release();
    }
  }
}
