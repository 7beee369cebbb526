package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedInputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The console over the wire: the page comes from the jar with a policy that runs only its own
 * script; requests from another origin or through another host name are refused before the token
 * is even looked at; refusals reach the listener that feeds the counter and the event history.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ConsoleEndpointTest {
  private static final String TOKEN = "console-T0ken-0d9e8f7a";
  private static final String BEARER = "Authorization: Bearer " + TOKEN + "\r\n";
  private final AtomicInteger swaps = new AtomicInteger();
  private final List<String> refusals = new CopyOnWriteArrayList<>();
  private AdminServer server;
  private String host;

  @BeforeEach
  void start() throws Exception {
    AdminHandlers handlers = new AdminHandlers()
        .status(() -> StatusDocuments.of("alpha", Statuses.primaryInSync()).build())
        .document("/events", () -> "{\"events\":[]}")
        .refusals((operation, code, reason) -> refusals.add(operation + " " + code + " " + reason))
        .operation("swap", () -> "swapped " + swaps.incrementAndGet())
        .operation("promote", (p, b) -> {
          throw new OperationFailure(OperationFailure.Code.SPLIT_BRAIN, "peer beta is primary");
        });
    server = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
    host = "127.0.0.1:" + server.localAddress().getPort();
  }

  @AfterEach
  void stop() {
    server.close();
  }

  @Test
  void thePageAndItsAssetsComeFromTheJarWithAStrictPolicyAndNoCors() throws Exception {
    StrictResponseReader.Response page = exchange("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
    assertThat(page.status()).isEqualTo(200);
    assertThat(page.headers().get("content-type")).startsWith("text/html");
    assertThat(page.body()).contains("<script src=\"/console.js\"").doesNotContain("http://").doesNotContain("https://");
    assertThat(page.headers().get("content-security-policy")).contains("default-src 'none'").contains("script-src 'self'")
        .contains("frame-ancestors 'none'").contains("connect-src 'self'");
    assertThat(page.headers().get("x-frame-options")).isEqualTo("DENY");
    for (String asset : List.of("/console.js", "/console.css")) {
      StrictResponseReader.Response r = exchange("GET " + asset + " HTTP/1.1\r\nHost: " + host
          + "\r\nConnection: close\r\n\r\n");
      assertThat(r.status()).as(asset).isEqualTo(200);
      // the SVG namespace is a name, not a place anything is fetched from
      assertThat(r.body().replace("'http://www.w3.org/2000/svg'", "")).as(asset)
          .doesNotContain("http://").doesNotContain("https://");
    }
    StrictResponseReader.Response events = exchange("GET /events HTTP/1.1\r\nHost: " + host
        + "\r\nConnection: close\r\n\r\n");
    assertThat(events.status()).isEqualTo(200);
    assertThat(events.body()).isEqualTo("{\"events\":[]}\n");
    // a preflight gets no CORS answer: a browser then sends nothing
    StrictResponseReader.Response preflight = exchange("OPTIONS /ops/swap HTTP/1.1\r\nHost: " + host
        + "\r\nOrigin: http://attacker.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n");
    assertThat(preflight.status()).isGreaterThanOrEqualTo(400);
    for (StrictResponseReader.Response r : List.of(page, events, preflight)) {
      assertThat(r.headers().keySet()).noneMatch(h -> h.startsWith("access-control-")).doesNotContain("set-cookie");
    }
  }

  @Test
  void aCrossOriginPostIsRefusedEvenWithTheToken() throws Exception {
    for (String from : List.of("Origin: http://attacker.example\r\n", "Origin: null\r\n",
        "Sec-Fetch-Site: cross-site\r\n", "Origin: http://127.0.0.1:1\r\nSec-Fetch-Site: same-site\r\n")) {
      StrictResponseReader.Response r = exchange("POST /ops/swap HTTP/1.1\r\nHost: " + host + "\r\n" + from + BEARER
          + "Content-Length: 0\r\nConnection: close\r\n\r\n");
      assertThat(r.status()).as(from).isEqualTo(403);
    }
    assertThat(swaps).hasValue(0);
    assertThat(refusals).hasSize(4).allMatch(line -> line.startsWith("swap FORBIDDEN cross-origin"));

    StrictResponseReader.Response same = exchange("POST /ops/swap HTTP/1.1\r\nHost: " + host + "\r\nOrigin: http://"
        + host + "\r\nSec-Fetch-Site: same-origin\r\n" + BEARER + "Content-Length: 0\r\nConnection: close\r\n\r\n");
    assertThat(same.status()).isEqualTo(200);
    assertThat(swaps).hasValue(1);
  }

  @Test
  void aRequestThroughAnotherHostNameIsRefusedReadsIncluded() throws Exception {
    for (String request : List.of("GET /status HTTP/1.1\r\nHost: attacker.example:" + server.localAddress().getPort()
        + "\r\nConnection: close\r\n\r\n", "GET / HTTP/1.1\r\nHost: attacker.example\r\nSec-Fetch-Mode: navigate\r\n"
        + "Connection: close\r\n\r\n", "POST /ops/swap HTTP/1.1\r\nHost: attacker.example\r\n" + BEARER
        + "Content-Length: 0\r\nConnection: close\r\n\r\n")) {
      StrictResponseReader.Response r = exchange(request);
      assertThat(r.status()).as(request).isEqualTo(403);
      assertThat(r.body()).doesNotContain("alpha");
    }
    assertThat(swaps).hasValue(0);
  }

  @Test
  void refusedOperationsReachTheListenerWithTheirCode() throws Exception {
    assertThat(exchange("POST /ops/swap HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .status()).isEqualTo(401);
    StrictResponseReader.Response refused = exchange("POST /ops/promote HTTP/1.1\r\nHost: " + host + "\r\n" + BEARER
        + "Content-Length: 0\r\nConnection: close\r\n\r\n");
    assertThat(refused.status()).isEqualTo(409);
    assertThat(refusals).containsExactly("swap UNAUTHORIZED no admin token", "promote SPLIT_BRAIN peer beta is primary");
  }

  private StrictResponseReader.Response exchange(String request) throws Exception {
    try (Socket s = new Socket()) {
      s.connect(server.localAddress(), 5_000);
      s.setSoTimeout(10_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      return StrictResponseReader.read(new BufferedInputStream(s.getInputStream()));
    }
  }
}
