package io.replicator.agent.admin;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;

/**
 * The operator's console: one page, its script and its style sheet, read from the jar once. The
 * machines have no internet, so nothing is fetched from anywhere else.
 */
final class ConsoleAssets {
  /** A file of the console: its content type and text. */
  record Asset(String contentType, String text) {}

  private static final Map<String, String[]> FILES = Map.of(
      "/", new String[] {"console.html", "text/html; charset=utf-8"},
      "/console.js", new String[] {"console.js", "text/javascript; charset=utf-8"},
      "/console.css", new String[] {"console.css", "text/css; charset=utf-8"});

  private static final Map<String, Asset> ASSETS = load();

  private ConsoleAssets() {}

  /** The asset served at {@code path}, if any. */
  static Optional<Asset> at(String path) {
    return Optional.ofNullable(ASSETS.get(path.equals("/index.html") ? "/" : path));
  }

  private static Map<String, Asset> load() {
    Map<String, Asset> out = new java.util.HashMap<>();
    FILES.forEach((path, file) -> {
      try (InputStream in = ConsoleAssets.class.getResourceAsStream("console/" + file[0])) {
        if (in == null) {
          throw new IllegalStateException("console asset " + file[0] + " is missing from the jar");
        }
        out.put(path, new Asset(file[1], new String(in.readAllBytes(), StandardCharsets.UTF_8)));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    return Map.copyOf(out);
  }
}
