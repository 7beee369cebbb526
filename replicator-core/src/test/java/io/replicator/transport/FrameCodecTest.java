package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ResourceLeakDetector;
import io.replicator.proto.Change;
import io.replicator.proto.Envelope;
import io.replicator.proto.Ping;
import io.replicator.proto.Write;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The frame codec on an embedded channel: round trips, zero-copy payloads, fragmentation, no leaks. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FrameCodecTest {
  private static final int MAX_FRAME = 2 * TransportSettings.MAX_PAYLOAD;
  private static final int MAX_HEADER = 64 * 1024;
  private static ResourceLeakDetector.Level previousLevel;

  private final List<EmbeddedChannel> channels = new ArrayList<>();

  @BeforeAll
  static void paranoid() {
    previousLevel = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
  }

  @AfterAll
  static void restore() {
    ResourceLeakDetector.setLevel(previousLevel);
  }

  @AfterEach
  void finish() {
    for (EmbeddedChannel ch : channels) {
      // finish() fails if an exception reached the end of the pipeline and releases leftovers
      ch.finishAndReleaseAll();
    }
  }

  private EmbeddedChannel decoder() {
    EmbeddedChannel ch = new EmbeddedChannel(new FrameCodec.Decoder(MAX_FRAME, MAX_HEADER));
    channels.add(ch);
    return ch;
  }

  private EmbeddedChannel encoder() {
    EmbeddedChannel ch = new EmbeddedChannel(new FrameCodec.Encoder());
    channels.add(ch);
    return ch;
  }

  private static Envelope write(long seq, String path) {
    return Envelope.newBuilder().setChange(Change.newBuilder().setSeq(seq)
        .setWrite(Write.newBuilder().setPath(path).setPosition(seq * 10))).build();
  }

  /** Encodes frames with the production encoder and returns the bytes that would go on the wire. */
  private byte[] encode(List<Frame> frames) {
    EmbeddedChannel enc = encoder();
    for (Frame f : frames) {
      assertThat(enc.writeOutbound(f)).isTrue();
    }
    ByteArrayOutputStream wire = new ByteArrayOutputStream();
    for (ByteBuf b = enc.readOutbound(); b != null; b = enc.readOutbound()) {
      wire.writeBytes(ByteBufUtil.getBytes(b));
      b.release();
    }
    return wire.toByteArray();
  }

  private static List<Frame> drain(EmbeddedChannel ch) {
    List<Frame> out = new ArrayList<>();
    for (Frame f = ch.readInbound(); f != null; f = ch.readInbound()) {
      out.add(f);
    }
    return out;
  }

  private static String describe(List<Frame> frames) {
    StringBuilder sb = new StringBuilder();
    for (Frame f : frames) {
      sb.append(f.header()).append('|').append(ByteBufUtil.hexDump(f.payload())).append('\n');
    }
    return sb.toString();
  }

  private static List<Frame> sampleFrames() {
    List<Frame> frames = new ArrayList<>();
    frames.add(Frame.of(Wire.hello("node-a")));
    for (int i = 0; i < 20; i++) {
      byte[] data = ("payload " + i + " ").repeat(i * 7).getBytes(StandardCharsets.UTF_8);
      frames.add(new Frame(write(i, "dir/file-" + i), Unpooled.wrappedBuffer(data)));
      frames.add(Frame.of(Envelope.newBuilder().setPing(Ping.newBuilder().setSentNanos(i)).build()));
    }
    return frames;
  }

  @Test
  void frameWithoutPayloadRoundTrips() {
    byte[] wire = encode(List.of(Frame.of(Wire.change(7))));
    assertThat(wire).isEqualTo(Wire.frame(Wire.change(7)));

    EmbeddedChannel dec = decoder();
    dec.writeInbound(Unpooled.wrappedBuffer(wire));
    Frame f = dec.readInbound();
    assertThat(f.header()).isEqualTo(Wire.change(7));
    assertThat(f.payload().readableBytes()).isZero();
    f.release();
    assertThat(dec.<Object>readInbound()).isNull();
  }

  @Test
  void frameWithPayloadRoundTripsAndPayloadPassesThroughUncopied() {
    ByteBuf payload = Unpooled.wrappedBuffer("file contents".getBytes(StandardCharsets.UTF_8));
    EmbeddedChannel enc = encoder();
    enc.writeOutbound(new Frame(write(1, "a/b"), payload));
    ByteBuf prefix = enc.readOutbound();
    ByteBuf passed = enc.readOutbound();
    assertThat(passed).as("the encoder hands on the caller's payload buffer itself").isSameAs(payload);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    bytes.writeBytes(ByteBufUtil.getBytes(prefix));
    bytes.writeBytes(ByteBufUtil.getBytes(passed));
    byte[] wire = bytes.toByteArray();
    prefix.release();
    // the outbound buffer would release it after the socket write
    passed.release();
    assertThat(passed.refCnt()).as("payload released once written").isZero();
    assertThat(wire).isEqualTo(Wire.frame(write(1, "a/b"), "file contents".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void decodedPayloadIsASliceOfTheReceiveBufferAndIsReleasedWithTheFrame() {
    byte[] data = new byte[1000];
    new Random(1).nextBytes(data);
    byte[] wire = Wire.frame(write(3, "x"), data);
    ByteBuf received = Unpooled.wrappedBuffer(wire);
    EmbeddedChannel dec = decoder();
    dec.writeInbound(received);
    Frame f = dec.readInbound();

    assertThat(f.header()).isEqualTo(write(3, "x"));
    assertThat(ByteBufUtil.getBytes(f.payload())).isEqualTo(data);
    // same backing array at the payload's offset: no copy was made
    assertThat(f.payload().hasArray()).isTrue();
    assertThat(f.payload().array()).isSameAs(wire);
    assertThat(f.payload().arrayOffset() + f.payload().readerIndex()).isEqualTo(wire.length - data.length);
    assertThat(received.refCnt()).as("the frame keeps the receive buffer alive").isEqualTo(1);
    f.release();
    assertThat(received.refCnt()).as("releasing the frame frees the receive buffer").isZero();
  }

  @Test
  void severalFramesInOneBuffer() {
    List<Frame> frames = sampleFrames();
    String expected = describe(frames);
    byte[] wire = encode(frames);
    ByteBuf in = Unpooled.wrappedBuffer(wire);
    EmbeddedChannel dec = decoder();
    dec.writeInbound(in);
    List<Frame> decoded = drain(dec);
    assertThat(describe(decoded)).isEqualTo(expected);
    decoded.forEach(Frame::release);
    assertThat(in.refCnt()).isZero();
  }

  @Test
  void byteByByteDecodesIdentically() {
    List<Frame> frames = sampleFrames();
    String expected = describe(frames);
    byte[] wire = encode(frames);
    EmbeddedChannel dec = decoder();
    List<ByteBuf> pieces = new ArrayList<>();
    List<Frame> decoded = new ArrayList<>();
    for (byte b : wire) {
      ByteBuf piece = Unpooled.buffer(1).writeByte(b);
      pieces.add(piece);
      dec.writeInbound(piece);
      decoded.addAll(drain(dec));
    }
    assertThat(describe(decoded)).isEqualTo(expected);
    decoded.forEach(Frame::release);
    assertThat(pieces).allSatisfy(p -> assertThat(p.refCnt()).isZero());
  }

  @ParameterizedTest
  @ValueSource(longs = {1, 2, 3, 42, 1234567})
  void randomFragmentsDecodeIdentically(long fixedSeed) {
    long seed = fixedSeed ^ System.nanoTime();
    Random random = new Random(seed);
    List<Frame> frames = sampleFrames();
    String expected = describe(frames);
    byte[] wire = encode(frames);
    List<ByteBuf> pieces = new ArrayList<>();
    List<Frame> decoded = feed(decoder(), wire, random, 8, 400, pieces);
    assertThat(describe(decoded)).as("fragments from seed %d", seed).isEqualTo(expected);
    decoded.forEach(Frame::release);
    assertThat(pieces).as("leaked buffers with seed %d", seed).allSatisfy(p -> assertThat(p.refCnt()).isZero());
  }

  @Test
  void emptyPayloadBufferFramesAreReleasedByTheEncoder() {
    ByteBuf empty = Unpooled.buffer(16);
    EmbeddedChannel enc = encoder();
    enc.writeOutbound(new Frame(Wire.change(1), empty));
    ByteBuf prefix = enc.readOutbound();
    assertThat(enc.<Object>readOutbound()).isNull();
    prefix.release();
    assertThat(empty.refCnt()).isZero();
  }

  /** A decoder past its handshake, as a link carrying data is. */
  private EmbeddedChannel trustedDecoder() {
    FrameCodec.Decoder decoder = new FrameCodec.Decoder(MAX_FRAME, MAX_HEADER);
    decoder.handshakeDone();
    EmbeddedChannel ch = new EmbeddedChannel(decoder);
    channels.add(ch);
    return ch;
  }

  /**
   * Feeds {@code wire} in pieces of up to {@code small} or up to {@code large} bytes, heap or
   * direct (as the socket and tests would hand them over), and decodes; {@code pieces} collects
   * them to check for leaks.
   */
  private static List<Frame> feed(EmbeddedChannel dec, byte[] wire, Random random, int small, int large,
      List<ByteBuf> pieces) {
    List<Frame> decoded = new ArrayList<>();
    for (int at = 0; at < wire.length; ) {
      int n = Math.min(wire.length - at, 1 + random.nextInt(random.nextBoolean() ? small : large));
      ByteBuf piece = random.nextBoolean() ? Unpooled.directBuffer(n) : Unpooled.buffer(n);
      piece.writeBytes(wire, at, n);
      pieces.add(piece);
      dec.writeInbound(piece);
      decoded.addAll(drain(dec));
      at += n;
    }
    return decoded;
  }

  /**
   * Large frames are gathered in buffers of their own size (not by Netty's doubling), so reads
   * that straddle frames, and earlier frames still held while later ones arrive, must decode
   * exactly as sent.
   */
  @ParameterizedTest
  @ValueSource(longs = {7, 99, 2024})
  void largeFramesInReadSizedPiecesDecodeIdenticallyWhileEarlierOnesAreHeld(long fixedSeed) {
    long seed = fixedSeed ^ System.nanoTime();
    Random random = new Random(seed);
    List<Envelope> headers = new ArrayList<>();
    List<byte[]> payloads = new ArrayList<>();
    List<Frame> frames = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      int size = i % 3 == 0 ? TransportSettings.MAX_PAYLOAD : FrameCodec.Decoder.LARGE_FRAME + random.nextInt(300_000);
      byte[] data = new byte[size];
      random.nextBytes(data);
      headers.add(write(i, "big-" + i));
      payloads.add(data);
      frames.add(new Frame(headers.get(headers.size() - 1), Unpooled.wrappedBuffer(data)));
      Envelope ping = Envelope.newBuilder().setPing(Ping.newBuilder().setSentNanos(i)).build();
      headers.add(ping);
      payloads.add(new byte[0]);
      frames.add(Frame.of(ping));
    }
    byte[] wire = encode(frames);
    List<ByteBuf> pieces = new ArrayList<>();
    List<Frame> decoded = feed(trustedDecoder(), wire, random, 16, 70_000, pieces);
    try {
      assertThat(decoded).as("frames from seed %d", seed).hasSameSizeAs(headers);
      for (int i = 0; i < decoded.size(); i++) {
        assertThat(decoded.get(i).header()).as("header %d, seed %d", i, seed).isEqualTo(headers.get(i));
        assertThat(ByteBufUtil.getBytes(decoded.get(i).payload())).as("payload %d, seed %d", i, seed)
            .isEqualTo(payloads.get(i));
      }
    } finally {
      decoded.forEach(Frame::release);
    }
    assertThat(pieces).as("leaked buffers with seed %d", seed).allSatisfy(p -> assertThat(p.refCnt()).isZero());
  }

  /**
   * The memory a large frame was gathered in is used again once the frame is released (applied):
   * a fresh buffer of a megabyte is zeroed by the JDK, a cost that showed in the profile of a
   * replica receiving sequential writes.
   */
  @Test
  void aLargeFrameIsGatheredInKeptMemoryThatTheNextOneReuses() {
    byte[] data = new byte[TransportSettings.MAX_PAYLOAD];
    new Random(5).nextBytes(data);
    byte[] wire = Wire.frame(write(1, "big"), data);
    long[] addresses = new long[2];
    for (int round = 0; round < 2; round++) {
      EmbeddedChannel dec = trustedDecoder();
      List<ByteBuf> pieces = new ArrayList<>();
      for (int at = 0; at < wire.length; at += 64 * 1024) {
        // heap pieces: a payload in direct memory can only be in the gathered buffer
        ByteBuf piece = Unpooled.buffer(64 * 1024).writeBytes(wire, at, Math.min(64 * 1024, wire.length - at));
        pieces.add(piece);
        dec.writeInbound(piece);
      }
      Frame f = dec.readInbound();
      assertThat(ByteBufUtil.getBytes(f.payload())).isEqualTo(data);
      assertThat(f.payload().hasMemoryAddress()).as("gathered in direct memory").isTrue();
      addresses[round] = f.payload().memoryAddress();
      f.release();
      assertThat(pieces).allSatisfy(p -> assertThat(p.refCnt()).isZero());
    }
    assertThat(addresses[1]).as("the second frame reuses the first one's memory").isEqualTo(addresses[0]);
  }
}
