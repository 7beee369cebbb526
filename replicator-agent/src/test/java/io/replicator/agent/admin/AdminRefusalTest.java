package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replicator.agent.admin.StrictResponseReader.Response;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * How the admin endpoint refuses: each refusal answered with the right status and logged as one
 * line (WARN for the token, INFO otherwise), never with a stack trace nor the token; the
 * operations that change state refused without the token; answers in request order even when the
 * refusal comes from the body's size.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdminRefusalTest {
  private static final String TOKEN = "refusal-T0ken-94c1b7e2";
  private static final AccessPolicy ON_LOOPBACK = AccessPolicy.forBind(
      new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN);
  private static final AccessPolicy ELSEWHERE = AccessPolicy.forBind(new InetSocketAddress("0.0.0.0", 0),
      TOKEN);
  private static final String BEARER = "Authorization: Bearer " + TOKEN + "\r\n";

  private final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
  private final CountDownLatch releaseSlow = new CountDownLatch(1);
  private final CountDownLatch slowStarted = new CountDownLatch(1);
  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final AdminHandlers handlers = new AdminHandlers()
      .status(() -> StatusDocuments.of("alpha", Statuses.primaryInSync()).build())
      .metrics(registry)
      .operation("slow", () -> {
        slowStarted.countDown();
        releaseSlow.await();
        return "late";
      });
  private AdminServer server;

  AdminRefusalTest() {
    for (String name : List.of("swap", "promote", "demote", "resync", "lease", "release", "echo")) {
      handlers.operation(name, (parameters, body) -> {
        calls.computeIfAbsent(name, n -> new AtomicInteger()).incrementAndGet();
        return name + " " + parameters + " " + body.length();
      });
    }
  }

  @AfterEach
  void tearDown() {
    releaseSlow.countDown();
    if (server != null) {
      server.close();
    }
    registry.close();
  }

  private int totalCalls() {
    return calls.values().stream().mapToInt(AtomicInteger::get).sum();
  }

  static Stream<Arguments> refusals() {
    String longTarget = "/ops/" + "a".repeat(5000);
    String bigHeader = "X-Big: " + "b".repeat(10_000) + "\r\n";
    return Stream.of(
        Arguments.of("no token", ON_LOOPBACK, "POST /ops/swap HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 401, "WARN"),
        Arguments.of("a wrong token that starts with the right one", ON_LOOPBACK,
            "POST /ops/swap HTTP/1.1\r\nAuthorization: Bearer " + TOKEN + "x\r\nContent-Length: 0\r\n\r\n", 401, "WARN"),
        Arguments.of("the token in the query instead", ON_LOOPBACK,
            "POST /ops/promote?access_token=" + TOKEN + " HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 401, "WARN"),
        Arguments.of("the token as Basic", ON_LOOPBACK,
            "POST /ops/demote HTTP/1.1\r\nAuthorization: Basic " + TOKEN + "\r\nContent-Length: 0\r\n\r\n", 401, "WARN"),
        Arguments.of("a read without the token off loopback", ELSEWHERE, "GET /status HTTP/1.1\r\n\r\n", 401, "WARN"),
        Arguments.of("an operation by GET", ON_LOOPBACK, "GET /ops/swap HTTP/1.1\r\n" + BEARER + "\r\n", 405, "INFO"),
        Arguments.of("status by POST", ON_LOOPBACK, "POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "INFO"),
        Arguments.of("no such operation", ON_LOOPBACK,
            "POST /ops/nope HTTP/1.1\r\n" + BEARER + "Content-Length: 0\r\n\r\n", 404, "INFO"),
        Arguments.of("no such path", ON_LOOPBACK, "GET /nothing HTTP/1.1\r\n\r\n", 404, "INFO"),
        Arguments.of("a control character for the log", ON_LOOPBACK,
            "GET /st%0D%0AINFO%20forged%20line HTTP/1.1\r\n\r\n", 404, "INFO"),
        Arguments.of("bad escape in the path", ON_LOOPBACK, "GET /ops/%zz HTTP/1.1\r\n\r\n", 400, "INFO"),
        Arguments.of("bad escape in an operation's query (was a 500)", ON_LOOPBACK,
            "POST /ops/resync?full=%zz HTTP/1.1\r\n" + BEARER + "Content-Length: 0\r\n\r\n", 400, "INFO"),
        Arguments.of("a Content-Length that is no number", ON_LOOPBACK,
            "POST /ops/swap HTTP/1.1\r\n" + BEARER + "Content-Length: nope\r\n\r\n", 400, "INFO"),
        Arguments.of("chunk garbage", ON_LOOPBACK,
            "POST /ops/lease HTTP/1.1\r\n" + BEARER + "Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n", 400, "INFO"),
        Arguments.of("a request line too long", ON_LOOPBACK, "GET " + longTarget + " HTTP/1.1\r\n\r\n", 414, "INFO"),
        Arguments.of("headers too large", ON_LOOPBACK, "GET /status HTTP/1.1\r\n" + bigHeader + "\r\n", 431, "INFO"),
        Arguments.of("a body too large", ON_LOOPBACK,
            "POST /ops/lease HTTP/1.1\r\n" + BEARER + "Content-Length: 70000\r\n\r\nholder=x", 413, "INFO"),
        Arguments.of("a body too large, announced with Expect", ON_LOOPBACK,
            "POST /ops/lease HTTP/1.1\r\n" + BEARER + "Expect: 100-continue\r\nContent-Length: 70000\r\n\r\n", 413, "INFO"),
        Arguments.of("HTTP/0.9 with the token (was answered as HTTP/0.9, and run)", ON_LOOPBACK,
            "POST /ops/swap HTTP/0.9\r\n" + BEARER + "Content-Length: 0\r\n\r\n", 505, "INFO"),
        Arguments.of("HTTP/2.0 on an HTTP/1 port", ON_LOOPBACK, "GET /status HTTP/2.0\r\n\r\n", 505, "INFO"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("refusals")
  void eachRefusalIsAnsweredAndLoggedOnceWithoutTheToken(String what, AccessPolicy policy, String request,
      int status, String level) throws Exception {
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN)) {
      byte[] answer = inProcess(policy, request);
      List<Response> responses = StrictResponseReader.readAll(answer);

      assertThat(StrictResponseReader.finalStatuses(responses)).containsExactly(status);
      assertThat(new String(answer, StandardCharsets.ISO_8859_1)).doesNotContain(TOKEN);
      assertThat(logs.refusals()).as("lines: %s", logs.sample()).isEqualTo(1);
      String line = logs.sample().get(0);
      assertThat(line).startsWith(level + " ").doesNotContain(TOKEN).doesNotContain("\n").doesNotContain("\r")
          .doesNotContain(" | ");
      assertThat(logs.stackTraces()).isZero();
      assertThat(logs.secretShown()).isZero();
      assertThat(totalCalls()).as("operations run").isZero();
    }
  }

  @Test
  void anExpectationOtherThanContinueIsIgnoredNotAnsweredOutOfTurn() throws Exception {
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN)) {
      byte[] answer = inProcess(ON_LOOPBACK, "POST /ops/echo HTTP/1.1\r\n" + BEARER
          + "Expect: teapot\r\nContent-Length: 3\r\n\r\nabc");

      assertThat(StrictResponseReader.finalStatuses(StrictResponseReader.readAll(answer))).containsExactly(200);
      assertThat(logs.refusals()).isZero();
      assertThat(calls.get("echo")).hasValue(1);
    }
  }

  /**
   * More requests pipelined than the endpoint queues (16): those queued are answered, then the
   * connection closes, with one line. Past Netty's own limit (128 unanswered) the codec closes
   * after the next answer. Either way every request that ran got its answer: the running one above
   * all, which may be an operation that changed the node's state.
   */
  @ParameterizedTest(name = "{0} requests")
  @ValueSource(ints = {40, 300})
  void tooManyPipelinedRequestsCloseTheConnectionOnlyAfterAnsweringThoseThatRan(int requests) throws Exception {
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN);
        Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.localAddress().getPort())) {
      socket.setSoTimeout(10_000);
      // the first runs until released, so all the others arrive while it runs
      socket.getOutputStream().write(("POST /ops/slow HTTP/1.1\r\n" + BEARER + "Content-Length: 0\r\n\r\n"
          + ("POST /ops/echo HTTP/1.1\r\n" + BEARER + "Content-Length: 0\r\n\r\n").repeat(requests - 1))
          .getBytes(StandardCharsets.US_ASCII));
      assertThat(slowStarted.await(10, TimeUnit.SECONDS)).isTrue();
      assertThat(AdminEndpointFuzzTest.pollUntil(Duration.ofSeconds(10), () -> logs.refusals() == 1)).isTrue();
      releaseSlow.countDown();
      InputStream in = new BufferedInputStream(socket.getInputStream());

      // Dropping the connection at once left the client of the running operation without its outcome.
      Response first = StrictResponseReader.read(in);
      assertThat(first.status()).isEqualTo(200);
      assertThat(first.body()).isEqualTo("late\n");
      int answered = 1;
      for (Response r = StrictResponseReader.read(in); r != null; r = StrictResponseReader.read(in)) {
        assertThat(r.status()).isEqualTo(200);
        answered++;
      }
      int echoes = calls.containsKey("echo") ? calls.get("echo").get() : 0;
      assertThat(answered).as("answers: the running request and every queued one that ran").isEqualTo(1 + echoes);
      if (requests <= 128) {
        assertThat(answered).as("the running request and the 16 queued").isEqualTo(17);
      }
      assertThat(logs.refusals()).as("lines: %s", logs.sample()).isEqualTo(1);
      assertThat(logs.sample().get(0)).contains("closed: more than 16 requests pipelined");
      assertThat(logs.problems()).isEmpty();
    }
  }

  /** Runs one connection's worth of input through the real pipeline; handlers run inline. */
  private byte[] inProcess(AccessPolicy policy, String request) {
    EmbeddedChannel ch = new EmbeddedChannel(new ChannelInitializer<Channel>() {
      @Override
      protected void initChannel(Channel c) {
        AdminServer.configure(c.pipeline(), policy, handlers, Runnable::run, AdminServer.Timeouts.DEFAULT);
      }
    });
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      ch.writeInbound(Unpooled.copiedBuffer(request, StandardCharsets.ISO_8859_1));
      ch.runPendingTasks();
      ch.checkException();
      for (Object o = ch.readOutbound(); o != null; o = ch.readOutbound()) {
        ByteBuf b = (ByteBuf) o;
        byte[] bytes = new byte[b.readableBytes()];
        b.readBytes(bytes);
        b.release();
        out.writeBytes(bytes);
      }
    } finally {
      ch.finishAndReleaseAll();
    }
    return out.toByteArray();
  }

  @Test
  void everyOperationThatChangesStateIsRefusedWithoutTheTokenOverTheWire() throws Exception {
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
    Map<String, String> targets = Map.of("swap", "/ops/swap", "promote", "/ops/promote?force=true",
        "demote", "/ops/demote", "resync", "/ops/resync?full=true", "lease", "/ops/lease", "release", "/ops/release");
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN)) {
      for (Map.Entry<String, String> op : targets.entrySet()) {
        String body = op.getKey().equals("lease") ? "holder=app-1\nttl=30\n" : "";
        for (String auth : List.of("", "Authorization: Bearer\r\n", "Authorization: Bearer " + TOKEN + "0\r\n",
            "authorization: bearer " + TOKEN.toUpperCase(Locale.ROOT) + "\r\n", "X-Token: " + TOKEN + "\r\n")) {
          Response r = exchange("POST " + op.getValue() + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Content-Length: "
              + body.length() + "\r\nConnection: close\r\n\r\n" + body);
          assertThat(r.status()).as("%s with [%s]", op.getKey(), auth.trim()).isEqualTo(401);
          assertThat(r.body()).doesNotContain(TOKEN);
        }
        assertThat(calls.get(op.getKey())).as("%s run without the token", op.getKey()).isNull();

        Response granted = exchange("POST " + op.getValue() + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + BEARER + "Content-Length: "
            + body.length() + "\r\nConnection: close\r\n\r\n" + body);
        assertThat(granted.status()).isEqualTo(200);
        assertThat(calls.get(op.getKey())).hasValue(1);
      }
      assertThat(logs.refusals()).as("one line per refused request").isEqualTo(targets.size() * 5L);
      assertThat(logs.secretShown()).isZero();
    }
  }

  @Test
  void aBodyTooLargeIsRefusedInTurnBehindARequestStillRunning() throws Exception {
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.localAddress().getPort())) {
      OutputStream out = socket.getOutputStream();
      out.write(("POST /ops/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n" + BEARER + "Content-Length: 0\r\n\r\n"
          + "POST /ops/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + BEARER + "Content-Length: 70000\r\n\r\nstart of a body too large")
          .getBytes(StandardCharsets.US_ASCII));
      assertThat(slowStarted.await(10, TimeUnit.SECONDS)).isTrue();
      InputStream in = new BufferedInputStream(socket.getInputStream());

      // Netty's own aggregator wrote its 413 at once, ahead of the answer to the first request.
      socket.setSoTimeout(300);
      assertThatThrownBy(in::read).as("nothing before the first request's answer")
          .isInstanceOf(SocketTimeoutException.class);
      socket.setSoTimeout(10_000);
      releaseSlow.countDown();

      Response first = StrictResponseReader.read(in);
      Response second = StrictResponseReader.read(in);
      assertThat(first.status()).isEqualTo(200);
      assertThat(first.body()).isEqualTo("late\n");
      assertThat(second.status()).isEqualTo(413);
      assertThat(second.closes()).isTrue();
      assertThat(in.read()).isEqualTo(-1);
      assertThat(calls.get("echo")).isNull();
    }
  }

  private Response exchange(String request) throws Exception {
    try (Socket s = new Socket()) {
      s.connect(server.localAddress(), 5_000);
      s.setSoTimeout(10_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      return StrictResponseReader.read(new BufferedInputStream(s.getInputStream()));
    }
  }

  @Test
  void timeoutsMustBePositive() {
    assertThatThrownBy(() -> new AdminServer.Timeouts(Duration.ZERO, Duration.ofSeconds(1)))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
