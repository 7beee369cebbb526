package io.replicator.tools;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The comparison the tests and the demo use to prove a copy equals its primary. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TreeDiffTest {
  @TempDir
  Path base;

  @Test
  void equalTreesHaveNoDifferenceAndAChangedByteIsNamed() throws Exception {
    Path a = base.resolve("a");
    Path b = base.resolve("b");
    for (Path root : List.of(a, b)) {
      Files.createDirectories(root.resolve("d/e"));
      Files.writeString(root.resolve("d/e/f.txt"), "same");
      Files.createDirectories(root.resolve(".replicator"));
    }
    Files.writeString(b.resolve(".replicator/state"), "metadata is not compared");
    assertThat(TreeDiff.compare(a, b)).isEmpty();

    Files.writeString(b.resolve("d/e/f.txt"), "sane");
    assertThat(TreeDiff.compare(a, b)).containsExactly("d/e/f.txt: content differs at byte 2");
  }

  /**
   * A copy still applying changes is compared while entries come and go: the comparison says the
   * trees differ (or, between changes, that they do not), and never fails with NoSuchFileException,
   * which would end a test's wait for the copy to converge at the first unlucky poll.
   */
  @Test
  void aTreeThatChangesWhileItIsComparedGivesDifferencesNotAnException() throws Exception {
    Path stable = base.resolve("stable");
    Path churning = base.resolve("churning");
    Files.createDirectories(stable);
    Files.createDirectories(churning);
    AtomicBoolean running = new AtomicBoolean(true);
    AtomicReference<Throwable> churnFailure = new AtomicReference<>();
    Thread churn = new Thread(() -> {
      try {
        for (long i = 0; running.get(); i++) {
          Path dir = churning.resolve("d" + (i % 4));
          Files.createDirectories(dir);
          Path f = dir.resolve("f" + (i % 64));
          Files.writeString(f, "x".repeat((int) (i % 100)));
          if (i % 3 == 0) {
            Files.deleteIfExists(dir.resolve("f" + ((i + 32) % 64)));
          }
          if (i % 500 == 499) {
            // a whole directory goes, the way a copy applies a recursive delete
            try (var children = Files.list(dir)) {
              for (Path c : (Iterable<Path>) children::iterator) {
                Files.deleteIfExists(c);
              }
            }
            Files.deleteIfExists(dir);
          }
        }
      } catch (NoSuchFileException | java.nio.file.DirectoryNotEmptyException expected) {
        // the churn races only with itself here; stop it quietly
      } catch (Throwable t) {
        churnFailure.set(t);
      }
    }, "tree-churn");
    churn.start();
    List<String> seen = new ArrayList<>();
    try {
      for (int i = 0; i < 300 && churn.isAlive(); i++) {
        for (List<String> d : List.of(TreeDiff.compare(stable, churning), TreeDiff.compare(churning, stable))) {
          if (!d.isEmpty()) {
            seen.add(d.get(0));
          }
        }
      }
    } finally {
      running.set(false);
      churn.join(10_000);
    }
    assertThat(churnFailure.get()).isNull();
    assertThat(seen).as("the churning tree differs from the empty one").isNotEmpty();
  }
}
