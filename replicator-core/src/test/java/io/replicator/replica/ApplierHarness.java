package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Drives a {@link ChangeApplier} the way the network layer does: consecutive seqs, a release
 * callback per change, a listener that records what it is told. Always closed by the test.
 */
final class ApplierHarness implements AutoCloseable {

  record Failure(long seq, IOException cause) {}

  final ChangeApplier applier;
  final List<Long> appliedCalls = new CopyOnWriteArrayList<>();
  final List<Failure> failures = new CopyOnWriteArrayList<>();
  final AtomicLong lastApplied = new AtomicLong();
  private final Map<Long, AtomicInteger> releases = new ConcurrentHashMap<>();
  private long nextSeq;

  ApplierHarness(Path root, ChangeApplier.Options options, ApplyFaults faults, long firstSeq)
      throws IOException {
    this.nextSeq = firstSeq;
    this.applier =
        new ChangeApplier(
            root,
            new ChangeApplier.Listener() {
              @Override
              public void onApplied(long appliedSeq) {
                appliedCalls.add(appliedSeq);
                lastApplied.set(appliedSeq);
              }

              @Override
              public void onFailure(long seq, IOException cause) {
                failures.add(new Failure(seq, cause));
              }
            },
            options,
            faults);
  }

  ApplierHarness(Path root) throws IOException {
    this(root, ChangeApplier.Options.defaults(), ApplyFaults.NONE, 1);
  }

  /** Submits the next change and returns its seq. */
  long submit(FileChange change) throws IOException, InterruptedException {
    long seq = nextSeq++;
    applier.submit(seq, change, releaseFor(seq));
    return seq;
  }

  Runnable releaseFor(long seq) {
    return () -> releases.computeIfAbsent(seq, s -> new AtomicInteger()).incrementAndGet();
  }

  long nextSeq() {
    return nextSeq;
  }

  void awaitApplied() throws InterruptedException {
    assertThat(applier.awaitIdle(Duration.ofSeconds(20)))
        .as("applier idle; failures %s", failures)
        .isTrue();
  }

  Failure awaitFailure() {
    await().atMost(Duration.ofSeconds(10)).until(() -> !failures.isEmpty());
    return failures.get(0);
  }

  /** Every seq in [first, last] was released exactly once, and no other. */
  void assertReleasedOnce(long first, long last) {
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(() -> assertThat(releases.keySet()).hasSize((int) (last - first + 1)));
    for (long seq = first; seq <= last; seq++) {
      assertThat(releases.get(seq)).as("releases of seq %s", seq).isNotNull().hasValue(1);
    }
  }

  static FileChange.Write write(String path, long position, String text) {
    return new FileChange.Write(
        path, position, ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)).asReadOnlyBuffer());
  }

  @Override
  public void close() {
    applier.close();
  }
}
