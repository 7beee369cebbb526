package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.netty.buffer.Unpooled;
import io.replicator.proto.Change;
import io.replicator.proto.CompressionCodec;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.HelloReply;
import io.replicator.proto.Write;
import io.replicator.transport.TransportSettings.Compression;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Frame compression negotiated per link: frames arrive intact whatever their content, a link
 * compresses only when both ends want it, a peer's lying sizes are refused, and text shrinks.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class CompressionTest extends TransportFixture {
  private static final long SEED = 0x5EED_CAFEL;

  private static TransportSettings lz4(String nodeId) {
    return forced(nodeId, Compression.LZ4);
  }

  private static TransportSettings forced(String nodeId, Compression mode) {
    return Wire.settings(nodeId).withCompression(mode);
  }

  /** The codec a link forced to {@code mode} (LZ4 or ZSTD) uses. */
  private static CompressionCodec codecOf(Compression mode) {
    return CompressionCodec.valueOf("COMPRESSION_" + mode.name());
  }

  private PeerConnection connect(TransportSettings server, TransportSettings client, RecordingListener listener)
      throws Exception {
    TransportServer s = server(server);
    PeerConnection c = result(client(client).connect(s.localAddress(), null, listener));
    await().atMost(Duration.ofSeconds(5)).until(() -> !accepted.isEmpty());
    return c;
  }

  /** Log lines and JSON documents, the bulk of what a replicated directory of services holds. */
  static byte[] textLike(Random random, int size) {
    String[] levels = {"INFO ", "DEBUG", "WARN ", "ERROR"};
    String[] words = {"sent", "applied", "queued", "retrying", "flushed", "opened", "closed", "renamed"};
    StringBuilder b = new StringBuilder(size + 256);
    while (b.length() < size) {
      if (random.nextInt(3) == 0) {
        int id = random.nextInt(100_000);
        b.append("{\"id\":").append(id).append(",\"name\":\"user-").append(id).append("\",\"email\":\"user")
            .append(id).append("@example.com\",\"active\":").append(random.nextBoolean())
            .append(",\"score\":").append(random.nextInt(1000)).append(",\"tags\":[\"")
            .append(words[random.nextInt(words.length)]).append("\",\"")
            .append(words[random.nextInt(words.length)]).append("\"]}\n");
      } else {
        b.append(String.format("2025-03-%02dT%02d:%02d:%02d.%03dZ %s [worker-%d] io.replicator.stream.Sender - %s change"
                + " seq=%d path=/data/users/u%d/profile.json bytes=%d latency_ms=%d%n",
            1 + random.nextInt(28), random.nextInt(24), random.nextInt(60), random.nextInt(60),
            random.nextInt(1000), levels[random.nextInt(levels.length)], random.nextInt(8),
            words[random.nextInt(words.length)], random.nextInt(10_000_000), random.nextInt(10_000),
            random.nextInt(1 << 20), random.nextInt(50)));
      }
    }
    byte[] all = b.toString().getBytes(StandardCharsets.UTF_8);
    return java.util.Arrays.copyOf(all, size);
  }

  static byte[] randomBytes(Random random, int size) {
    byte[] b = new byte[size];
    random.nextBytes(b);
    return b;
  }

  private static Frame change(long seq, String path, byte[] payload) {
    return new Frame(Envelope.newBuilder().setChange(Change.newBuilder().setSeq(seq).setWrite(Write.newBuilder().setPath(path))).build(),
        Unpooled.wrappedBuffer(payload));
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = Compression.class, names = {"LZ4", "ZSTD"})
  void aCodecForcedOnLoopbackCarriesRandomAndTextFramesIntactBothWays(Compression mode) throws Exception {
    Random random = new Random(SEED);
    List<byte[]> payloads = new ArrayList<>();
    for (int size : new int[] {0, 1, 100, 300, 4096, 65_536, TransportSettings.MAX_PAYLOAD}) {
      payloads.add(randomBytes(random, size));
      payloads.add(textLike(random, size));
    }
    RecordingListener clientListener = new RecordingListener();
    PeerConnection client = connect(forced("server", mode), forced("client", mode), clientListener);
    PeerConnection server = accepted.get(0);
    assertThat(client.compression()).isEqualTo(codecOf(mode));
    assertThat(server.compression()).isEqualTo(codecOf(mode));

    for (int i = 0; i < payloads.size(); i++) {
      client.send(change(i, "/up/" + i, payloads.get(i)));
      server.send(change(i, "/down/" + i, payloads.get(i)));
    }
    await().atMost(Duration.ofSeconds(10)).until(
        () -> serverListener.payloads.size() == payloads.size() && clientListener.payloads.size() == payloads.size());
    for (int i = 0; i < payloads.size(); i++) {
      assertThat(serverListener.headers.get(i).getChange().getWrite().getPath()).isEqualTo("/up/" + i);
      assertThat(serverListener.payloads.get(i)).as("frame %s up", i).isEqualTo(payloads.get(i));
      assertThat(clientListener.headers.get(i).getChange().getWrite().getPath()).isEqualTo("/down/" + i);
      assertThat(clientListener.payloads.get(i)).as("frame %s down", i).isEqualTo(payloads.get(i));
    }
    assertThat(client.wireBytesSent()).as("text shrank").isLessThan(client.rawBytesSent());
    await().atMost(Duration.ofSeconds(5)).until(() -> server.wireBytesReceived() == client.wireBytesSent());
    assertThat(server.rawBytesReceived()).isEqualTo(client.rawBytesSent());
    assertThat(serverListener.closes).isEmpty();
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = Compression.class, names = {"LZ4", "ZSTD"})
  void randomDataTravelsRawAndDoesNotGrow(Compression mode) throws Exception {
    Random random = new Random(SEED);
    PeerConnection client = connect(forced("server", mode), forced("client", mode), new RecordingListener());
    assertThat(client.compression()).isEqualTo(codecOf(mode));
    long rawBefore = client.rawBytesSent();
    long wireBefore = client.wireBytesSent();
    for (int i = 0; i < 16; i++) {
      client.send(change(i, "/random/" + i, randomBytes(random, 64 * 1024)));
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> serverListener.payloads.size() == 16);
    assertThat(client.wireBytesSent() - wireBefore).isEqualTo(client.rawBytesSent() - rawBefore);
  }

  static Stream<Arguments> textRatios() {
    // 2 MiB of log lines and JSON documents (seeded, so the figures are stable): LZ4 gives 3.3:1,
    // zstd at level 3 5.6:1
    return Stream.of(Arguments.of(Compression.LZ4, 3.0), Arguments.of(Compression.ZSTD, 5.0));
  }

  @ParameterizedTest(name = "{0} better than {1}:1")
  @MethodSource("textRatios")
  void textLikeDataCompresses(Compression mode, double atLeast) throws Exception {
    Random random = new Random(SEED);
    PeerConnection client = connect(forced("server", mode), forced("client", mode), new RecordingListener());
    long rawBefore = client.rawBytesSent();
    long wireBefore = client.wireBytesSent();
    int frames = 32;
    for (int i = 0; i < frames; i++) {
      client.send(change(i, "/logs/service-" + i + ".log", textLike(random, 64 * 1024)));
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> serverListener.payloads.size() == frames);
    double ratio = (double) (client.rawBytesSent() - rawBefore) / (client.wireBytesSent() - wireBefore);
    assertThat(ratio).as("compression ratio").isGreaterThan(atLeast);
  }

  @Test
  void autoOnLoopbackStaysUncompressed() throws Exception {
    PeerConnection client = connect(Wire.settings("server"), Wire.settings("client"), new RecordingListener());
    assertThat(client.compression()).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    assertThat(accepted.get(0).compression()).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    client.send(change(1, "/text", textLike(new Random(SEED), 64 * 1024)));
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.payloads.size() == 1);
    assertThat(client.wireBytesSent()).isEqualTo(client.rawBytesSent());
  }

  static Stream<Arguments> oneSideOff() {
    return Stream.of(
        Arguments.of("accepting side off", Compression.OFF, Compression.LZ4),
        Arguments.of("connecting side off", Compression.LZ4, Compression.OFF),
        Arguments.of("connecting side auto on loopback", Compression.LZ4, Compression.AUTO));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("oneSideOff")
  void aLinkCompressesOnlyWhenBothSidesWantIt(String name, Compression server, Compression client)
      throws Exception {
    PeerConnection c = connect(Wire.settings("server").withCompression(server),
        Wire.settings("client").withCompression(client), new RecordingListener());
    assertThat(c.compression()).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    assertThat(accepted.get(0).compression()).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    c.send(change(1, "/text", textLike(new Random(SEED), 64 * 1024)));
    accepted.get(0).send(change(1, "/text", textLike(new Random(SEED), 64 * 1024)));
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.payloads.size() == 1);
    assertThat(c.wireBytesSent()).isEqualTo(c.rawBytesSent());
    await().atMost(Duration.ofSeconds(5)).until(() -> c.rawBytesReceived() > 64 * 1024);
    assertThat(c.wireBytesReceived()).isEqualTo(c.rawBytesReceived());
  }

  static Stream<Arguments> codecPairs() {
    return Stream.of(
        Arguments.of("both ends zstd", Compression.ZSTD, Compression.ZSTD, CompressionCodec.COMPRESSION_ZSTD),
        Arguments.of("accepting side zstd only, connecting side lz4 only", Compression.ZSTD, Compression.LZ4,
            CompressionCodec.COMPRESSION_NONE),
        Arguments.of("accepting side lz4 only, connecting side zstd only", Compression.LZ4, Compression.ZSTD,
            CompressionCodec.COMPRESSION_NONE),
        Arguments.of("both ends lz4", Compression.LZ4, Compression.LZ4, CompressionCodec.COMPRESSION_LZ4));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("codecPairs")
  void theCodecIsOneBothEndsWantOrNone(String name, Compression server, Compression client, CompressionCodec expected)
      throws Exception {
    RecordingListener clientListener = new RecordingListener();
    PeerConnection c = connect(forced("server", server), forced("client", client), clientListener);
    assertThat(c.compression()).isEqualTo(expected);
    assertThat(accepted.get(0).compression()).isEqualTo(expected);
    byte[] text = textLike(new Random(SEED), 64 * 1024);
    c.send(change(1, "/up", text));
    accepted.get(0).send(change(1, "/down", text));
    await().atMost(Duration.ofSeconds(5)).until(
        () -> serverListener.payloads.size() == 1 && clientListener.payloads.size() == 1);
    assertThat(serverListener.payloads.get(0)).isEqualTo(text);
    assertThat(clientListener.payloads.get(0)).isEqualTo(text);
    if (expected == CompressionCodec.COMPRESSION_NONE) {
      assertThat(c.wireBytesSent()).isEqualTo(c.rawBytesSent());
    } else {
      assertThat(c.wireBytesSent()).isLessThan(c.rawBytesSent());
    }
  }

  @Test
  void autoOnAFarLinkPrefersLz4AndTakesZstdFromAPeerThatWantsOnlyZstd() {
    InetSocketAddress far = new InetSocketAddress("192.0.2.7", 7000);
    InetSocketAddress local = new InetSocketAddress("127.0.0.1", 7000);
    assertThat(FrameCompression.wanted(Compression.AUTO, far, true))
        .containsExactly(CompressionCodec.COMPRESSION_LZ4, CompressionCodec.COMPRESSION_ZSTD);
    assertThat(FrameCompression.wanted(Compression.AUTO, local, true)).isEmpty();
    assertThat(pick(Compression.AUTO, Compression.AUTO, far, true)).isEqualTo(CompressionCodec.COMPRESSION_LZ4);
    assertThat(pick(Compression.AUTO, Compression.LZ4, far, true)).isEqualTo(CompressionCodec.COMPRESSION_LZ4);
    assertThat(pick(Compression.AUTO, Compression.ZSTD, far, true)).isEqualTo(CompressionCodec.COMPRESSION_ZSTD);
    assertThat(pick(Compression.ZSTD, Compression.AUTO, far, true)).isEqualTo(CompressionCodec.COMPRESSION_ZSTD);
  }

  @Test
  void withoutZstdsNativeLibraryZstdIsNotOfferedAndTheLinkStillWorks() {
    InetSocketAddress far = new InetSocketAddress("192.0.2.7", 7000);
    assertThat(FrameCompression.wanted(Compression.ZSTD, far, false)).isEmpty();
    assertThat(FrameCompression.wanted(Compression.AUTO, far, false)).containsExactly(CompressionCodec.COMPRESSION_LZ4);
    // a peer that wants zstd only, against a side where zstd did not load: uncompressed, not refused
    assertThat(FrameCompression.pick(FrameCompression.wanted(Compression.ZSTD, far, true),
        FrameCompression.wanted(Compression.AUTO, far, false))).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    assertThat(FrameCompression.pick(FrameCompression.wanted(Compression.AUTO, far, true),
        FrameCompression.wanted(Compression.ZSTD, far, false))).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    assertThat(ZstdFrames.available()).as("zstd loads on the platforms this is built on").isTrue();
  }

  @Test
  void zstdRoundTripsBetweenHeapAndDirectBuffers() {
    byte[] text = textLike(new Random(SEED), 100_000);
    for (boolean direct : new boolean[] {false, true}) {
      io.netty.buffer.ByteBuf src = direct ? Unpooled.directBuffer(text.length).writeBytes(text)
          : Unpooled.wrappedBuffer(text);
      int max = FrameCompression.maxCompressedLength(CompressionCodec.COMPRESSION_ZSTD, text.length);
      io.netty.buffer.ByteBuf packed = direct ? Unpooled.directBuffer(max) : Unpooled.buffer(max);
      io.netty.buffer.ByteBuf back = direct ? Unpooled.directBuffer(text.length) : Unpooled.buffer(text.length);
      try {
        int n = FrameCompression.compress(CompressionCodec.COMPRESSION_ZSTD, src, packed);
        assertThat(n).isEqualTo(packed.readableBytes()).isLessThan(text.length / 4);
        FrameCompression.decompress(CompressionCodec.COMPRESSION_ZSTD, packed, back, text.length);
        assertThat(io.netty.buffer.ByteBufUtil.getBytes(back)).as("direct %s", direct).isEqualTo(text);
      } finally {
        src.release();
        packed.release();
        back.release();
      }
    }
  }

  /** What an accepting side with {@code server} picks from a connecting side with {@code client}. */
  private static CompressionCodec pick(Compression server, Compression client, InetSocketAddress remote,
      boolean zstd) {
    return FrameCompression.pick(FrameCompression.wanted(client, remote, zstd),
        FrameCompression.wanted(server, remote, zstd));
  }

  /** A raw peer that negotiated {@code codec} with a server forced to it, ready to send what a test wants. */
  private RawPeer compressingRawPeer(CompressionCodec codec) throws Exception {
    Compression mode = codec == CompressionCodec.COMPRESSION_ZSTD ? Compression.ZSTD : Compression.LZ4;
    TransportServer server = server(forced("server", mode));
    RawPeer peer = raw(server.localAddress());
    peer.send(Wire.hello("raw-client", codec));
    Envelope reply = peer.read();
    assertThat(reply).isNotNull();
    HelloReply r = reply.getHelloReply();
    assertThat(r.getAccepted()).as("%s", r).isTrue();
    assertThat(r.getCompression()).isEqualTo(codec);
    return peer;
  }

  static Stream<Arguments> lyingFrames() {
    byte[] text = textLike(new Random(SEED), 8192);
    Envelope header = Wire.change(7);
    int truth = 4 + header.getSerializedSize() + text.length;
    List<Arguments> all = new ArrayList<>();
    for (CompressionCodec c : List.of(CompressionCodec.COMPRESSION_LZ4, CompressionCodec.COMPRESSION_ZSTD)) {
      String n = c.name().substring("COMPRESSION_".length()) + ": ";
      all.addAll(List.of(
          Arguments.of(n + "claims 2 GiB", c, Wire.compressedFrame(c, header, text, 0x7FFF_FFFFL),
              "announces 2147483647 uncompressed bytes"),
          Arguments.of(n + "claims 4 GiB", c, Wire.compressedFrame(c, header, text, 0xFFFF_FFFFL),
              "announces 4294967295 uncompressed bytes"),
          Arguments.of(n + "claims just over the frame limit", c,
              Wire.compressedFrame(c, header, text, 2L * (1 << 20) + 1), "announces 2097153 uncompressed bytes"),
          Arguments.of(n + "claims one byte more", c, Wire.compressedFrame(c, header, text, truth + 1),
              "not the " + (truth + 1)),
          Arguments.of(n + "claims one byte less", c, Wire.compressedFrame(c, header, text, truth - 1),
              "does not decompress to the " + (truth - 1)),
          Arguments.of(n + "garbage block", c, Wire.raw(new int[] {0x8000_0000 | 12, 1000, -1, -1}, new byte[0]),
              "does not decompress"),
          Arguments.of(n + "no length", c, Wire.raw(new int[] {0x8000_0000 | 2}, new byte[2]),
              "no uncompressed length")));
    }
    return all.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("lyingFrames")
  void aCompressedFrameThatLiesAboutItsSizeIsRefusedWithAReason(String name, CompressionCodec codec, byte[] bytes,
      String reason) throws Exception {
    RawPeer peer = compressingRawPeer(codec);
    peer.send(bytes);
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).as(name).isNotEmpty();
    Goodbye bye = sent.get(sent.size() - 1).getGoodbye();
    assertThat(bye.getCode()).isEqualTo(Goodbye.Code.PROTOCOL_ERROR);
    assertThat(bye.getMessage()).contains("bad input from peer").contains(reason);
    assertThat(serverListener.payloads).isEmpty();
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = CompressionCodec.class, names = {"COMPRESSION_LZ4", "COMPRESSION_ZSTD"})
  void aTruthfulCompressedFrameFromAnotherImplementationIsAccepted(CompressionCodec codec) throws Exception {
    RawPeer peer = compressingRawPeer(codec);
    byte[] text = textLike(new Random(SEED), 8192);
    peer.send(Wire.compressedFrame(codec, Wire.change(7), text));
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.payloads.size() == 1);
    assertThat(serverListener.payloads.get(0)).isEqualTo(text);
  }

  @Test
  void aCompressedFrameOnALinkWithoutCompressionIsRefused() throws Exception {
    TransportServer server = server(Wire.settings("server").withCompression(Compression.OFF));
    RawPeer peer = raw(server.localAddress());
    peer.send(Wire.hello("raw-client", CompressionCodec.COMPRESSION_LZ4));
    assertThat(peer.read().getHelloReply().getCompression()).isEqualTo(CompressionCodec.COMPRESSION_NONE);
    peer.send(Wire.compressedFrame(Wire.change(7), textLike(new Random(SEED), 8192)));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).isNotEmpty();
    assertThat(sent.get(sent.size() - 1).getGoodbye().getMessage())
        .contains("compressed frame on a link that negotiated no compression");
  }

  @Test
  void aCompressedFrameBeforeTheHandshakeIsRefused() throws Exception {
    TransportServer server = server(lz4("server"));
    RawPeer peer = raw(server.localAddress());
    peer.send(Wire.compressedFrame(Wire.hello("raw-client", CompressionCodec.COMPRESSION_LZ4), new byte[0]));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).hasSize(1);
    assertThat(sent.get(0).getGoodbye().getCode()).isEqualTo(Goodbye.Code.PROTOCOL_ERROR);
    assertThat(sent.get(0).getGoodbye().getMessage()).contains("before the handshake completed");
    assertThat(accepted).isEmpty();
  }
}
