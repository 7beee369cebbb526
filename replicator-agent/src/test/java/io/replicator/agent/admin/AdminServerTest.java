package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.replicator.ReplicationStatus;
import io.replicator.proto.StatusDocument;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The admin endpoint over real HTTP on 127.0.0.1: routes, status codes, the token, keep-alive. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdminServerTest {
  private static final String TOKEN = "test-token-6f1c2e9a";

  private final AtomicReference<ReplicationStatus> status = new AtomicReference<>(Statuses.primaryInSync());
  private final AtomicReference<String> nodeName = new AtomicReference<>("alpha");
  private final CountDownLatch releaseSlowOperation = new CountDownLatch(1);
  private final AtomicInteger echoCalls = new AtomicInteger();
  private PrometheusMeterRegistry registry;
  private ReplicationMetrics metrics;
  private final ApplicationLatency latency = new ApplicationLatency();
  private AdminHandlers handlers;
  private AdminServer server;
  private ExecutorService clientExecutor;
  private HttpClient client;

  @BeforeEach
  void setUp() {
    registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    metrics = new ReplicationMetrics(registry, status::get, latency);
    handlers = new AdminHandlers()
        .status(() -> StatusDocuments.of(nodeName.get(), status.get()).build())
        .metrics(registry, metrics::refresh)
        .operation("echo", () -> "echoed " + echoCalls.incrementAndGet())
        .operation("fail", () -> {
          throw new IllegalStateException("peer is not connected");
        })
        .operation("slow", () -> {
          releaseSlowOperation.await();
          return "late";
        });
    clientExecutor = Executors.newSingleThreadExecutor();
    client = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .executor(clientExecutor)
        .build();
  }

  @AfterEach
  void tearDown() throws Exception {
    releaseSlowOperation.countDown();
    if (server != null) {
      server.close();
      assertThat(server.isOpen()).isFalse();
    }
    // HttpClient is AutoCloseable from JDK 21 on; on 17 its threads end with the executor.
    if (client instanceof AutoCloseable closeable) {
      closeable.close();
    }
    clientExecutor.shutdownNow();
    registry.close();
  }

  private void start() throws IOException {
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
    assertThat(server.localAddress().getPort()).isPositive();
  }

  private URI uri(String path) {
    return URI.create("http://127.0.0.1:" + server.localAddress().getPort() + path);
  }

  private HttpResponse<String> get(String path) throws Exception {
    return client.send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(10)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** POST with the token. */
  private HttpResponse<String> post(String path) throws Exception {
    return post(path, Optional.of("Bearer " + TOKEN));
  }

  private HttpResponse<String> post(String path, Optional<String> authorization) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(10))
        .POST(HttpRequest.BodyPublishers.noBody());
    authorization.ifPresent(value -> request.header("Authorization", value));
    return client.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void statusIsJsonWithTheSuppliedValues() throws Exception {
    start();
    status.set(Statuses.syncSource(300, 1200, 900));

    HttpResponse<String> response = get("/status");

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("Content-Type")).hasValue("application/json; charset=utf-8");
    StatusDocument doc = Statuses.parse(response.body());
    assertThat(doc.getNode()).isEqualTo("alpha");
    assertThat(doc.getState()).isEqualTo(StatusDocument.State.SYNC_SOURCE);
    assertThat(doc.getRole()).isEqualTo(StatusDocument.Role.primary);
    assertThat(doc.getGeneration()).isEqualTo("fedcba9876543210");
    assertThat(doc.getDirtyBytes()).isEqualTo(900L);
    assertThat(doc.getProblem()).isEqualTo("peer out of date");
    assertThat(doc.getResync().getBytesDone()).isEqualTo(300L);
    assertThat(doc.getResync().getBytesTotal()).isEqualTo(1200L);
    assertThat(doc.getResync().getPercent()).isEqualTo(25.0);
  }

  @Test
  void statusEscapesAwkwardNodeNames() throws Exception {
    start();
    String awkward = "node \"one\"\nline two\t\u0001\\";
    nodeName.set(awkward);

    HttpResponse<String> response = get("/status");

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(Statuses.parse(response.body()).getNode()).isEqualTo(awkward);
  }

  @Test
  void metricsFollowTheStatusAndShowTheWriteHistogram() throws Exception {
    start();
    HttpResponse<String> before = get("/metrics");
    assertThat(before.statusCode()).isEqualTo(200);
    assertThat(before.headers().firstValue("Content-Type")).hasValueSatisfying(
        type -> assertThat(type).startsWith("text/plain; version=0.0.4"));
    assertThat(ReplicationMetricsTest.value(before.body(), "replicator_state{state=\"PRIMARY\"}")).isEqualTo(1.0);
    assertThat(ReplicationMetricsTest.value(before.body(), "replicator_peer_connected")).isEqualTo(1.0);

    status.set(Statuses.syncSource(400, 800, 512));
    latency.report(ReplicationMetricsTest.oneWrite(1_500_000, 8192));
    metrics.failovers().increment();
    String after = get("/metrics").body();

    assertThat(ReplicationMetricsTest.value(after, "replicator_state{state=\"PRIMARY\"}")).isEqualTo(0.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_state{state=\"SYNC_SOURCE\"}")).isEqualTo(1.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_dirty_bytes")).isEqualTo(512.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_resync_done_bytes")).isEqualTo(400.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_resync_total_bytes")).isEqualTo(800.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_in_flight_changes")).isEqualTo(3.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_replicated_bytes_total")).isEqualTo(8192.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_failovers_total")).isEqualTo(1.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_write_latency_seconds_bucket{le=\"0.001\"}"))
        .isEqualTo(0.0);
    assertThat(ReplicationMetricsTest.value(after, "replicator_write_latency_seconds_bucket{le=\"0.002\"}"))
        .isEqualTo(1.0);
    assertThat(after).contains("replicator_write_latency_seconds_bucket{le=\"+Inf\"} 1");
  }

  @Test
  void operationsAlwaysNeedTheTokenAndReadsOnLoopbackDoNot() throws Exception {
    start();

    assertThat(get("/status").statusCode()).isEqualTo(200);
    assertThat(get("/metrics").statusCode()).isEqualTo(200);

    HttpResponse<String> missing = post("/ops/echo", Optional.empty());
    assertThat(missing.statusCode()).isEqualTo(401);
    assertThat(missing.headers().firstValue("WWW-Authenticate")).hasValueSatisfying(
        value -> assertThat(value).startsWith("Bearer").doesNotContain("invalid_token"));

    HttpResponse<String> wrong = post("/ops/echo", Optional.of("Bearer " + TOKEN + "-not"));
    assertThat(wrong.statusCode()).isEqualTo(401);
    assertThat(wrong.headers().firstValue("WWW-Authenticate")).hasValueSatisfying(
        value -> assertThat(value).startsWith("Bearer").contains("invalid_token"));
    assertThat(wrong.body()).doesNotContain(TOKEN);

    HttpResponse<String> notBearer = post("/ops/echo", Optional.of("Basic " + TOKEN));
    assertThat(notBearer.statusCode()).isEqualTo(401);
    assertThat(echoCalls).hasValue(0);

    HttpResponse<String> right = post("/ops/echo", Optional.of("Bearer " + TOKEN));
    assertThat(right.statusCode()).isEqualTo(200);
    assertThat(right.body()).isEqualTo("echoed 1\n");
  }

  @Test
  void unknownPathsAndOperationsAre404() throws Exception {
    start();

    assertThat(get("/nothing").statusCode()).isEqualTo(404);
    assertThat(get("/status/").statusCode()).isEqualTo(404);
    assertThat(post("/ops/nope").statusCode()).isEqualTo(404);
    assertThat(post("/ops/").statusCode()).isEqualTo(404);
  }

  @Test
  void unknownOperationIsRefusedBeforeLookupWithoutTheToken() throws Exception {
    start();

    // Without the token a caller learns nothing about which operations exist.
    assertThat(post("/ops/nope", Optional.empty()).statusCode()).isEqualTo(401);
    assertThat(post("/ops/nope", Optional.of("Bearer " + TOKEN)).statusCode()).isEqualTo(404);
  }

  @Test
  void wrongMethodsAre405WithAllow() throws Exception {
    start();

    HttpResponse<String> postStatus = post("/status", Optional.empty());
    assertThat(postStatus.statusCode()).isEqualTo(405);
    assertThat(postStatus.headers().firstValue("Allow")).hasValue("GET");

    HttpResponse<String> getOperation = client.send(HttpRequest.newBuilder(uri("/ops/echo"))
        .timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + TOKEN).GET().build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(getOperation.statusCode()).isEqualTo(405);
    assertThat(getOperation.headers().firstValue("Allow")).hasValue("POST");
    assertThat(echoCalls).hasValue(0);
  }

  @Test
  void oversizeBodyIs413() throws Exception {
    start();
    byte[] body = new byte[AdminServer.MAX_BODY_BYTES + 1];

    HttpResponse<String> response = client.send(HttpRequest.newBuilder(uri("/ops/echo"))
        .timeout(Duration.ofSeconds(10))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString());

    assertThat(response.statusCode()).isEqualTo(413);
    assertThat(echoCalls).hasValue(0);
    // The server is still there for the next client.
    assertThat(get("/status").statusCode()).isEqualTo(200);
  }

  @Test
  void anOperationThatThrowsIs500WithItsMessageOnly() throws Exception {
    start();

    HttpResponse<String> response = post("/ops/fail");

    assertThat(response.statusCode()).isEqualTo(500);
    assertThat(response.body()).isEqualTo("peer is not connected\n").doesNotContain("Exception").doesNotContain("\tat ");
  }

  @Test
  void aSlowOperationTimesOutWithoutBlockingOthers() throws Exception {
    handlers.timeout(Duration.ofMillis(300));
    start();

    HttpResponse<String> slow = post("/ops/slow");

    assertThat(slow.statusCode()).isEqualTo(504);
    assertThat(slow.body()).contains("operation slow").contains("300 ms");
    assertThat(post("/ops/echo").statusCode()).isEqualTo(200);
  }

  @Test
  void operationsRegisteredAfterStartAreServed() throws Exception {
    start();
    assertThat(post("/ops/swap").statusCode()).isEqualTo(404);

    handlers.operation("swap", () -> "swapped");

    HttpResponse<String> response = post("/ops/swap");
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.body()).isEqualTo("swapped\n");
  }

  @Test
  void pipelinedRequestsAreAnsweredInOrderOnOneConnection() throws Exception {
    start();
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.localAddress().getPort())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      // The first request waits on the pool, so the answers would come out of order if nothing kept them in line.
      String bearer = "Authorization: Bearer " + TOKEN + "\r\n";
      out.write(("POST /ops/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer + "Content-Length: 0\r\n\r\n"
          + "GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
          + "POST /ops/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer + "Content-Length: 0\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = socket.getInputStream();

      RawResponse first = RawResponse.read(in);
      RawResponse second = RawResponse.read(in);
      RawResponse third = RawResponse.read(in);

      assertThat(first.status()).isEqualTo(200);
      assertThat(first.body()).isEqualTo("echoed 1\n");
      assertThat(first.headers()).doesNotContainKey("connection");
      assertThat(second.status()).isEqualTo(404);
      assertThat(third.status()).isEqualTo(200);
      assertThat(third.body()).isEqualTo("echoed 2\n");

      out.write("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      out.flush();
      RawResponse last = RawResponse.read(in);
      assertThat(last.status()).isEqualTo(200);
      assertThat(last.headers()).containsEntry("connection", "close");
      assertThat(in.read()).as("server closes after Connection: close").isEqualTo(-1);
    }
  }

  @Test
  void http10WithoutKeepAliveIsClosedAfterTheResponse() throws Exception {
    start();
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.localAddress().getPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write("GET /metrics HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      InputStream in = socket.getInputStream();

      RawResponse response = RawResponse.read(in);

      assertThat(response.status()).isEqualTo(200);
      assertThat(response.headers()).containsEntry("connection", "close");
      assertThat(response.body()).contains("replicator_state");
      assertThat(in.read()).isEqualTo(-1);
    }
  }

  @Test
  void malformedRequestIs400AndClosed() throws Exception {
    start();
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.localAddress().getPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n"
          .getBytes(StandardCharsets.US_ASCII));
      InputStream in = socket.getInputStream();

      RawResponse response = RawResponse.read(in);

      assertThat(response.status()).isEqualTo(400);
      assertThat(in.read()).isEqualTo(-1);
    }
  }

  @Test
  void badPercentEncodingIs400AndTheConnectionStaysUsable() throws Exception {
    start();
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.localAddress().getPort())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write("GET /ops/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
          .getBytes(StandardCharsets.US_ASCII));
      InputStream in = socket.getInputStream();

      assertThat(RawResponse.read(in).status()).isEqualTo(400);
      assertThat(RawResponse.read(in).status()).isEqualTo(200);
    }
  }

  /** One HTTP/1.x response read off a socket: status, lower-cased headers, and a Content-Length body. */
  record RawResponse(int status, Map<String, String> headers, String body) {
    static RawResponse read(InputStream in) throws IOException {
      String statusLine = line(in);
      int status = Integer.parseInt(statusLine.split(" ")[1]);
      Map<String, String> headers = new LinkedHashMap<>();
      for (String header = line(in); !header.isEmpty(); header = line(in)) {
        int colon = header.indexOf(':');
        headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT), header.substring(colon + 1).trim());
      }
      int length = Integer.parseInt(headers.getOrDefault("content-length", "0"));
      byte[] body = in.readNBytes(length);
      assertThat(body).hasSize(length);
      return new RawResponse(status, headers, new String(body, StandardCharsets.UTF_8));
    }

    private static String line(InputStream in) throws IOException {
      ByteArrayOutputStream line = new ByteArrayOutputStream();
      for (int b = in.read(); b != '\n'; b = in.read()) {
        if (b < 0) {
          throw new IOException("connection closed mid-response after: " + line);
        }
        if (b != '\r') {
          line.write(b);
        }
      }
      return line.toString(StandardCharsets.US_ASCII);
    }
  }
}
