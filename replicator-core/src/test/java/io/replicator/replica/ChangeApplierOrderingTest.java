package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.hash.Hashing;
import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.CopyOption;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Parallel application must give the same tree as applying one change after the other: a seeded
 * random stream of overlapping writes and truncates to a few files, mixed with namespace changes,
 * goes through the applier with 4 threads and, independently, through plain {@code Files} calls.
 * Set {@code -Dreplica.seed=N} to replay a failing seed.
 */
@Timeout(120)
class ChangeApplierOrderingTest {

  @TempDir Path base;

  @Test
  void parallelApplyEqualsSequentialApplyOnJimfs() throws Exception {
    try (FileSystem fileSystem = JimfsChangeApplierTest.newUnixJimfs()) {
      Path parallel = Files.createDirectories(fileSystem.getPath("/parallel"));
      Path sequential = Files.createDirectories(fileSystem.getPath("/sequential"));
      compare(parallel, sequential, 5_000);
    }
  }

  @Test
  void parallelApplyEqualsSequentialApplyOnARealDirectory() throws Exception {
    Path parallel = Files.createDirectory(base.resolve("parallel"));
    Path sequential = Files.createDirectory(base.resolve("sequential"));
    compare(parallel, sequential, 2_000);
  }

  private static void compare(Path parallel, Path sequential, int count) throws Exception {
    long seed = Long.getLong("replica.seed", System.nanoTime());
    String context = "seed=" + seed + " (replay with -Dreplica.seed=" + seed + ")";
    List<FileChange> changes = new ChangeGenerator(new Random(seed)).generate(count);

    for (FileChange change : changes) {
      try {
        applySequentially(sequential, change);
      } catch (IOException e) {
        throw new AssertionError("generator made a change that fails: " + change + " " + context, e);
      }
    }

    // A small cache forces evictions and reopenings along the way.
    ChangeApplier.Options options =
        ChangeApplier.Options.defaults().withApplyThreads(4).withChannelCacheSize(8);
    long first = 1;
    long last;
    try (ApplierHarness h = new ApplierHarness(parallel, options, ApplyFaults.NONE, first)) {
      for (FileChange change : changes) {
        try {
          h.submit(change);
        } catch (IOException e) {
          throw new AssertionError("submit failed, failures " + h.failures + "; " + context, e);
        }
      }
      last = h.nextSeq() - 1;
      h.awaitApplied();
      assertThat(h.failures).as(context).isEmpty();
      assertThat(h.applier.appliedSeq()).as(context).isEqualTo(last);
      assertThat(h.lastApplied).as(context).hasValue(last);
      assertThat(h.appliedCalls).as(context).isSorted();
      h.assertReleasedOnce(first, last);
    }
    SortedMap<String, String> expected = describe(sequential);
    assertThat(describe(parallel)).as(context).isEqualTo(expected);
    assertThat(expected.size()).as("the stream leaves a non-trivial tree; " + context).isGreaterThan(3);
  }

  /** The reference: one change after the other with plain Files calls, no caching, no threads. */
  private static void applySequentially(Path root, FileChange change) throws IOException {
    if (change instanceof FileChange.Write w) {
      try (FileChannel channel = FileChannel.open(root.resolve(w.path()), StandardOpenOption.WRITE)) {
        ByteBuffer data = w.data().duplicate();
        long position = w.position();
        while (data.hasRemaining()) {
          position += channel.write(data, position);
        }
      }
    } else if (change instanceof FileChange.Truncate t) {
      try (FileChannel channel = FileChannel.open(root.resolve(t.path()), StandardOpenOption.WRITE)) {
        channel.truncate(t.size());
      }
    } else if (change instanceof FileChange.CreateFile c) {
      Path path = root.resolve(c.path());
      if (Files.notExists(path)) {
        Files.createFile(path);
      } else if (c.truncate()) {
        Files.write(path, new byte[0]);
      }
    } else if (change instanceof FileChange.MakeDirectory m) {
      Files.createDirectory(root.resolve(m.path()));
    } else if (change instanceof FileChange.Delete d) {
      Files.delete(root.resolve(d.path()));
    } else if (change instanceof FileChange.Move m) {
      List<CopyOption> options = new ArrayList<>();
      if (m.replaceExisting()) {
        options.add(StandardCopyOption.REPLACE_EXISTING);
      }
      Files.move(root.resolve(m.source()), root.resolve(m.target()), options.toArray(CopyOption[]::new));
    } else if (change instanceof FileChange.Copy c) {
      List<CopyOption> options = new ArrayList<>();
      if (c.replaceExisting()) {
        options.add(StandardCopyOption.REPLACE_EXISTING);
      }
      Files.copy(root.resolve(c.source()), root.resolve(c.target()), options.toArray(CopyOption[]::new));
    } else if (change instanceof FileChange.CreateLink l) {
      Files.createLink(root.resolve(l.path()), root.resolve(l.existing()));
    } else if (change instanceof FileChange.Force) {
      // Durability has no visible effect on the tree.
    } else {
      throw new IllegalArgumentException("the generator does not make " + change);
    }
  }

  /** Relative path to "dir" or "file <size> <sha256>". */
  private static SortedMap<String, String> describe(Path root) throws IOException {
    SortedMap<String, String> tree = new TreeMap<>();
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : (Iterable<Path>) paths::iterator) {
        String relative = root.relativize(path).toString();
        if (Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
          tree.put(relative, "dir");
        } else {
          byte[] content = Files.readAllBytes(path);
          tree.put(
              relative,
              "file " + content.length + " " + Hashing.sha256().hashBytes(content).toString().substring(0, 16));
        }
      }
    }
    return tree;
  }

  /**
   * Makes a stream of changes that all succeed when applied in order, by tracking which files and
   * directories exist. Few names, so writes overlap and land on the same files from many seqs.
   */
  private static final class ChangeGenerator {
    private final Random random;
    private final TreeSet<String> files = new TreeSet<>();
    private final TreeSet<String> directories = new TreeSet<>(List.of(""));
    private final TreeSet<String> hardLinks = new TreeSet<>();
    private int nameCounter;

    ChangeGenerator(Random random) {
      this.random = random;
    }

    List<FileChange> generate(int count) {
      List<FileChange> changes = new ArrayList<>(count);
      while (changes.size() < count) {
        FileChange change = next();
        if (change != null) {
          changes.add(change);
        }
      }
      return changes;
    }

    private FileChange next() {
      int dice = random.nextInt(100);
      if (files.size() < 3 || dice < 6) {
        return createFile();
      }
      if (dice < 55) {
        String path = pick(files);
        byte[] data = new byte[1 + random.nextInt(random.nextInt(10) == 0 ? 20_000 : 600)];
        random.nextBytes(data);
        return new FileChange.Write(path, random.nextInt(8_000), ByteBuffer.wrap(data).asReadOnlyBuffer());
      }
      if (dice < 65) {
        return new FileChange.Truncate(pick(files), random.nextInt(6_000));
      }
      if (dice < 70) {
        String path = newName();
        directories.add(path);
        return new FileChange.MakeDirectory(path);
      }
      if (dice < 75) {
        String path = pick(files);
        files.remove(path);
        return new FileChange.Delete(path);
      }
      if (dice < 78) {
        String empty = emptyDirectory();
        if (empty == null) {
          return null;
        }
        directories.remove(empty);
        return new FileChange.Delete(empty);
      }
      if (dice < 84) {
        String source = pick(files);
        boolean replace = random.nextBoolean() && files.size() > 1;
        String target = replace ? pick(files) : newName();
        if (target.equals(source)) {
          return null;
        }
        files.remove(source);
        files.add(target);
        return new FileChange.Move(source, target, replace, random.nextBoolean());
      }
      if (dice < 87) {
        return moveDirectory();
      }
      if (dice < 91) {
        String source = pick(files);
        boolean replace = random.nextBoolean();
        String target = replace ? pick(files) : newName();
        if (target.equals(source)) {
          return null;
        }
        files.add(target);
        return new FileChange.Copy(source, target, replace, false);
      }
      if (dice < 93) {
        // A hard link. It is never written through: two names of one file land on different
        // workers, so only writes through one name are ordered (a documented limitation).
        String existing = pick(files);
        String target = newName();
        hardLinks.add(target);
        return new FileChange.CreateLink(target, existing);
      }
      return new FileChange.Force(random.nextBoolean() ? pick(files) : pick(directories), random.nextBoolean());
    }

    private FileChange createFile() {
      if (!files.isEmpty() && random.nextBoolean()) {
        return new FileChange.CreateFile(pick(files), random.nextBoolean());
      }
      String path = newName();
      files.add(path);
      return new FileChange.CreateFile(path, random.nextBoolean());
    }

    private FileChange moveDirectory() {
      List<String> movable = directories.stream().filter(d -> !d.isEmpty()).toList();
      if (movable.isEmpty()) {
        return null;
      }
      String source = movable.get(random.nextInt(movable.size()));
      String target = newName();
      if (target.startsWith(source + "/")) {
        return null; // not into itself
      }
      rename(files, source, target);
      rename(directories, source, target);
      rename(hardLinks, source, target);
      return new FileChange.Move(source, target, false, random.nextBoolean());
    }

    private static void rename(TreeSet<String> set, String source, String target) {
      List<String> moved = set.stream().filter(p -> p.equals(source) || p.startsWith(source + "/")).toList();
      for (String path : moved) {
        set.remove(path);
        set.add(target + path.substring(source.length()));
      }
    }

    private String emptyDirectory() {
      for (String directory : directories) {
        if (directory.isEmpty()) {
          continue;
        }
        String prefix = directory + "/";
        boolean empty =
            files.stream().noneMatch(f -> f.startsWith(prefix))
                && hardLinks.stream().noneMatch(f -> f.startsWith(prefix))
                && directories.stream().noneMatch(d -> d.startsWith(prefix));
        if (empty) {
          return directory;
        }
      }
      return null;
    }

    /** A name that exists neither as a file nor as a directory, in an existing directory. */
    private String newName() {
      String parent = pick(directories);
      String name = "n" + (nameCounter++);
      return parent.isEmpty() ? name : parent + "/" + name;
    }

    private String pick(TreeSet<String> set) {
      int index = random.nextInt(set.size());
      return set.stream().skip(index).findFirst().orElseThrow();
    }
  }
}
