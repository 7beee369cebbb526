package io.replicator.replica;

import static io.replicator.replica.ApplierHarness.write;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The applier's behaviour, written once and run on every kind of root (jimfs, a real directory)
 * by the subclasses.
 */
@Timeout(60)
abstract class ChangeApplierContract {

  /** A fresh directory holding nothing; the test makes "root" and "outside" in it. */
  abstract Path newBase() throws IOException;

  /** Whether directories can be fsynced on this provider. */
  abstract boolean directoriesSync();

  /** Frees what {@link #newBase} made, after the checks that run after each test. */
  void closeBase() throws IOException {}

  Path root;
  Path outside;

  @BeforeEach
  void makeDirectories() throws IOException {
    Path base = newBase();
    root = Files.createDirectories(base.resolve("root"));
    outside = Files.createDirectories(base.resolve("outside"));
  }

  @AfterEach
  void outsideIsUntouched() throws IOException {
    try (Stream<Path> entries = Files.list(outside)) {
      assertThat(entries.map(p -> p.getFileName().toString()))
          .as("nothing may appear outside the root")
          .allMatch(name -> name.equals("victim"));
    } finally {
      closeBase();
    }
  }

  // ------------------------------------------------------------------ every kind of change

  @Test
  void appliesEveryKindOfChange() throws Exception {
    FileTime modified = FileTime.from(Instant.parse("2025-06-07T08:09:10Z"));
    try (ApplierHarness h = new ApplierHarness(root)) {
      long first = h.submit(new FileChange.MakeDirectory("d"));
      h.submit(new FileChange.CreateFile("d/f", false));
      h.submit(write("d/f", 0, "hello world"));
      h.submit(write("d/f", 6, "WORLD!"));
      h.submit(new FileChange.Truncate("d/f", 10));
      h.submit(new FileChange.CreateFile("d/g", true));
      h.submit(write("d/g", 3, "gap"));
      h.submit(new FileChange.Copy("d/f", "d/copy", false, true));
      h.submit(new FileChange.Copy("d/g", "d/copy", true, false));
      h.submit(new FileChange.Move("d/g", "d/moved", false, true));
      h.submit(new FileChange.CreateFile("d/replaced", false));
      h.submit(new FileChange.Move("d/moved", "d/replaced", true, false));
      h.submit(new FileChange.CreateSymbolicLink("d/link", "f"));
      h.submit(new FileChange.CreateSymbolicLink("d/dangling", "../nowhere/at/all"));
      h.submit(new FileChange.CreateLink("d/hard", "d/f"));
      h.submit(new FileChange.SetTimes("d/f", modified, null, null));
      h.submit(new FileChange.SetPermissions("d/f", PosixFilePermissions.fromString("rw-r-----")));
      h.submit(new FileChange.SetOwner("d/f", ownerOf(root), groupOf(root)));
      h.submit(new FileChange.Force("d/f", true));
      h.submit(new FileChange.Force("", true));
      h.submit(new FileChange.MakeDirectory("d/empty"));
      h.submit(new FileChange.Delete("d/empty"));
      h.submit(new FileChange.CreateFile("d/gone", false));
      h.submit(write("d/gone", 0, "bye"));
      h.submit(new FileChange.Delete("d/gone"));
      // Already there: fine, and no truncation without the flag.
      h.submit(new FileChange.MakeDirectory("d"));
      long last = h.submit(new FileChange.CreateFile("d/f", false));

      h.awaitApplied();

      assertThat(h.failures).isEmpty();
      assertThat(h.applier.appliedSeq()).isEqualTo(last);
      assertThat(h.lastApplied).hasValue(last);
      assertThat(h.appliedCalls).isSorted();
      h.assertReleasedOnce(first, last);
      assertThat(h.applier.changesApplied()).isEqualTo(last - first + 1);
      assertThat(h.applier.bytesWritten()).isEqualTo(11 + 6 + 3 + 3);
      assertThat(h.applier.fsyncs()).isGreaterThanOrEqualTo(1);
    }
    assertThat(text(root.resolve("d/f"))).isEqualTo("hello WORL");
    assertThat(Files.readAllBytes(root.resolve("d/replaced")))
        .isEqualTo(new byte[] {0, 0, 0, 'g', 'a', 'p'});
    assertThat(Files.readAllBytes(root.resolve("d/copy")))
        .isEqualTo(new byte[] {0, 0, 0, 'g', 'a', 'p'});
    assertThat(root.resolve("d/g")).doesNotExist();
    assertThat(root.resolve("d/moved")).doesNotExist();
    assertThat(Files.readSymbolicLink(root.resolve("d/link")).toString()).isEqualTo("f");
    assertThat(text(root.resolve("d/link"))).isEqualTo("hello WORL");
    assertThat(Files.readSymbolicLink(root.resolve("d/dangling")).toString())
        .isEqualTo("../nowhere/at/all");
    assertThat(Files.isSameFile(root.resolve("d/hard"), root.resolve("d/f"))).isTrue();
    assertThat(Files.getLastModifiedTime(root.resolve("d/f"))).isEqualTo(modified);
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(root.resolve("d/f"))))
        .isEqualTo("rw-r-----");
    assertThat(root.resolve("d/empty")).doesNotExist();
    assertThat(root.resolve("d/gone")).doesNotExist();
  }

  @Test
  void aResyncWriteOfScatteredPiecesPutsEachPieceAtItsOwnPosition() throws Exception {
    FileTime modified = FileTime.from(Instant.parse("2025-06-07T08:09:10Z"));
    byte[] before = new byte[64];
    java.util.Arrays.fill(before, (byte) '.');
    try (ApplierHarness h = new ApplierHarness(root)) {
      h.submit(new FileChange.CreateFile("f", false));
      h.submit(new FileChange.Write("f", 0, ByteBuffer.wrap(before)));
      long last = h.submit(new FileChange.WriteFile("f", 0,
          ByteBuffer.wrap("AAbbbbC".getBytes(StandardCharsets.UTF_8)).asReadOnlyBuffer(), false, -1, -1, modified,
          List.of(new FileChange.WriteFile.Piece(2, 2), new FileChange.WriteFile.Piece(30, 4),
              new FileChange.WriteFile.Piece(70, 1))));
      h.awaitApplied();
      assertThat(h.failures).isEmpty();
      assertThat(h.applier.appliedSeq()).isEqualTo(last);
      assertThat(h.applier.bytesWritten()).isEqualTo(64 + 7);
    }
    String expected = "..AA" + ".".repeat(26) + "bbbb" + ".".repeat(30) + "\0\0\0\0\0\0" + "C";
    assertThat(text(root.resolve("f"))).isEqualTo(expected);
    assertThat(Files.getLastModifiedTime(root.resolve("f"))).isEqualTo(modified);
  }

  @Test
  void firstSeqMayBeAnyPositiveValue() throws Exception {
    try (ApplierHarness h =
        new ApplierHarness(root, ChangeApplier.Options.defaults(), ApplyFaults.NONE, 1_000_000)) {
      assertThat(h.applier.receivedSeq()).isZero();
      h.submit(new FileChange.CreateFile("a", false));
      long last = h.submit(write("a", 0, "x"));
      h.awaitApplied();
      assertThat(h.applier.receivedSeq()).isEqualTo(1_000_001);
      assertThat(h.applier.appliedSeq()).isEqualTo(last);
    }
  }

  @Test
  void writeThroughALinkInsideTheRootIsFollowed() throws Exception {
    try (ApplierHarness h = new ApplierHarness(root)) {
      h.submit(new FileChange.MakeDirectory("sub"));
      h.submit(new FileChange.CreateSymbolicLink("in", "sub"));
      h.submit(new FileChange.CreateFile("in/f", true));
      h.submit(write("in/f", 0, "inside"));
      h.submit(new FileChange.CreateSymbolicLink("flink", "sub/f"));
      h.submit(write("flink", 6, "!"));
      h.submit(new FileChange.Force("flink", false));
      h.awaitApplied();
      assertThat(h.failures).isEmpty();
    }
    assertThat(text(root.resolve("sub/f"))).isEqualTo("inside!");
  }

  // ------------------------------------------------------------------ hostile paths

  @Test
  void refusesMalformedPaths() throws Exception {
    List<FileChange> hostile =
        List.of(
            new FileChange.CreateFile("/etc/evil", false),
            new FileChange.CreateFile("..", false),
            new FileChange.CreateFile("a/../../x", false),
            new FileChange.CreateFile("a\0b", false),
            new FileChange.CreateFile("a//b", false),
            new FileChange.MakeDirectory(".replicator/x"),
            new FileChange.CreateFile(".replicator/state", false),
            new FileChange.Delete(".replicator"),
            new FileChange.Move("x", "../outside/x", false, false));
    Files.createDirectory(root.resolve(".replicator"));
    Files.createFile(root.resolve("x"));
    for (FileChange change : hostile) {
      assertRefused(change);
    }
    assertThat(root.resolve(".replicator")).isEmptyDirectory();
    assertThat(root.resolve("x")).exists();
  }

  @Test
  void refusesWritesThroughSymbolicLinksThatLeaveTheRoot() throws Exception {
    Path victim = Files.write(outside.resolve("victim"), bytes("original"));
    Files.createDirectory(root.resolve(".replicator"));
    Files.createDirectory(root.resolve("sub"));

    // Links are created through changes: the target string is stored as-is, never resolved.
    assertRefused(new FileChange.CreateFile("out/file", true), link("out", outside.toString()));
    assertRefused(write("out/file", 0, "x"), link("out", outside.toString()));
    assertRefused(new FileChange.CreateFile("rel/file", false), link("rel", "../outside"));
    assertRefused(new FileChange.CreateFile("up/outside/file", false), link("up", ".."));
    assertRefused(
        new FileChange.CreateFile("sub/up2/outside/file", false), link("sub/up2", "../.."));
    assertRefused(write("flink", 0, "pwned"), link("flink", victim.toString()));
    assertRefused(new FileChange.Truncate("flink", 0), link("flink", victim.toString()));
    assertRefused(new FileChange.CreateFile("flink", true), link("flink", victim.toString()));
    assertRefused(
        new FileChange.SetPermissions("flink", PosixFilePermissions.fromString("rwxrwxrwx")),
        link("flink", victim.toString()));
    assertRefused(new FileChange.Force("flink", true), link("flink", victim.toString()));
    assertRefused(
        new FileChange.Copy("flink", "stolen", false, false), link("flink", victim.toString()));
    // Dangling: creating through it would create a file outside.
    assertRefused(
        new FileChange.CreateFile("dangling", false),
        link("dangling", outside.resolve("new").toString()));
    // A chain of links, the last one leaving.
    assertRefused(
        new FileChange.CreateFile("a/file", false), link("b", outside.toString()), link("a", "b"));
    // Into the metadata directory.
    assertRefused(new FileChange.CreateFile("meta/state", false), link("meta", ".replicator"));

    assertThat(text(victim)).isEqualTo("original");
    assertThat(root.resolve(".replicator")).isEmptyDirectory();
  }

  @Test
  void aDirectoryWrittenThroughThenSwappedForALinkOutsideIsRefusedAtTheNextWrite() throws Exception {
    Path victim = Files.write(outside.resolve("victim"), bytes("original"));
    // the applier remembers "d" as a plain directory after the first writes: the barriers that
    // swap it for a link (a delete then a link; a rename of a link over it) must make it look again
    assertRefused(
        write("d/victim", 0, "pwned"),
        new FileChange.MakeDirectory("d"),
        new FileChange.CreateFile("d/victim", false),
        write("d/victim", 0, "first"),
        new FileChange.Delete("d/victim"),
        new FileChange.Delete("d"),
        link("d", outside.toString()));
    assertRefused(
        write("e/victim", 0, "pwned"),
        new FileChange.MakeDirectory("e"),
        new FileChange.CreateFile("e/victim", false),
        write("e/victim", 0, "first"),
        link("escape", outside.toString()),
        new FileChange.Delete("e/victim"),
        new FileChange.Delete("e"),
        new FileChange.Move("escape", "e", false, false));
    assertThat(text(victim)).isEqualTo("original");
  }

  @Test
  void actsOnALinkItselfWithoutFollowingIt() throws Exception {
    Path victim = Files.write(outside.resolve("victim"), bytes("original"));
    try (ApplierHarness h = new ApplierHarness(root)) {
      h.submit(link("l1", victim.toString()));
      h.submit(link("l2", outside.toString()));
      h.submit(new FileChange.Move("l1", "moved", false, false));
      h.submit(new FileChange.Delete("moved"));
      h.submit(new FileChange.Delete("l2"));
      h.awaitApplied();
      assertThat(h.failures).isEmpty();
    }
    assertThat(text(victim)).isEqualTo("original");
    try (Stream<Path> entries = Files.list(root)) {
      assertThat(entries).isEmpty();
    }
  }

  // ------------------------------------------------------------------ failures

  @Test
  void writeIntoAMissingDirectoryIsAnApplyFailureThatStopsEverythingAfterIt() throws Exception {
    // Held until everything is queued, so the later changes are in the applier when it fails.
    CountDownLatch queued = new CountDownLatch(1);
    try (ApplierHarness h =
        new ApplierHarness(
            root,
            ChangeApplier.Options.defaults().withApplyThreads(1),
            blockOn("missing/f", queued),
            1)) {
      h.submit(new FileChange.CreateFile("before", false));
      long failing = h.submit(write("missing/f", 0, "data"));
      h.submit(new FileChange.CreateFile("after", false));
      h.submit(new FileChange.MakeDirectory("missing"));
      long last = h.submit(new FileChange.CreateFile("missing/f", false));
      queued.countDown();

      ApplierHarness.Failure failure = h.awaitFailure();

      assertThat(failure.seq()).isEqualTo(failing);
      assertThat(failure.cause()).isInstanceOf(NoSuchFileException.class);
      h.assertReleasedOnce(1, last);
      assertThat(h.applier.appliedSeq()).isEqualTo(failing - 1);
      assertThat(h.applier.failure()).isSameAs(failure.cause());
      assertThatThrownBy(() -> h.submit(new FileChange.CreateFile("later", false)))
          .isInstanceOf(IOException.class)
          .hasMessageContaining("stopped after seq " + failing);
      h.assertReleasedOnce(1, last + 1);
      assertThat(h.failures).hasSize(1);
    }
    assertThat(root.resolve("before")).exists();
    assertThat(root.resolve("after")).doesNotExist();
    assertThat(root.resolve("missing")).doesNotExist();
  }

  @Test
  void existingTargetsAreFailuresExceptForDirectoriesAndCreatedFiles() throws Exception {
    Files.createFile(root.resolve("f"));
    try (ApplierHarness h = new ApplierHarness(root)) {
      h.submit(new FileChange.CreateFile("f", false));
      long failing = h.submit(new FileChange.MakeDirectory("f"));
      assertThat(h.awaitFailure().seq()).isEqualTo(failing);
    }
    try (ApplierHarness h = new ApplierHarness(root)) {
      Files.createFile(root.resolve("g"));
      long failing = h.submit(new FileChange.Move("f", "g", false, false));
      assertThat(h.awaitFailure().seq()).isEqualTo(failing);
    }
  }

  @Test
  void aFaultFromTheHookIsAnApplyFailure() throws Exception {
    ApplyFaults diskFull =
        new ApplyFaults() {
          @Override
          public void beforeApply(long seq, FileChange change) throws IOException {
            if (change instanceof FileChange.Write) {
              throw new IOException("No space left on device");
            }
          }
        };
    try (ApplierHarness h =
        new ApplierHarness(root, ChangeApplier.Options.defaults(), diskFull, 1)) {
      h.submit(new FileChange.CreateFile("f", false));
      long failing = h.submit(write("f", 0, "x"));
      ApplierHarness.Failure failure = h.awaitFailure();
      assertThat(failure.seq()).isEqualTo(failing);
      assertThat(failure.cause()).hasMessage("No space left on device");
      h.assertReleasedOnce(1, failing);
    }
    assertThat(Files.size(root.resolve("f"))).isZero();
  }

  // ------------------------------------------------------------------ protocol

  @Test
  void refusesAGapARepeatAndANonPositiveSeq() throws Exception {
    try (ApplierHarness h = new ApplierHarness(root)) {
      AtomicInteger released = new AtomicInteger();
      assertThatThrownBy(
              () -> h.applier.submit(0, new FileChange.CreateFile("f", false), released::incrementAndGet))
          .isInstanceOf(OutOfSequenceException.class);
      h.applier.submit(5, new FileChange.CreateFile("f", false), h.releaseFor(5));
      assertThatThrownBy(
              () -> h.applier.submit(7, new FileChange.CreateFile("g", false), released::incrementAndGet))
          .isInstanceOf(OutOfSequenceException.class)
          .hasMessageContaining("gap before seq 7: expected 6");
      assertThatThrownBy(
              () -> h.applier.submit(5, new FileChange.CreateFile("g", false), released::incrementAndGet))
          .isInstanceOf(OutOfSequenceException.class)
          .hasMessageContaining("repeated seq 5");
      assertThat(released).hasValue(3);
      h.applier.submit(6, new FileChange.CreateFile("g", false), h.releaseFor(6));
      h.awaitApplied();
      assertThat(h.applier.appliedSeq()).isEqualTo(6);
      assertThat(root.resolve("g")).exists();
    }
  }

  // ------------------------------------------------------------------ back-pressure

  @Test
  void submitBlocksWhileTooManyChangesAreQueued() throws Exception {
    CountDownLatch unblock = new CountDownLatch(1);
    ChangeApplier.Options tiny = ChangeApplier.Options.defaults().withMaxQueuedChanges(3);
    try (ApplierHarness h = new ApplierHarness(root, tiny, blockOn("slow", unblock), 1)) {
      h.submit(new FileChange.CreateFile("slow", false));
      h.submit(new FileChange.CreateFile("b", false));
      h.submit(new FileChange.CreateFile("c", false));
      assertBlocksUntil(unblock, () -> h.submit(new FileChange.CreateFile("d", false)));
      h.awaitApplied();
      assertThat(h.applier.appliedSeq()).isEqualTo(4);
      h.assertReleasedOnce(1, 4);
    }
  }

  @Test
  void submitBlocksWhileTooManyBytesAreQueued() throws Exception {
    CountDownLatch unblock = new CountDownLatch(1);
    ChangeApplier.Options tiny = ChangeApplier.Options.defaults().withMaxQueuedBytes(10);
    Files.createFile(root.resolve("slow"));
    try (ApplierHarness h = new ApplierHarness(root, tiny, blockOn("slow", unblock), 1)) {
      h.submit(write("slow", 0, "12345678"));
      assertBlocksUntil(unblock, () -> h.submit(write("other", 0, "abc")));
      h.awaitFailure(); // "other" does not exist: proves it got through once unblocked
    }
    try (ApplierHarness h = new ApplierHarness(root, tiny, ApplyFaults.NONE, 1)) {
      // A single write above the bound is still accepted when nothing else is queued.
      h.submit(write("slow", 0, "a much longer text than ten bytes"));
      h.awaitApplied();
    }
  }

  // ------------------------------------------------------------------ durability

  @Test
  void forcesOfOneFileQueuedDuringItsFsyncShareOneMoreFsync() throws Exception {
    CountDownLatch firstSyncHeld = new CountDownLatch(1);
    CountDownLatch unblock = new CountDownLatch(1);
    Map<Path, AtomicInteger> syncs = new ConcurrentHashMap<>();
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeSync(Path path) throws IOException {
            if (syncs.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet() == 1
                && path.getFileName().toString().equals("f")) {
              firstSyncHeld.countDown();
              awaitLatch(unblock);
            }
          }
        };
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 1)) {
      h.submit(new FileChange.CreateFile("f", false));
      h.submit(write("f", 0, "data"));
      h.submit(new FileChange.Force("f", false));
      assertThat(firstSyncHeld.await(10, TimeUnit.SECONDS)).as("first fsync started").isTrue();
      // writers that force the same file while its fsync runs: one more fsync serves them all
      for (int i = 0; i < 5; i++) {
        h.submit(new FileChange.Force("f", i % 2 == 0));
      }
      long groupsBefore = h.applier.forceGroups();
      unblock.countDown();
      h.awaitApplied();

      assertThat(syncs.get(root.toRealPath().resolve("f"))).as("fsyncs of f").hasValue(2);
      assertThat(h.applier.forceGroups() - groupsBefore).as("the queued forces ran as one group").isEqualTo(1);
    }
  }

  @Test
  void forcesOfDifferentFilesDoNotWaitForEachOthersFsync() throws Exception {
    CountDownLatch unblock = new CountDownLatch(1);
    List<String> synced = new java.util.concurrent.CopyOnWriteArrayList<>();
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeSync(Path path) throws IOException {
            String name = path.getFileName() == null ? "" : path.getFileName().toString();
            synced.add(name);
            if (name.equals("slow")) {
              awaitLatch(unblock);
            }
          }
        };
    int others = 8;
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 1)) {
      h.submit(new FileChange.CreateFile("slow", false));
      for (int i = 0; i < others; i++) {
        h.submit(new FileChange.CreateFile("g" + i, false));
      }
      long slowForce = h.submit(new FileChange.Force("slow", false));
      for (int i = 0; i < others; i++) {
        h.submit(new FileChange.Force("g" + i, false));
      }
      // the files in other lanes are fsynced while the slow fsync still runs; acknowledgements
      // stay cumulative, so nothing after the slow Force counts as applied before it
      await().atMost(Duration.ofSeconds(10)).until(() -> synced.stream().anyMatch(n -> n.startsWith("g")));
      assertThat(h.applier.appliedSeq()).isLessThan(slowForce);
      unblock.countDown();
      h.awaitApplied();
      assertThat(synced).contains("slow", "g0", "g" + (others - 1));
    }
  }

  @Test
  void aForceOfTheRootWaitsForEveryEarlierChangeAndSyncsEachDirectoryOnce() throws Exception {
    CountDownLatch unblock = new CountDownLatch(1);
    Map<Path, AtomicInteger> syncs = new ConcurrentHashMap<>();
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeApply(long seq, FileChange change) throws IOException {
            blockOn("slow", unblock).beforeApply(seq, change);
          }

          @Override
          public void beforeSync(Path path) {
            syncs.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet();
          }
        };
    int files = 6;
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 1)) {
      for (int i = 0; i < files; i++) {
        h.submit(new FileChange.CreateFile("f" + i, false));
      }
      h.submit(new FileChange.CreateFile("slow", false));
      long last = h.submit(new FileChange.Force("", false));
      assertThat(h.applier.receivedSeq()).isEqualTo(last);
      await().during(Duration.ofMillis(200)).atMost(Duration.ofSeconds(5))
          .until(() -> !syncs.containsKey(root.toRealPath()));
      unblock.countDown();
      h.awaitApplied();

      if (directoriesSync()) {
        // the root: forced explicitly and dirty from the creations, synced once, after "slow"
        assertThat(syncs.get(root.toRealPath())).hasValue(1);
        assertThat(h.applier.fsyncs()).isEqualTo(1);
      } else {
        assertThat(syncs).isEmpty();
      }
    }
  }

  @Test
  void aBarrierOfOrderOnlyWaitsForEveryEarlierChangeAndMakesNothingDurable() throws Exception {
    CountDownLatch unblock = new CountDownLatch(1);
    Map<Path, AtomicInteger> syncs = new ConcurrentHashMap<>();
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeApply(long seq, FileChange change) throws IOException {
            blockOn("slow", unblock).beforeApply(seq, change);
          }

          @Override
          public void beforeSync(Path path) {
            syncs.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet();
          }
        };
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 1)) {
      for (int i = 0; i < 4; i++) {
        h.submit(new FileChange.CreateFile("f" + i, false));
      }
      h.submit(new FileChange.CreateFile("slow", false));
      long barrier = h.submit(FileChange.Force.barrier());
      await().during(Duration.ofMillis(200)).atMost(Duration.ofSeconds(5))
          .until(() -> h.applier.appliedSeq() < barrier);
      unblock.countDown();
      h.awaitApplied();

      assertThat(h.applier.appliedSeq()).isEqualTo(barrier);
      assertThat(syncs).as("fsyncs for a barrier of order only").isEmpty();
      assertThat(h.applier.fsyncs()).isZero();
    }
  }

  @Test
  void whileAResyncRunsIntoThisCopyAForceWaitsForNoFsyncAndAfterItsEndItDoes() throws Exception {
    assumeFalse(ReplicaSyncState.BOOT_ID.isEmpty(), "no boot id here: forces sync during a resync too");
    Map<Path, AtomicInteger> syncs = new ConcurrentHashMap<>();
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeSync(Path path) {
            syncs.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet();
          }
        };
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 2)) {
      h.applier.resyncTarget(true);
      h.submit(new FileChange.MakeDirectory("d"));
      h.submit(new FileChange.CreateFile("d/f", false));
      h.submit(write("d/f", 0, "during the resync"));
      h.submit(new FileChange.Force("d/f", true));
      h.submit(new FileChange.Force("d", true));
      h.awaitApplied();
      assertThat(syncs).as("fsyncs while the copy is a resync target").isEmpty();
      assertThat(h.applier.fsyncs()).isZero();

      h.applier.resyncTarget(false); // the resync's end (then the file system is flushed)
      h.submit(write("d/f", 0, "after the resync"));
      h.submit(new FileChange.Force("d/f", false));
      h.awaitApplied();
      assertThat(syncs).as("fsyncs once the copy is consistent").containsKey(root.toRealPath().resolve("d/f"));
    }
  }

  private static void awaitLatch(CountDownLatch latch) throws IOException {
    try {
      if (!latch.await(30, TimeUnit.SECONDS)) {
        throw new IOException("test latch never released");
      }
    } catch (InterruptedException e) {
      throw new InterruptedIOException("interrupted in the fault hook");
    }
  }

  @Test
  void aForceMakesNamespaceDirtyDirectoriesDurable() throws Exception {
    List<Path> synced = new java.util.concurrent.CopyOnWriteArrayList<>();
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeSync(Path path) {
            synced.add(path);
          }
        };
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 1)) {
      h.submit(new FileChange.MakeDirectory("a"));
      h.submit(new FileChange.MakeDirectory("a/b"));
      h.submit(new FileChange.CreateFile("a/b/f", false));
      h.submit(new FileChange.Force("a/b/f", false));
      h.awaitApplied();
      h.submit(new FileChange.Force("a/b/f", false));
      h.awaitApplied();
    }
    Path realRoot = root.toRealPath();
    Path file = realRoot.resolve("a/b/f");
    if (directoriesSync()) {
      assertThat(synced.subList(0, 1)).containsExactly(file);
      assertThat(synced.subList(1, 4))
          .containsExactlyInAnyOrder(realRoot, realRoot.resolve("a"), realRoot.resolve("a/b"));
      assertThat(synced.subList(4, synced.size())).as("clean after the first Force").containsExactly(file);
    } else {
      assertThat(synced).containsExactly(file, file);
    }
  }

  @Test
  void aFailedFsyncIsAnApplyFailure() throws Exception {
    ApplyFaults faults =
        new ApplyFaults() {
          @Override
          public void beforeSync(Path path) throws IOException {
            throw new IOException("Input/output error");
          }
        };
    try (ApplierHarness h = new ApplierHarness(root, ChangeApplier.Options.defaults(), faults, 1)) {
      h.submit(new FileChange.CreateFile("f", false));
      long force = h.submit(new FileChange.Force("f", true));
      assertThat(h.awaitFailure().seq()).isEqualTo(force);
      assertThat(h.applier.appliedSeq()).isEqualTo(force - 1);
    }
  }

  // ------------------------------------------------------------------ channels and close

  @Test
  void moveAndDeleteCloseTheCachedChannelsOfWhatTheyTouch() throws Exception {
    try (ApplierHarness h = new ApplierHarness(root)) {
      h.submit(new FileChange.MakeDirectory("dir"));
      h.submit(new FileChange.CreateFile("dir/a", false));
      h.submit(new FileChange.CreateFile("dir/b", false));
      h.submit(new FileChange.CreateFile("c", false));
      h.submit(new FileChange.CreateFile("d", false));
      h.awaitApplied();
      assertThat(h.applier.cachedChannels()).isEqualTo(4);
      h.submit(new FileChange.Move("dir", "renamed", false, false));
      h.awaitApplied();
      assertThat(h.applier.cachedChannels()).isEqualTo(2);
      h.submit(new FileChange.Delete("c"));
      h.submit(new FileChange.Move("d", "c", false, false));
      h.awaitApplied();
      assertThat(h.applier.cachedChannels()).isZero();
      // Writes after the rename go to the new name, not to a stale channel.
      h.submit(write("renamed/a", 0, "A"));
      h.submit(write("c", 0, "C"));
      h.awaitApplied();
      assertThat(h.failures).isEmpty();
    }
    assertThat(text(root.resolve("renamed/a"))).isEqualTo("A");
    assertThat(text(root.resolve("c"))).isEqualTo("C");
    assertThat(root.resolve("d")).doesNotExist();
  }

  @Test
  void channelCacheStaysBounded() throws Exception {
    ChangeApplier.Options small =
        ChangeApplier.Options.defaults().withApplyThreads(2).withChannelCacheSize(4);
    try (ApplierHarness h = new ApplierHarness(root, small, ApplyFaults.NONE, 1)) {
      for (int i = 0; i < 50; i++) {
        h.submit(new FileChange.CreateFile("f" + i, false));
        h.submit(write("f" + i, 0, "v" + i));
      }
      h.awaitApplied();
      assertThat(h.applier.cachedChannels()).isLessThanOrEqualTo(4);
    }
    assertThat(text(root.resolve("f49"))).isEqualTo("v49");
  }

  @Test
  void closeReleasesQueuedPayloadsAndIsIdempotent() throws Exception {
    CountDownLatch unblock = new CountDownLatch(1);
    ChangeApplier.Options quickClose =
        ChangeApplier.Options.defaults().withCloseTimeout(Duration.ofMillis(200));
    ApplierHarness h = new ApplierHarness(root, quickClose, blockOn("slow", unblock), 1);
    long last = 0;
    try {
      h.submit(new FileChange.CreateFile("slow", false));
      for (int i = 0; i < 20; i++) {
        last = h.submit(write("slow", i, "x"));
        h.submit(new FileChange.MakeDirectory("dir" + i));
      }
      last = h.nextSeq() - 1;
    } finally {
      h.close();
      h.close();
    }
    h.assertReleasedOnce(1, last);
    assertThat(h.failures).as("close is not a failure").isEmpty();
    assertThatThrownBy(() -> h.submit(new FileChange.CreateFile("late", false)))
        .hasMessageContaining("closed");
    h.assertReleasedOnce(1, last + 1);
    unblock.countDown();
  }

  // ------------------------------------------------------------------ helpers

  private void assertRefused(FileChange hostile, FileChange... setup) throws Exception {
    try (ApplierHarness h = new ApplierHarness(root)) {
      for (FileChange change : setup) {
        h.submit(change);
      }
      long seq = h.submit(hostile);
      ApplierHarness.Failure failure = h.awaitFailure();
      assertThat(failure.seq()).as("refused %s", hostile).isEqualTo(seq);
      assertThat(failure.cause()).as("refused %s", hostile).isInstanceOf(PathRefusedException.class);
      h.assertReleasedOnce(1, seq);
    }
    for (FileChange change : setup) {
      Files.deleteIfExists(root.resolve(change.path()));
    }
  }

  private static FileChange link(String path, String target) {
    return new FileChange.CreateSymbolicLink(path, target);
  }

  /** A fault hook that holds the thread applying a change to {@code path} until released. */
  static ApplyFaults blockOn(String path, CountDownLatch unblock) {
    return new ApplyFaults() {
      @Override
      public void beforeApply(long seq, FileChange change) throws IOException {
        if (change.path().equals(path)) {
          try {
            if (!unblock.await(30, TimeUnit.SECONDS)) {
              throw new IOException("test latch never released");
            }
          } catch (InterruptedException e) {
            throw new InterruptedIOException("interrupted in the fault hook");
          }
        }
      }
    };
  }

  interface Submission {
    void run() throws Exception;
  }

  /** Runs {@code submission} on a thread, checks it stays blocked, releases, checks it returns. */
  private static void assertBlocksUntil(CountDownLatch unblock, Submission submission)
      throws Exception {
    AtomicReference<Throwable> error = new AtomicReference<>();
    CountDownLatch returned = new CountDownLatch(1);
    Thread submitter =
        new Thread(
            () -> {
              try {
                submission.run();
              } catch (Throwable t) {
                error.set(t);
              } finally {
                returned.countDown();
              }
            },
            "test-submitter");
    submitter.start();
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> submitter.getState() == Thread.State.WAITING);
    // Still blocked for a while: it waits on the budget, not on something passing.
    await()
        .during(Duration.ofMillis(300))
        .atMost(Duration.ofSeconds(5))
        .until(() -> returned.getCount() == 1);
    unblock.countDown();
    assertThat(returned.await(10, TimeUnit.SECONDS)).as("submit returned after the release").isTrue();
    assertThat(error.get()).isNull();
  }

  private static String ownerOf(Path path) throws IOException {
    return Files.getOwner(path).getName();
  }

  private static String groupOf(Path path) throws IOException {
    return Files.readAttributes(path, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
        .group()
        .getName();
  }

  static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  static String text(Path path) throws IOException {
    return new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
  }
}
