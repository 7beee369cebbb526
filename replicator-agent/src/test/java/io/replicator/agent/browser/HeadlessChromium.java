package io.replicator.agent.browser;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * A real headless Chromium for the console's tests: Debian's {@code chromium} driven through its
 * {@code chromedriver} (both from {@code apt-get install chromium chromium-driver}, which
 * {@code .ci/run} does). Nothing is downloaded: the driver and the browser are named explicitly,
 * so Selenium never looks for them. When they are missing the test fails and says so.
 */
public final class HeadlessChromium {
  private static final String BROWSER = System.getProperty("replicator.chromium", "/usr/bin/chromium");
  private static final String DRIVER = System.getProperty("replicator.chromedriver", "/usr/bin/chromedriver");

  private HeadlessChromium() {}

  /**
   * Starts the browser with a fresh profile in {@code profile}.
   *
   * @param extraArguments more command line switches (host resolver rules, say)
   */
  public static ChromeDriver start(Path profile, String... extraArguments) {
    for (String needed : List.of(BROWSER, DRIVER)) {
      if (!Files.isExecutable(Path.of(needed))) {
        throw new AssertionError(needed + " is missing: the console is tested in a real browser; install it with "
            + "`apt-get install -y chromium chromium-driver` (.ci/run does)");
      }
    }
    // No Selenium Manager: it would try to download a driver and a browser.
    System.setProperty("webdriver.chrome.driver", DRIVER);
    ChromeOptions options = new ChromeOptions();
    options.setBinary(BROWSER);
    List<String> arguments = new ArrayList<>(List.of("--headless=new", "--no-sandbox", "--disable-gpu",
        "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--disable-extensions", "--window-size=1280,1400",
        "--user-data-dir=" + profile.toAbsolutePath()));
    arguments.addAll(List.of(extraArguments));
    options.addArguments(arguments);
    ChromeDriverService service = new ChromeDriverService.Builder()
        .usingDriverExecutable(new File(DRIVER))
        .usingAnyFreePort()
        .withTimeout(Duration.ofSeconds(60))
        .build();
    ChromeDriver driver = new ChromeDriver(service, options);
    driver.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(30)).scriptTimeout(Duration.ofSeconds(30));
    return driver;
  }
}
