package io.replicator.agent.admin;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.ReferenceCountUtil;
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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection's request handling: routes each aggregated request, runs its handler on the pool,
 * and writes responses strictly in request order (HTTP/1.1 pipelining), one request at a time.
 */
final class AdminHttpHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(AdminHttpHandler.class);
  static final String JSON = "application/json; charset=utf-8";
  static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
  static final String TEXT = "text/plain; charset=utf-8";
  private static final String OPS_PREFIX = "/ops/";
  /** Pipelined requests a client may queue before we stop serving it. */
  private static final int MAX_PENDING = 16;

  private final AccessPolicy policy;
  private final AdminHandlers handlers;
  private final Executor pool;
  /** Requests read and not yet answered; touched only on the event loop. */
  private final ArrayDeque<FullHttpRequest> pending = new ArrayDeque<>();
  private boolean busy;

  AdminHttpHandler(AccessPolicy policy, AdminHandlers handlers, Executor pool) {
    this.policy = policy;
    this.handlers = handlers;
    this.pool = pool;
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
    if (pending.size() >= MAX_PENDING) {
      request.release();
      ctx.close();
      return;
    }
    pending.add(request);
    if (!busy) {
      serveNext(ctx);
    }
  }

  private void serveNext(ChannelHandlerContext ctx) {
    FullHttpRequest request = pending.poll();
    if (request == null) {
      busy = false;
      return;
    }
    busy = true;
    boolean keepAlive;
    HttpVersion version = request.protocolVersion();
    CompletableFuture<Reply> reply;
    try {
      if (!request.decoderResult().isSuccess()) {
        // The decoder gave up on this connection's framing; nothing after it can be trusted.
        keepAlive = false;
        reply = CompletableFuture.completedFuture(Reply.text(HttpResponseStatus.BAD_REQUEST, "Malformed request"));
      } else {
        keepAlive = HttpUtil.isKeepAlive(request);
        reply = routeOrRefuse(request);
      }
    } finally {
      request.release();
    }
    boolean close = !keepAlive;
    reply.whenComplete((r, e) -> ctx.executor().execute(() -> {
      Reply answer = r != null ? r : Reply.text(HttpResponseStatus.INTERNAL_SERVER_ERROR, "Internal error");
      write(ctx, answer, version, close);
    }));
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
        .set("X-Content-Type-Options", "nosniff");
    if (reply.headerName() != null) {
      response.headers().set(reply.headerName(), reply.headerValue());
    }
    if (close) {
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    } else if (version.equals(HttpVersion.HTTP_1_0)) {
      // HTTP/1.0 closes by default; say we keep it open since the client asked to.
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
    }
    ctx.writeAndFlush(response).addListener((ChannelFutureListener) future -> {
      if (close || !future.isSuccess()) {
        future.channel().close();
      } else {
        serveNext(ctx);
      }
    });
  }

  private CompletableFuture<Reply> routeOrRefuse(FullHttpRequest request) {
    try {
      return route(request);
    } catch (IllegalArgumentException e) {
      // QueryStringDecoder rejects bad percent-encoding; that is the client's mistake, not ours.
      return done(Reply.text(HttpResponseStatus.BAD_REQUEST, "Malformed request target"));
    }
  }

  /**
   * Picks the handler. The order (path, token, method, operation) tells a caller without the token
   * which paths exist, but not which operations.
   */
  private CompletableFuture<Reply> route(FullHttpRequest request) {
    QueryStringDecoder target = new QueryStringDecoder(request.uri());
    String path = target.path();
    HttpMethod method = request.method();
    String authorization = request.headers().get(HttpHeaderNames.AUTHORIZATION);
    if (path.equals("/status") || path.equals("/metrics")) {
      Reply refused = authorize(policy.readsNeedToken(), authorization);
      if (refused != null) {
        return done(refused);
      }
      if (!HttpMethod.GET.equals(method)) {
        return done(methodNotAllowed("GET"));
      }
      return path.equals("/status") ? status() : metrics();
    }
    if (path.startsWith(OPS_PREFIX)) {
      Reply refused = authorize(policy.operationsNeedToken(), authorization);
      if (refused != null) {
        return done(refused);
      }
      if (!HttpMethod.POST.equals(method)) {
        return done(methodNotAllowed("POST"));
      }
      String name = path.substring(OPS_PREFIX.length());
      Optional<AdminOperation> operation = handlers.operation(name);
      if (operation.isEmpty()) {
        return done(Reply.text(HttpResponseStatus.NOT_FOUND, "No operation named " + printable(name)));
      }
      String body = request.content().toString(StandardCharsets.UTF_8);
      return run("operation " + name, () -> {
        log.info("Admin operation {} requested", name);
        Map<String, String> parameters = new LinkedHashMap<>();
        target.parameters().forEach((k, v) -> parameters.put(k, v.isEmpty() ? "" : v.get(v.size() - 1)));
        String result = operation.get().run(parameters, body);
        return Reply.text(HttpResponseStatus.OK, result == null ? "" : result);
      });
    }
    return done(Reply.text(HttpResponseStatus.NOT_FOUND, "Not found; try /status, /metrics or POST /ops/{name}"));
  }

  private CompletableFuture<Reply> status() {
    Optional<Supplier<StatusDocument>> status = handlers.status();
    if (status.isEmpty()) {
      return done(Reply.text(HttpResponseStatus.NOT_FOUND, "No status configured"));
    }
    return run("status", () -> Reply.of(HttpResponseStatus.OK, JSON, status.get().get().toJson() + "\n"));
  }

  private CompletableFuture<Reply> metrics() {
    Optional<PrometheusMeterRegistry> registry = handlers.registry();
    if (registry.isEmpty()) {
      return done(Reply.text(HttpResponseStatus.NOT_FOUND, "No metrics configured"));
    }
    Runnable beforeScrape = handlers.beforeScrape();
    return run("metrics", () -> {
      beforeScrape.run();
      return Reply.of(HttpResponseStatus.OK, PROMETHEUS_TEXT, registry.get().scrape());
    });
  }

  /** Runs {@code work} on the pool with the configured timeout; failures become 500, lateness 504. */
  private CompletableFuture<Reply> run(String what, Callable<Reply> work) {
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
      return done(Reply.text(HttpResponseStatus.SERVICE_UNAVAILABLE, "Admin endpoint busy; retry later"));
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
      if (cause instanceof OperationFailure f) {
        log.warn("Admin {} refused: {}", what, f.getMessage());
        return Reply.of(HttpResponseStatus.CONFLICT, JSON, new JsonWriter().beginObject()
            .name("error").value(f.code().name()).name("message").value(String.valueOf(f.getMessage()))
            .endObject() + "\n");
      }
      log.warn("Admin {} failed", what, cause);
      String message = cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
      return Reply.text(HttpResponseStatus.INTERNAL_SERVER_ERROR, message);
    });
  }

  private Reply authorize(boolean needed, String authorization) {
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
    return new Reply(HttpResponseStatus.UNAUTHORIZED, TEXT, "Unauthorized\n",
        HttpHeaderNames.WWW_AUTHENTICATE.toString(), challenge);
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

  /** A name from the request line, cut short and without control characters, for an error message. */
  private static String printable(String name) {
    String cut = name.length() > 64 ? name.substring(0, 64) + "..." : name;
    return cut.replaceAll("\\p{Cntrl}", "?");
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
    if (evt instanceof IdleStateEvent) {
      // A request still being handled is not idleness on the client's part.
      if (!busy) {
        ctx.close();
      }
      return;
    }
    super.userEventTriggered(ctx, evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    releasePending();
    super.channelInactive(ctx);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    releasePending();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    log.debug("Admin connection {} failed", ctx.channel().remoteAddress(), cause);
    ctx.close();
  }

  private void releasePending() {
    FullHttpRequest request;
    while ((request = pending.poll()) != null) {
      request.release();
    }
  }
}
