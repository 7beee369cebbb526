package io.replicator.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A writer interrupted while waiting for the acknowledgement of its write gets {@link
 * ClosedByInterruptException}, its channel is closed, and the write was already submitted.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class InterruptTest {

  @TempDir Path tempDir;

  /** Acknowledges writes only when released; everything else at once. */
  static final class SlowAcknowledgements extends MirroringChangeSink {
    final CountDownLatch release = new CountDownLatch(1);

    SlowAcknowledgements(Path mirror) {
      super(mirror);
    }

    @Override
    protected Completion completion(FileChange change) {
      if (!(change instanceof FileChange.Write)) {
        return Completion.DONE;
      }
      return () -> {
        try {
          release.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new ClosedByInterruptException();
        }
      };
    }
  }

  /**
   * Repeats the interrupt so it sometimes lands before the wait begins: on JDK 17 the flag can be
   * set after {@code begin()} looked at it, and the result must still be a closed channel and
   * {@link ClosedByInterruptException}.
   */
  @RepeatedTest(40)
  void interruptRacingTheStartOfTheWait() throws Exception {
    interruptWhileAwaitingClosesTheChannel(FsKind.JIMFS);
  }

  @ParameterizedTest
  @EnumSource(FsKind.class)
  void interruptWhileAwaitingClosesTheChannel(FsKind kind) throws Exception {
    try (Fixture f = Fixture.open(kind, tempDir, SlowAcknowledgements::new)) {
      SlowAcknowledgements sink = (SlowAcknowledgements) f.sink;
      FileChannel channel =
          FileChannel.open(f.path("/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      AtomicReference<Throwable> thrown = new AtomicReference<>();
      AtomicReference<Boolean> interruptFlag = new AtomicReference<>();
      Thread writer =
          new Thread(
              () -> {
                try {
                  channel.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
                } catch (IOException e) {
                  thrown.set(e);
                }
                interruptFlag.set(Thread.currentThread().isInterrupted());
              });
      writer.start();
      await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(1))
          .until(() -> sink.changes().stream().anyMatch(c -> c instanceof FileChange.Write));
      writer.interrupt();
      writer.join(10_000);
      assertThat(writer.isAlive()).isFalse();
      assertThat(thrown.get()).isInstanceOf(ClosedByInterruptException.class);
      assertThat(interruptFlag.get()).isTrue();
      assertThat(channel.isOpen()).isFalse();
      assertThat(sink.changes())
          .containsExactly(
              new FileChange.CreateFile("f", true),
              new FileChange.Write("f", 0, ByteBuffer.wrap(new byte[] {1, 2, 3})));
      assertThat(Files.readAllBytes(f.data.resolve("f"))).containsExactly(1, 2, 3);
      sink.release.countDown();
      f.assertMirrored();
    }
  }
}
