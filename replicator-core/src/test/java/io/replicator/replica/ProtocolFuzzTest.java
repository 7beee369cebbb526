package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replicator.ReplicaServer;
import io.replicator.ReplicatedFileSystem;
import io.replicator.ReplicationMode;
import io.replicator.Replicator;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.change.MalformedChangeException;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.testing.FrameMutator;
import io.replicator.testing.LogCapture;
import io.replicator.testing.MemoryGauge;
import io.replicator.transport.EmbeddedPeers;
import io.replicator.transport.Frame;
import io.replicator.transport.PeerAcceptor;
import io.replicator.transport.PeerConnection;
import io.replicator.transport.PeerListener;
import io.replicator.transport.TransportSettings;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutated and random frames against the replica: no crash, nothing written outside the root,
 * memory bounded, one log line per rejected connection, and a valid primary served afterwards.
 * Seeded; the seed is printed. Short by default; {@code -Dreplicator.fuzz.inputs=1000000} runs the
 * long form (that many inputs through the real pipeline in-process, a five-hundredth of them, at
 * least 300, over real sockets).
 */
@Timeout(value = 30, unit = TimeUnit.MINUTES)
class ProtocolFuzzTest {
  private static final long INPUTS = Long.getLong("replicator.fuzz.inputs", 150_000);
  private static final long SOCKET_INPUTS = Math.max(300, INPUTS / 500);
  private static long seed;

  @TempDir Path base;

  @BeforeAll
  static void pickSeed() {
    seed = Long.getLong("replicator.fuzz.seed", new Random().nextLong());
    System.out.printf("protocol fuzz: seed %d, %d inputs in-process, %d over sockets "
        + "(rerun with -Dreplicator.fuzz.seed=%d -Dreplicator.fuzz.inputs=%d)%n",
        seed, INPUTS, SOCKET_INPUTS, seed, INPUTS);
  }

  /**
   * The replica's own checks on each change (the same ones ReplicaNode runs before applying),
   * without applying: decode, validate, confine every path. Anything refused closes the connection.
   */
  private static final class ValidatingReplica implements PeerListener {
    final PathGuard guard;
    long rejections;
    long validChanges;
    String escape;

    ValidatingReplica(PathGuard guard) {
      this.guard = guard;
    }

    @Override
    public void onFrame(PeerConnection connection, Frame frame) {
      try {
        Envelope h = frame.header();
        if (!h.hasChange()) {
          reject(connection, Goodbye.Code.PROTOCOL_ERROR, "a primary does not send " + h.getBodyCase());
          return;
        }
        FileChange change = ChangeProtos.fromProto(h.getChange(), frame.payload().nioBuffer());
        for (String path : paths(change)) {
          Path resolved = guard.resolveFollowingLinks(path);
          if (!resolved.startsWith(guard.root())) {
            escape = path + " -> " + resolved;
          }
        }
        validChanges++;
      } catch (MalformedChangeException | PathRefusedException e) {
        reject(connection, Goodbye.Code.BAD_PATH, e.getMessage());
      } catch (IOException e) {
        reject(connection, Goodbye.Code.APPLY_FAILED, e.toString());
      } finally {
        frame.release();
      }
    }

    private void reject(PeerConnection c, Goodbye.Code code, String why) {
      rejections++;
      c.close(code, why);
    }

    @Override
    public void onClosed(PeerConnection connection, String reason) {}
  }

  static List<String> paths(FileChange change) {
    if (change instanceof FileChange.Move m) {
      return List.of(m.source(), m.target());
    }
    if (change instanceof FileChange.Copy c) {
      return List.of(c.source(), c.target());
    }
    if (change instanceof FileChange.CreateLink l) {
      return List.of(l.path(), l.existing());
    }
    return List.of(change.path());
  }

  @Test
  void mutatedFramesThroughTheRealPipelineNeverEscapeItNorTheRoot() throws Exception {
    Path root = Files.createDirectories(base.resolve("root"));
    Files.createDirectories(root.resolve("dir"));
    Files.createSymbolicLink(root.resolve("door"), Path.of("../outside"));
    Files.createDirectories(base.resolve("outside"));
    PathGuard guard = new PathGuard(root);
    TransportSettings settings = TransportSettings.defaults("replicator", "fuzz-replica");
    FrameMutator mutator = new FrameMutator(seed, "replicator");
    Random split = new Random(seed ^ 0x5DEECE66DL);
    long accepted = 0;
    long rejectedConnections = 0;
    long heapBefore = MemoryGauge.heapAfterGc();
    // Direct memory is the whole JVM's: tests run before this one in the same fork leave pooled
    // buffers behind, so what counts is how far the fuzzing raises it.
    long directBefore = MemoryGauge.direct();
    long peakDirect = directBefore;
    long t0 = System.nanoTime();
    try (LogCapture logs = LogCapture.warningsOnly()) {
      for (long i = 0; i < INPUTS; i++) {
        byte[] input = mutator.next();
        ValidatingReplica replica = new ValidatingReplica(guard);
        long[] acceptedHere = {0};
        PeerAcceptor acceptor = candidate -> {
          acceptedHere[0]++;
          return PeerAcceptor.Decision.accept(replica, null);
        };
        long warningsBefore = logs.warningCountOfThisThread();
        EmbeddedChannel ch = EmbeddedPeers.server(settings, acceptor);
        ByteBuf[] pieces = fragments(input, split);
        try {
          for (ByteBuf piece : pieces) {
            if (!ch.isOpen()) {
              piece.release();
              continue;
            }
            ch.writeInbound(piece);
            ch.runPendingTasks();
          }
          ch.checkException();
        } catch (Throwable t) {
          fail(failure(i, input, "an exception escaped the pipeline: " + t), t);
        } finally {
          ch.finishAndReleaseAll();
        }
        for (ByteBuf piece : pieces) {
          // an empty piece is the shared empty buffer, which is never freed
          if (piece.capacity() > 0 && piece.refCnt() != 0) {
            fail(failure(i, input, "input buffer not released (refCnt " + piece.refCnt() + ")"));
          }
        }
        if (replica.escape != null) {
          fail(failure(i, input, "a path resolved outside the root: " + replica.escape));
        }
        long lines = logs.warningCountOfThisThread() - warningsBefore + replica.rejections;
        if (lines > 1) {
          fail(failure(i, input, lines + " rejections logged for one connection"));
        }
        accepted += acceptedHere[0];
        rejectedConnections += lines;
        if ((i & 0xFFFF) == 0) {
          peakDirect = Math.max(peakDirect, MemoryGauge.direct());
        }
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    long heapAfter = MemoryGauge.heapAfterGc();
    System.out.printf("protocol fuzz in-process: %d inputs in %.1f s (%.0f inputs/s), %d handshakes accepted, "
            + "%d rejections logged, heap %s -> %s, direct %s, peak %s%n",
        INPUTS, seconds, INPUTS / seconds, accepted, rejectedConnections, MemoryGauge.mib(heapBefore),
        MemoryGauge.mib(heapAfter), MemoryGauge.mib(directBefore), MemoryGauge.mib(peakDirect));
    assertThat(heapAfter - heapBefore).as("heap growth over the run").isLessThan(64L << 20);
    assertThat(peakDirect - directBefore).as("direct memory growth").isLessThan(64L << 20);
    assertTreeEmpty(base.resolve("outside"));
  }

  private static ByteBuf[] fragments(byte[] input, Random split) {
    int n = input.length < 2 || split.nextBoolean() ? 1 : 2 + split.nextInt(3);
    ByteBuf[] out = new ByteBuf[n];
    int start = 0;
    for (int k = 0; k < n; k++) {
      int end = k == n - 1 ? input.length : start + split.nextInt(input.length - start + 1);
      out[k] = Unpooled.wrappedBuffer(input, start, end - start);
      start = end;
    }
    return out;
  }

  private static String failure(long index, byte[] input, String what) {
    String hex = HexFormat.of().formatHex(input, 0, Math.min(input.length, 512));
    return "seed " + seed + ", input " + index + ": " + what + "\ninput (" + input.length + " bytes): " + hex;
  }

  @Test
  void mutatedFramesOverSocketsLeaveTheReplicaServingAndTheSiblingUntouched() throws Exception {
    Path replicaRoot = base.resolve("replica");
    Path outside = Files.createDirectories(base.resolve("outside"));
    Files.writeString(outside.resolve("canary"), "untouched");
    Map<String, String> outsideBefore = snapshot(outside);
    ReplicaServer replica = startReplica(replicaRoot, false);
    FrameMutator mutator = new FrameMutator(seed, "replicator");
    long heapBefore = MemoryGauge.heapAfterGc();
    long directBefore = MemoryGauge.direct();
    long t0 = System.nanoTime();
    long warnings;
    try (LogCapture logs = LogCapture.warningsOnly()) {
      ReplicaNode node = (ReplicaNode) replica;
      for (long i = 0; i < SOCKET_INPUTS; i++) {
        byte[] input = mutator.next();
        try {
          sendAndAwaitClose(replica.localAddress(), input);
        } catch (AssertionError e) {
          throw new AssertionError(failure(i, input, e.getMessage()), e);
        }
        // mostly one connection at a time, so inputs reach the change checks rather than the
        // refusal of a peer that reconnects faster than its sessions wind down; every tenth is a burst
        if (i % 10 != 0) {
          org.awaitility.Awaitility.await().pollInterval(Duration.ofMillis(1)).atMost(Duration.ofSeconds(30))
              .until(() -> node.unfinishedSessions() == 0);
        }
        assertThat(node.unfinishedSessions()).as("sessions alive at once").isLessThanOrEqualTo(2);
      }
      warnings = logs.warningCount();
      assertThat(warnings).as("rejections are logged once per connection, not per byte: %s",
          logs.warnings().stream().limit(20).toList()).isLessThanOrEqualTo(SOCKET_INPUTS);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    long heapAfter = MemoryGauge.heapAfterGc();
    long directAfter = MemoryGauge.direct();
    System.out.printf("protocol fuzz over sockets: %d connections in %.1f s (%.0f/s), %d warnings logged, "
            + "heap %s -> %s, direct %s -> %s%n", SOCKET_INPUTS, seconds, SOCKET_INPUTS / seconds, warnings,
        MemoryGauge.mib(heapBefore), MemoryGauge.mib(heapAfter), MemoryGauge.mib(directBefore),
        MemoryGauge.mib(directAfter));

    // still answering: a handshake gets a reply (accepted, or refused with a reason)
    try (Socket s = new Socket()) {
      s.connect(replica.localAddress(), 5_000);
      s.setSoTimeout(10_000);
      s.getOutputStream().write(FrameMutator.frame(mutator.hello("after-fuzz"), new byte[0]));
      DataInputStream in = new DataInputStream(s.getInputStream());
      int length = in.readInt();
      byte[] frame = in.readNBytes(length);
      int headerLength = java.nio.ByteBuffer.wrap(frame).getInt();
      Envelope reply = Envelope.parseFrom(java.util.Arrays.copyOfRange(frame, 4, 4 + headerLength));
      assertThat(reply.hasHelloReply()).as("%s", reply).isTrue();
    }
    assertThat(snapshot(outside)).as("the sibling of the replica root").isEqualTo(outsideBefore);
    try (Stream<Path> s = Files.list(base)) {
      assertThat(s.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("replica", "outside");
    }
    assertThat(heapAfter - heapBefore).as("heap growth").isLessThan(64L << 20);
    assertThat(directAfter - directBefore).as("direct memory growth").isLessThan(64L << 20);

    // the fuzz may have left any generation ids behind: discard its data, and a real primary is served
    replica.close();
    replica = startReplica(replicaRoot, true);
    try (ReplicatedFileSystem fs = Replicator.primary(base.resolve("primary"))
        .peer(new InetSocketAddress("127.0.0.1", replica.localAddress().getPort()))
        .nodeId("real-primary").heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500)).open()) {
      Files.writeString(fs.getPath("/after-fuzz"), "served");
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> fs.status().inSync());
      assertThat(Files.readString(replicaRoot.resolve("after-fuzz"))).isEqualTo("served");
    } finally {
      replica.close();
    }
    assertThat(snapshot(outside)).isEqualTo(outsideBefore);
  }

  private static ReplicaServer startReplica(Path root, boolean discardLocal) throws IOException {
    Replicator.ReplicaBuilder b = Replicator.replica(root).listen(new InetSocketAddress("127.0.0.1", 0))
        .nodeId("fuzz-replica").heartbeat(Duration.ofMillis(100), Duration.ofMillis(1500));
    return (discardLocal ? b.discardLocalChanges() : b).start();
  }

  /** Sends the input, half-closes, and reads until the replica closes; it must within 10 s. */
  private static void sendAndAwaitClose(InetSocketAddress address, byte[] input) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(address, 5_000);
      s.setSoTimeout(10_000);
      try {
        s.getOutputStream().write(input);
        s.shutdownOutput();
      } catch (SocketException closedAlready) {
        // the replica refused before reading everything: fine
      }
      InputStream in = s.getInputStream();
      byte[] sink = new byte[8192];
      try {
        while (in.read(sink) >= 0) {
          // drain acks, refusals and goodbyes
        }
      } catch (SocketTimeoutException e) {
        throw new AssertionError("the replica kept the connection open 10 s after the peer finished");
      } catch (SocketException | EOFException reset) {
        // closed
      }
    }
  }

  private static Map<String, String> snapshot(Path dir) throws IOException {
    Map<String, String> files = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        files.put(dir.relativize(p).toString(), Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)
            ? Files.readString(p) : Files.isSymbolicLink(p) ? "link" : "dir");
      }
    }
    return files;
  }

  private static void assertTreeEmpty(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      assertThat(s).as("files under %s", dir).isEmpty();
    }
  }
}
