package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Seeded random symbolic-link layouts and hostile change paths against {@link PathGuard}: whatever
 * it lets through, written to for real, lands inside the root and outside the metadata directory;
 * the sibling directory and the metadata stay untouched. A failure names its seed; {@code
 * -Dreplicator.fuzz.seed=N} replays one layout.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PathConfinementFuzzTest {
  private static final int PATHS_PER_LAYOUT = 400;

  @TempDir Path base;
  private Path root;
  private Path outside;
  private Random random;
  private final List<String> names = new ArrayList<>();

  static Stream<Long> seeds() {
    Long fixed = Long.getLong("replicator.fuzz.seed");
    if (fixed != null) {
      return Stream.of(fixed);
    }
    Random r = new Random();
    return Stream.generate(r::nextLong).limit(Integer.getInteger("replicator.fuzz.layouts", 25));
  }

  @ParameterizedTest(name = "seed {0}")
  @MethodSource("seeds")
  void whateverTheGuardLetsThroughStaysInsideTheRoot(long seed) throws IOException {
    random = new Random(seed);
    root = Files.createDirectories(base.resolve("root"));
    outside = Files.createDirectories(base.resolve("outside"));
    Files.writeString(outside.resolve("canary"), "untouched");
    Path meta = Files.createDirectories(root.resolve(".replicator"));
    Files.writeString(meta.resolve("node-meta.0"), "metadata");
    buildLayout();
    Map<String, String> outsideBefore = snapshot(outside);
    Map<String, String> metaBefore = snapshot(meta);
    PathGuard guard = new PathGuard(root);
    Path realRoot = root.toRealPath();

    for (int i = 0; i < PATHS_PER_LAYOUT; i++) {
      String path = hostilePath();
      boolean follow = random.nextBoolean();
      Path resolved;
      try {
        resolved = follow ? guard.resolveFollowingLinks(path) : guard.resolveNoFollow(path);
      } catch (PathRefusedException | NoSuchFileException refused) {
        continue;
      } catch (IOException other) {
        // a loop of links and the like: refused by an I/O error, equally fine
        continue;
      }
      String where = "seed " + seed + ", path '" + path + "' (follow " + follow + ") -> " + resolved;
      assertThat(resolved.startsWith(realRoot)).as(where).isTrue();
      assertThat(resolved.equals(realRoot) || !resolved.getName(realRoot.getNameCount()).toString()
          .equalsIgnoreCase(".replicator")).as(where).isTrue();
      if (follow) {
        // do what a Write would: create or append through the resolved path, links and all
        try {
          Files.writeString(resolved, "w", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException expected) {
          // a directory, a missing parent, a dangling chain: the operation fails by itself
        }
      } else if (random.nextBoolean()) {
        try {
          Files.createDirectory(resolved);
        } catch (IOException expected) {
          // exists, or a missing parent
        }
      }
      assertThat(snapshot(outside)).as(where).isEqualTo(outsideBefore);
      try (Stream<Path> s = Files.list(base)) {
        assertThat(s.map(p -> p.getFileName().toString())).as(where).containsExactlyInAnyOrder("root", "outside");
      }
    }
    assertThat(snapshot(meta)).as("seed %s: metadata untouched", seed).isEqualTo(metaBefore);
  }

  /** Directories, files and links to every kind of place: inside, outside, absolute, dangling, loops. */
  private void buildLayout() throws IOException {
    names.clear();
    List<Path> dirs = new ArrayList<>(List.of(root));
    for (int i = 0, n = 2 + random.nextInt(6); i < n; i++) {
      Path parent = dirs.get(random.nextInt(dirs.size()));
      Path d = parent.resolve("d" + i);
      Files.createDirectories(d);
      dirs.add(d);
      names.add("d" + i);
    }
    for (int i = 0, n = 1 + random.nextInt(4); i < n; i++) {
      Path f = dirs.get(random.nextInt(dirs.size())).resolve("f" + i);
      Files.writeString(f, "file");
      names.add("f" + i);
    }
    for (int i = 0, n = 3 + random.nextInt(8); i < n; i++) {
      Path dir = dirs.get(random.nextInt(dirs.size()));
      Path link = dir.resolve("l" + i);
      String target = linkTarget(dir, i);
      try {
        Files.createSymbolicLink(link, Path.of(target));
        names.add("l" + i);
      } catch (IOException exists) {
        // an earlier name took it
      }
    }
  }

  private String linkTarget(Path dir, int i) {
    int depth = dir.equals(root) ? 0 : root.relativize(dir).getNameCount();
    // every target stays inside the test's own directory, so even a broken guard harms nothing else
    String up = "../".repeat(depth);
    return switch (random.nextInt(12)) {
      case 0 -> up + "../outside";
      case 1 -> up + "../outside/canary";
      case 2 -> outside.toString();
      case 3 -> root.resolve("d0").toString();
      case 4 -> "../".repeat(1 + random.nextInt(depth + 1));
      case 5 -> up + ".replicator";
      case 6 -> up + ".replicator/node-meta.0";
      case 7 -> "l" + random.nextInt(i + 1); // chains and self loops
      case 8 -> up + "missing/deeper";
      case 9 -> up + "../outside/new-file";
      case 10 -> base.toString();
      default -> names.isEmpty() ? "." : names.get(random.nextInt(names.size()));
    };
  }

  private String hostilePath() {
    List<String> parts = new ArrayList<>();
    for (int i = 0, n = 1 + random.nextInt(5); i < n; i++) {
      parts.add(switch (random.nextInt(14)) {
        case 0 -> "..";
        case 1 -> ".";
        case 2 -> "";
        case 3 -> ".replicator";
        case 4 -> ".REPLICATOR";
        case 5 -> "new" + random.nextInt(5);
        case 6 -> "a\0b";
        case 7 -> "\u00e9t\u00e9";
        case 8 -> "x".repeat(1 + random.nextInt(300));
        case 9 -> "outside";
        default -> names.isEmpty() ? "n" : names.get(random.nextInt(names.size()));
      });
    }
    String path = String.join("/", parts);
    return switch (random.nextInt(10)) {
      case 0 -> "/" + path;
      case 1 -> path + "/";
      case 2 -> root + "/" + path;
      default -> path;
    };
  }

  private static Map<String, String> snapshot(Path dir) throws IOException {
    Map<String, String> files = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        String content = Files.isSymbolicLink(p) ? "link -> " + Files.readSymbolicLink(p)
            : Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)
                ? new String(Files.readAllBytes(p), StandardCharsets.UTF_8) : "dir";
        files.put(dir.relativize(p).toString(), content);
      }
    }
    return files;
  }
}
