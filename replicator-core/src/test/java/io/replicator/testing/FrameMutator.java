package io.replicator.testing;

import com.google.protobuf.ByteString;
import io.replicator.proto.Change;
import io.replicator.proto.Copy;
import io.replicator.proto.CreateFile;
import io.replicator.proto.CreateLink;
import io.replicator.proto.CreateSymbolicLink;
import io.replicator.proto.Delete;
import io.replicator.proto.Envelope;
import io.replicator.proto.Force;
import io.replicator.proto.GenerationIds;
import io.replicator.proto.Hello;
import io.replicator.proto.MakeDirectory;
import io.replicator.proto.ManifestRequest;
import io.replicator.proto.Move;
import io.replicator.proto.Ping;
import io.replicator.proto.SetPermissions;
import io.replicator.proto.SetTimes;
import io.replicator.proto.Truncate;
import io.replicator.proto.Write;
import io.replicator.transport.TransportSettings;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Seeded inputs for protocol fuzzing: valid recorded sessions (a Hello, then changes of every
 * kind) and mutations of them — flipped bits, interesting bytes, truncation, insertion, rewritten
 * length fields, random protobuf headers, hostile paths, spliced sessions and plain noise. The
 * same seed gives the same inputs.
 */
public final class FrameMutator {
  /** Paths a hostile primary might try; the replica must refuse or confine every one. */
  public static final List<String> HOSTILE_PATHS = List.of("../outside/pwned", "/etc/passwd", "a/../../outside/x",
      "..", ".", "", "a//b", "a/", "/", ".replicator/node-meta.0", ".REPLICATOR/x", "nul\0byte", "back\\slash",
      "door/pwned", "door", "a/./b", "x".repeat(300), "dir/" + "../".repeat(20) + "etc/shadow", "\uFEFF..",
      "%2e%2e/outside", "a/b/c/d/e/f/g/h/../../../../../../../../../outside");

  private final Random random;
  private final String cluster;
  private final List<byte[]> corpus = new ArrayList<>();

  public FrameMutator(long seed, String cluster) {
    this.random = new Random(seed);
    this.cluster = cluster;
    for (int i = 0; i < 8; i++) {
      corpus.add(session(i));
    }
  }

  /** A well-formed frame. */
  public static byte[] frame(Envelope header, byte[] payload) {
    byte[] h = header.toByteArray();
    return ByteBuffer.allocate(8 + h.length + payload.length)
        .putInt(4 + h.length + payload.length).putInt(h.length).put(h).put(payload).array();
  }

  /** A valid Hello of a primary named {@code nodeId}. */
  public Envelope hello(String nodeId) {
    return Envelope.newBuilder().setHello(Hello.newBuilder()
        .setProtocolVersion(TransportSettings.PROTOCOL_VERSION).setClusterName(cluster).setNodeId(nodeId).setIncarnation(ByteString.copyFromUtf8("fuzz"))).build();
  }

  /** A recorded, valid session: Hello then a run of changes (variant picks which). */
  public byte[] session(int variant) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(frame(hello("fuzz-primary"), new byte[0]));
    long seq = 1;
    List<Change.Builder> changes = new ArrayList<>();
    switch (variant % 8) {
      case 0 -> {
        changes.add(Change.newBuilder().setMakeDirectory(MakeDirectory.newBuilder().setPath("dir")));
        changes.add(Change.newBuilder().setWrite(Write.newBuilder().setPath("dir/file").setPosition(0)));
      }
      case 1 -> {
        changes.add(Change.newBuilder().setCreateFile(CreateFile.newBuilder().setPath("a").setTruncate(true)));
        changes.add(Change.newBuilder().setTruncate(Truncate.newBuilder().setPath("a").setSize(10)));
        changes.add(Change.newBuilder().setMove(Move.newBuilder().setSource("a").setTarget("b")));
      }
      case 2 -> {
        changes.add(Change.newBuilder().setCreateSymbolicLink(
            CreateSymbolicLink.newBuilder().setPath("link").setTarget("dir")));
        changes.add(Change.newBuilder().setWrite(Write.newBuilder().setPath("link/x").setPosition(5)));
      }
      case 3 -> {
        changes.add(Change.newBuilder().setCopy(Copy.newBuilder().setSource("a").setTarget("c")));
        changes.add(Change.newBuilder().setCreateLink(CreateLink.newBuilder().setPath("h").setExisting("c")));
        changes.add(Change.newBuilder().setDelete(Delete.newBuilder().setPath("c")));
      }
      case 4 -> {
        changes.add(Change.newBuilder().setSetTimes(SetTimes.newBuilder().setPath("a").setLastModifiedNanos(1L)));
        changes.add(Change.newBuilder().setSetPermissions(SetPermissions.newBuilder().setPath("a").setMode(0644)));
        changes.add(Change.newBuilder().setForce(Force.newBuilder().setPath("").setMetadata(true)));
      }
      case 5 -> changes.add(Change.newBuilder().setWrite(Write.newBuilder().setPath("big").setPosition(1 << 20)));
      case 6 -> {
        out.writeBytes(frame(Envelope.newBuilder().setPing(Ping.newBuilder().setSentNanos(7)).build(), new byte[0]));
        out.writeBytes(frame(Envelope.newBuilder().setManifestRequest(ManifestRequest.newBuilder()
            .setRequestId(1).addPaths("a").setBlockSize(4096)).build(), new byte[0]));
      }
      default -> changes.add(Change.newBuilder().setCreateSymbolicLink(
          CreateSymbolicLink.newBuilder().setPath("door").setTarget("../outside")));
    }
    for (Change.Builder c : changes) {
      Change change = c.setSeq(seq++).build();
      byte[] payload = change.hasWrite() ? "payload-bytes".getBytes(StandardCharsets.US_ASCII) : new byte[0];
      out.writeBytes(frame(Envelope.newBuilder().setChange(change).build(), payload));
    }
    return out.toByteArray();
  }

  /** The next fuzz input. */
  public byte[] next() {
    byte[] base = corpus.get(random.nextInt(corpus.size())).clone();
    return switch (random.nextInt(10)) {
      case 0 -> flipBits(base);
      case 1 -> interestingBytes(base);
      case 2 -> truncate(base);
      case 3 -> insert(base);
      case 4 -> rewriteLength(base);
      case 5 -> randomHeader();
      case 6 -> hostilePath();
      case 7 -> splice(base, corpus.get(random.nextInt(corpus.size())));
      case 8 -> noise();
      default -> flipBits(truncate(rewriteLength(base)));
    };
  }

  private byte[] flipBits(byte[] b) {
    if (b.length == 0) {
      return b;
    }
    for (int i = 1 + random.nextInt(8); i > 0; i--) {
      int at = random.nextInt(b.length);
      b[at] ^= (byte) (1 << random.nextInt(8));
    }
    return b;
  }

  private byte[] interestingBytes(byte[] b) {
    byte[] values = {0, (byte) 0xFF, 0x7F, (byte) 0x80, 1, 0x0A, 0x12, 0x1A};
    for (int i = 1 + random.nextInt(4); i > 0 && b.length > 0; i--) {
      b[random.nextInt(b.length)] = values[random.nextInt(values.length)];
    }
    return b;
  }

  private byte[] truncate(byte[] b) {
    return java.util.Arrays.copyOf(b, b.length == 0 ? 0 : random.nextInt(b.length));
  }

  private byte[] insert(byte[] b) {
    byte[] extra = new byte[1 + random.nextInt(16)];
    random.nextBytes(extra);
    int at = b.length == 0 ? 0 : random.nextInt(b.length);
    ByteBuffer out = ByteBuffer.allocate(b.length + extra.length);
    return out.put(b, 0, at).put(extra).put(b, at, b.length - at).array();
  }

  /** Overwrites a frame's length or header length with a boundary value. */
  private byte[] rewriteLength(byte[] b) {
    int[] values = {0, 1, 3, 4, 5, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 64 * 1024, 64 * 1024 + 5,
        2 << 20, (2 << 20) + 1, random.nextInt(), random.nextInt(256)};
    List<Integer> offsets = frameOffsets(b);
    if (offsets.isEmpty()) {
      return b;
    }
    int frameStart = offsets.get(random.nextInt(offsets.size()));
    int at = frameStart + (random.nextBoolean() ? 0 : 4);
    if (at + 4 <= b.length) {
      ByteBuffer.wrap(b).putInt(at, values[random.nextInt(values.length)]);
    }
    return b;
  }

  private static List<Integer> frameOffsets(byte[] b) {
    List<Integer> offsets = new ArrayList<>();
    ByteBuffer buf = ByteBuffer.wrap(b);
    int at = 0;
    while (at + 4 <= b.length) {
      offsets.add(at);
      long length = Integer.toUnsignedLong(buf.getInt(at));
      if (length > b.length) {
        break;
      }
      at += 4 + (int) length;
    }
    return offsets;
  }

  /** A valid Hello, then frames whose headers are random bytes (often parseable protobuf). */
  private byte[] randomHeader() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(frame(hello("fuzz-primary"), new byte[0]));
    for (int i = 1 + random.nextInt(3); i > 0; i--) {
      byte[] header = new byte[random.nextInt(64)];
      random.nextBytes(header);
      if (header.length > 0 && random.nextBoolean()) {
        // a plausible first tag: a known envelope field, length-delimited
        header[0] = (byte) (((1 + random.nextInt(14)) << 3) | 2);
      }
      byte[] payload = new byte[random.nextInt(3) == 0 ? random.nextInt(100) : 0];
      random.nextBytes(payload);
      out.writeBytes(ByteBuffer.allocate(8 + header.length + payload.length)
          .putInt(4 + header.length + payload.length).putInt(header.length).put(header).put(payload).array());
    }
    return out.toByteArray();
  }

  /** A valid session whose change names a hostile path (or link target, or random generations). */
  private byte[] hostilePath() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Envelope hello = hello("fuzz-primary");
    if (random.nextInt(4) == 0) {
      hello = hello.toBuilder().setHello(hello.getHello().toBuilder().setGenerations(GenerationIds.newBuilder()
          .setCurrent(random.nextLong()).setBitmap(random.nextLong()).addHistory(random.nextLong()))).build();
    }
    out.writeBytes(frame(hello, new byte[0]));
    String path = HOSTILE_PATHS.get(random.nextInt(HOSTILE_PATHS.size()));
    String other = HOSTILE_PATHS.get(random.nextInt(HOSTILE_PATHS.size()));
    Change.Builder c = Change.newBuilder().setSeq(1);
    byte[] payload = new byte[0];
    switch (random.nextInt(6)) {
      case 0 -> {
        c.setWrite(Write.newBuilder().setPath(path).setPosition(random.nextInt(3) == 0 ? random.nextLong() : 0));
        payload = "pwned".getBytes(StandardCharsets.US_ASCII);
      }
      case 1 -> c.setCreateSymbolicLink(CreateSymbolicLink.newBuilder().setPath("door").setTarget(other));
      case 2 -> c.setMove(Move.newBuilder().setSource(path).setTarget(other));
      case 3 -> c.setCreateLink(CreateLink.newBuilder().setPath(path).setExisting(other));
      case 4 -> c.setMakeDirectory(MakeDirectory.newBuilder().setPath(path));
      default -> c.setCopy(Copy.newBuilder().setSource(other).setTarget(path));
    }
    out.writeBytes(frame(Envelope.newBuilder().setChange(c).build(), payload));
    if (random.nextBoolean()) {
      // and then through the door, should the link have been made
      out.writeBytes(frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(2)
          .setWrite(Write.newBuilder().setPath("door/pwned"))).build(), "pwned".getBytes(StandardCharsets.US_ASCII)));
    }
    return out.toByteArray();
  }

  private byte[] splice(byte[] a, byte[] b) {
    int cutA = a.length == 0 ? 0 : random.nextInt(a.length);
    int cutB = b.length == 0 ? 0 : random.nextInt(b.length);
    ByteBuffer out = ByteBuffer.allocate(cutA + b.length - cutB);
    return out.put(a, 0, cutA).put(b, cutB, b.length - cutB).array();
  }

  private byte[] noise() {
    byte[] b = new byte[random.nextInt(4096)];
    random.nextBytes(b);
    return b;
  }
}
