package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.replicator.testing.ReplicaPair;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** A primary and a replica in one JVM over loopback: what the application writes is what the replica holds. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TwoNodeReplicationTest {
  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void close() throws IOException {
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void acknowledgedSyncWriteIsOnTheReplicaWhenItReturns() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Random rnd = new Random(7);
    try (FileChannel ch = FileChannel.open(fs.getPath("/acked.dat"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int i = 0; i < 500; i++) {
        byte[] data = new byte[1 + rnd.nextInt(8192)];
        rnd.nextBytes(data);
        long pos = rnd.nextInt(1 << 20);
        ch.write(ByteBuffer.wrap(data), pos);
        // no waiting of any kind: the bytes must be there now
        assertThat(readReplica("acked.dat", pos, data.length)).as("write %d at %d", i, pos).isEqualTo(data);
      }
    }
  }

  @Test
  void everyWayOfChangingFilesIsReplicated() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    Path dir = Files.createDirectories(fs.getPath("/a/b"));
    Files.write(dir.resolve("files-write.txt"), "hello".getBytes());
    Files.createFile(dir.resolve("empty-create"));
    Path temp = Files.createTempFile(dir, "tmp", ".x");
    try (OutputStream out = Files.newOutputStream(dir.resolve("stream.txt"))) {
      out.write("streamed".getBytes());
    }
    try (SeekableByteChannel ch = Files.newByteChannel(dir.resolve("byte-channel"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      ch.position(10);
      ch.write(ByteBuffer.wrap("at ten".getBytes()));
    }
    try (FileChannel ch = FileChannel.open(dir.resolve("channel"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      ch.write(new ByteBuffer[] {ByteBuffer.wrap("gath".getBytes()), ByteBuffer.wrap("ered".getBytes())});
      ch.write(ByteBuffer.wrap("positional".getBytes()), 100);
      try (FileChannel src = FileChannel.open(dir.resolve("files-write.txt"), StandardOpenOption.READ)) {
        ch.transferFrom(src, 200, 5);
      }
      ch.truncate(150);
      ch.force(true);
    }
    Files.write(dir.resolve("files-write.txt"), " appended".getBytes(), StandardOpenOption.APPEND);
    try (AsynchronousFileChannel ach = AsynchronousFileChannel.open(dir.resolve("async"), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE)) {
      ach.write(ByteBuffer.wrap("async bytes".getBytes()), 3).get(10, TimeUnit.SECONDS);
      ach.force(true);
    }
    Files.copy(dir.resolve("stream.txt"), dir.resolve("copy.txt"));
    Files.write(dir.resolve("victim"), "old".getBytes());
    Files.move(dir.resolve("copy.txt"), dir.resolve("victim"), StandardCopyOption.REPLACE_EXISTING);
    Files.move(temp, dir.resolve("atomically-moved"), StandardCopyOption.ATOMIC_MOVE);
    Files.createSymbolicLink(fs.getPath("/link-to-b"), fs.getPath("a/b"));
    Files.createDirectory(fs.getPath("/gone"));
    Files.delete(fs.getPath("/gone"));
    Files.setLastModifiedTime(dir.resolve("stream.txt"), FileTime.from(Instant.parse("2020-01-02T03:04:05Z")));
    Files.setPosixFilePermissions(dir.resolve("channel"), PosixFilePermissions.fromString("rw-r-----"));
    Files.move(fs.getPath("/a/b"), fs.getPath("/a/renamed-dir"));

    assertThat(pair.differences()).as(pair.describe()).isEmpty();
    Path replicaStream = pair.replicaRoot.resolve("a/renamed-dir/stream.txt");
    assertThat(Files.getLastModifiedTime(replicaStream).toInstant()).isEqualTo(Instant.parse("2020-01-02T03:04:05Z"));
    assertThat(Files.readSymbolicLink(pair.replicaRoot.resolve("link-to-b")).toString()).isEqualTo("a/b");
    assertThat(Files.exists(pair.replicaRoot.resolve("link-to-b"), LinkOption.NOFOLLOW_LINKS)).isTrue();
    assertThat(fs.status().inSync()).as(pair.describe()).isTrue();
  }

  @ParameterizedTest
  @EnumSource(ReplicationMode.class)
  void seededRandomConcurrentWorkloadEndsByteIdentical(ReplicationMode mode) throws Exception {
    long seed = System.nanoTime();
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(mode);
    RandomWorkload.run(fs, 6, 300, seed);
    fs.close();
    assertThat(pair.differences()).as("seed %d, mode %s\n%s", seed, mode, pair.describe()).isEmpty();
  }

  @Test
  void replicaUriSchemeOpensAReplicatedFileSystem() throws Exception {
    pair = ReplicaPair.start(base, false);
    Files.createDirectories(pair.primaryRoot);
    java.net.URI uri = java.net.URI.create("replica://" + pair.primaryRoot.toUri().getPath());
    int port = pair.replica().localAddress().getPort();
    try (java.nio.file.FileSystem fs = java.nio.file.FileSystems.newFileSystem(uri,
        java.util.Map.of("peer", "127.0.0.1:" + port, "mode", "sync", "node", "uri-primary"))) {
      assertThat(fs).isInstanceOf(ReplicatedFileSystem.class);
      Files.write(fs.getPath("/via-uri.txt"), "by uri".getBytes());
      assertThat(Files.readString(pair.replicaRoot.resolve("via-uri.txt"))).isEqualTo("by uri");
      assertThat(java.nio.file.FileSystems.getFileSystem(uri)).isSameAs(fs);
    }
    assertThatBadEnvironmentIsRefused(uri, port);
  }

  private static void assertThatBadEnvironmentIsRefused(java.net.URI uri, int port) {
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> java.nio.file.FileSystems.newFileSystem(uri,
            java.util.Map.of("peer", "127.0.0.1:" + port, "mode", "FAST")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("mode");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> java.nio.file.FileSystems.newFileSystem(uri,
            java.util.Map.of("peer", "127.0.0.1:99999")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("port");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> java.nio.file.FileSystems.newFileSystem(uri,
            java.util.Map.of("peer", "127.0.0.1:" + port, "colour", "blue")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("colour");
  }

  @Test
  void forceReturnsOnlyAfterTheReplicaAppliedIt() throws Exception {
    pair = ReplicaPair.start(base, false);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.ASYNC);
    try (FileChannel ch = FileChannel.open(fs.getPath("/f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 50; i++) {
          ch.write(ByteBuffer.wrap(new byte[4096]), (long) i * 4096);
        }
        ch.force(false);
        long sent = fs.status().lastSequence();
        assertThat(pair.replica().status().appliedSequence()).as("round %d", round).isGreaterThanOrEqualTo(sent);
      }
    }
  }

  @Test
  void asyncWindowBoundsTheLagAndWritersWait() throws Exception {
    pair = ReplicaPair.start(base, true);
    pair.proxy().delay(20);
    long window = 1 << 20;
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.ASYNC, b -> b.window(window, 100_000));
    long maxInFlight = 0;
    byte[] chunk = new byte[64 * 1024];
    try (FileChannel ch = FileChannel.open(fs.getPath("/lag"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int i = 0; i < 64; i++) {
        ch.write(ByteBuffer.wrap(chunk));
        maxInFlight = Math.max(maxInFlight, fs.status().inFlightBytes());
      }
    }
    assertThat(maxInFlight).as("in-flight bytes never exceed the window").isLessThanOrEqualTo(window);
    assertThat(maxInFlight).as("the window was actually used").isGreaterThan(0);
    fs.close();
    assertThat(pair.differences()).isEmpty();
  }

  @Test
  void manySyncWritesAreInFlightAtOnce() throws Exception {
    pair = ReplicaPair.start(base, true);
    pair.proxy().delay(5);
    ReplicatedFileSystem fs = pair.openPrimary(ReplicationMode.SYNC);
    AtomicLong maxInFlight = new AtomicLong();
    AtomicBoolean running = new AtomicBoolean(true);
    Thread sampler = new Thread(() -> {
      while (running.get()) {
        maxInFlight.accumulateAndGet(fs.status().inFlightChanges(), Math::max);
        Thread.onSpinWait();
      }
    });
    sampler.start();
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < 16; t++) {
        Path file = fs.getPath("/inflight-" + t);
        futures.add(pool.submit(() -> {
          try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            for (int i = 0; i < 30; i++) {
              ch.write(ByteBuffer.wrap(new byte[4096]), (long) i * 4096);
            }
          }
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get(60, TimeUnit.SECONDS);
      }
    } finally {
      running.set(false);
      sampler.join();
      pool.shutdownNow();
    }
    assertThat(maxInFlight.get()).as("writes from 16 threads overlap on the wire").isGreaterThan(1);
    assertThat(pair.differences()).isEmpty();
  }

  private byte[] readReplica(String relative, long pos, int length) throws IOException {
    try (FileChannel ch = FileChannel.open(pair.replicaRoot.resolve(relative), StandardOpenOption.READ)) {
      ByteBuffer b = ByteBuffer.allocate(length);
      while (b.hasRemaining() && ch.read(b, pos + b.position()) > 0) {
        // read until full or end of file
      }
      return Arrays.copyOf(b.array(), b.position());
    }
  }

  static void awaitConnected(ReplicatedFileSystem fs) {
    await().atMost(Duration.ofSeconds(20)).until(() -> fs.status().peerConnected());
  }
}
