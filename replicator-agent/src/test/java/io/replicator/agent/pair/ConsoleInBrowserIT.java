package io.replicator.agent.pair;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.agent.browser.HeadlessChromium;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.interactions.Actions;

/**
 * The operator's console in a real headless Chromium against a real pair of agent processes: the
 * page served by the secondary's agent shows both nodes; the primary is killed and the failover
 * appears; swap with the token exchanges the roles; a button without the token shows the refusal
 * as the CLI words it. Along the way, the metrics the pair exports are shown to move.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ConsoleInBrowserIT {
  /** Where the screenshot of the console in a known state goes (the README shows a copy). */
  static final Path SCREENSHOT = Path.of("target", "console-screenshot.png");
  @TempDir Path dir;
  private PairProcesses pair;
  private ChromeDriver browser;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  @AfterEach
  void tearDown() {
    if (browser != null) {
      browser.quit();
    }
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void theConsoleFollowsAFailoverAndRunsASwapWithTheTokenAndShowsARefusalWithout() throws Exception {
    pair = new PairProcesses(dir, true, "200ms", "1s");
    pair.startWitness();
    // a fresh pair elects when its nodes meet; between equals the lower name wins
    pair.startAgent("alpha");
    pair.startAgent("beta");
    pair.awaitOrDump("alpha primary with its application, beta secondary and in sync", Duration.ofSeconds(60),
        () -> pair.agentRole("alpha").equals("PRIMARY") && pair.registered("alpha")
            && pair.agentRole("beta").equals("SECONDARY") && pair.inSync("alpha"));

    browser = HeadlessChromium.start(dir.resolve("profile"));
    String console = "http://127.0.0.1:" + pair.node("beta").adminPort + "/";
    browser.get(console);

    // both nodes, side by side
    awaitPage("both nodes shown", () -> text("local-name").startsWith("beta") && role("local-role").equals("secondary")
        && text("peer-name").equals("alpha") && role("peer-role").equals("primary"));
    assertThat(field("node-local", "connection")).contains("connected");
    assertThat(field("node-peer", "reachable")).startsWith("yes, heard");
    assertThat(text("access-state")).startsWith("Read-only");

    // usable with the keyboard alone: Tab to Swap, Enter opens the confirmation, Escape cancels it
    Actions keys = new Actions(browser);
    for (int i = 0; i < 12 && !"swap".equals(activeOperation()); i++) {
      keys.sendKeys(Keys.TAB).perform();
    }
    assertThat(activeOperation()).isEqualTo("swap");
    keys.sendKeys(Keys.ENTER).perform();
    awaitPage("confirmation open", () -> browser.findElement(By.id("confirm")).isDisplayed());
    keys.sendKeys(Keys.ESCAPE).perform();
    awaitPage("cancelled", () -> text("result").equals("swap: cancelled, nothing sent"));

    // and on a phone-sized window: nothing wider than the screen
    browser.manage().window().setSize(new Dimension(390, 844));
    awaitPage("phone layout", () -> (Boolean) ((JavascriptExecutor) browser).executeScript(
        "return document.documentElement.scrollWidth <= window.innerWidth;"));
    browser.manage().window().setSize(new Dimension(1280, 1400));

    // the primary is killed: the failover shows within a second of the agent's own status
    pair.killNode("alpha");
    Awaitility.await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(20))
        .until(() -> pair.agentRole("beta").equals("PRIMARY"));
    awaitPage("beta primary within a second", Duration.ofSeconds(1), () -> role("local-role").equals("primary"));
    awaitPage("alpha unreachable, the failover in the history", () -> role("peer-role").equals("unreachable")
        && field("node-peer", "state").equals("—") && field("node-local", "lastFailover").contains("failover: peer lost; the witness granted")
        && eventsText().contains("failover"));

    // alpha comes back as secondary and is resynced
    pair.startAgent("alpha");
    pair.awaitOrDump("alpha back as secondary, in sync", Duration.ofSeconds(90),
        () -> pair.agentRole("alpha").equals("SECONDARY") && pair.inSync("beta"));
    awaitPage("alpha shown as secondary", () -> role("peer-role").equals("secondary"));

    // swap with the token: the roles exchange
    browser.findElement(By.id("token")).sendKeys(pair.adminToken("beta"));
    browser.findElement(By.id("token-use")).click();
    awaitPage("token set", () -> text("access-state").startsWith("Admin token set"));
    press("swap");
    awaitPage("swap done", Duration.ofSeconds(120), () -> text("result").startsWith("swap done"));
    awaitPage("roles exchanged", () -> role("local-role").equals("secondary") && role("peer-role").equals("primary"));
    pair.awaitOrDump("alpha primary and in sync after the swap", Duration.ofSeconds(60),
        () -> pair.agentRole("alpha").equals("PRIMARY") && pair.inSync("alpha"));
    awaitPage("the swap in the history and the plots drawn", () -> eventsText().contains("swap")
        && browser.findElements(By.cssSelector("#plot-latency polyline.p99")).size() > 0);
    Files.createDirectories(SCREENSHOT.getParent());
    Files.write(SCREENSHOT, browser.getScreenshotAs(OutputType.BYTES));

    // without the token the page is read-only: the agent refuses, and the page says so as the CLI would
    browser.findElement(By.id("token-forget")).click();
    press("verify");
    awaitPage("the refusal shown", () -> text("result").equals(
        "verify refused: the agent wants an admin token (401): enter it above (exit 7: unauthorized)"));
    awaitPage("the refusal in the history", () -> eventsText().contains("verify refused (unauthorized): no admin token"));

    // the metrics the console plots are the ones /metrics exports, and they moved
    String metrics = get(pair.node("beta").adminPort, "/metrics");
    assertThat(value(metrics, "replicator_failovers_total")).isEqualTo(1.0);
    assertThat(value(metrics, "replicator_refused_operations_total{code=\"UNAUTHORIZED\"}")).isEqualTo(1.0);
    assertThat(value(metrics, "replicator_write_latency_seconds_count")).as("beta's application wrote while primary")
        .isPositive();
    assertThat(value(metrics, "replicator_force_latency_seconds_count")).isPositive();
    assertThat(value(metrics, "replicator_replicated_bytes_total")).isPositive();
    assertThat(value(metrics, "replicator_role{role=\"secondary\"}")).isEqualTo(1.0);
    assertThat(value(metrics, "replicator_state{state=\"SECONDARY\"}")).isEqualTo(1.0);
    String alphaMetrics = get(pair.node("alpha").adminPort, "/metrics");
    assertThat(value(alphaMetrics, "replicator_role{role=\"primary\"}")).isEqualTo(1.0);
    Awaitility.await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).until(() ->
        value(get(pair.node("alpha").adminPort, "/metrics"), "replicator_write_latency_seconds_count") > 0);
    assertThat(get(pair.node("beta").adminPort, "/samples")).contains("\"writeP99Millis\"");
    assertThat(get(pair.node("beta").adminPort, "/events")).contains("\"kind\":\"FAILOVER\"")
        .contains("\"kind\":\"SWAP\"").contains("\"kind\":\"REFUSED\"");
  }

  private void press(String operation) {
    browser.findElement(By.cssSelector("button[data-op='" + operation + "']")).click();
    awaitPage("confirmation for " + operation, () -> browser.findElement(By.id("confirm")).isDisplayed());
    browser.findElement(By.id("confirm-ok")).click();
  }

  /** A role badge as the page shows it (upper case on screen, by the style sheet). */
  private String role(String id) {
    return text(id).toLowerCase(java.util.Locale.ROOT);
  }

  private String activeOperation() {
    return (String) ((JavascriptExecutor) browser).executeScript("return document.activeElement.dataset.op || '';");
  }

  private String text(String id) {
    return browser.findElement(By.id(id)).getText().trim();
  }

  private String field(String card, String name) {
    return browser.findElement(By.cssSelector("#" + card + " [data-field='" + name + "']")).getText().trim();
  }

  private String eventsText() {
    return browser.findElement(By.id("events")).getText().toLowerCase(java.util.Locale.ROOT);
  }

  private void awaitPage(String what, Callable<Boolean> condition) {
    awaitPage(what, Duration.ofSeconds(30), condition);
  }

  /** Polls the page; on timeout fails with what the page shows and both agents' status and logs. */
  private void awaitPage(String what, Duration timeout, Callable<Boolean> condition) {
    try {
      Awaitility.await().atMost(timeout).pollInterval(Duration.ofMillis(50)).ignoreExceptions().until(condition);
    } catch (ConditionTimeoutException e) {
      String page;
      try {
        page = browser.findElement(By.tagName("body")).getText();
      } catch (RuntimeException ex) {
        page = "(page unreadable: " + ex + ")";
      }
      throw new AssertionError("the console did not show: " + what + "\n---- page\n" + page + "\n---- alpha "
          + pair.status("alpha") + "\n---- beta " + pair.status("beta") + "\n" + pair.logs(), e);
    }
  }

  private String get(int port, String path) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(path).isEqualTo(200);
    return r.body();
  }

  private static double value(String scrape, String series) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(scrape);
    assertThat(m.find()).as("series %s in:%n%s", series, scrape).isTrue();
    return Double.parseDouble(m.group(1));
  }
}
