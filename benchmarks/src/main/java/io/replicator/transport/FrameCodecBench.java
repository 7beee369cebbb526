package io.replicator.transport;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replicator.proto.Change;
import io.replicator.proto.Envelope;
import io.replicator.proto.Write;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The frame codec alone: encoding a Write frame (header serialised, payload passed on) and decoding
 * one from wire bytes (length checks, header parsed, payload sliced). The codec's methods are called
 * directly with a real handler context, so the pipeline's own cost is not in the figures.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class FrameCodecBench {

  @Param({"4096", "1048576"})
  int payloadBytes;

  private EmbeddedChannel encoderChannel;
  private EmbeddedChannel decoderChannel;
  private FrameCodec.Encoder encoder;
  private FrameCodec.Decoder decoder;
  private ChannelHandlerContext encoderContext;
  private ChannelHandlerContext decoderContext;
  private Envelope header;
  private ByteBuf payload;
  private ByteBuf wire;
  private final List<Object> out = new ArrayList<>(2);
  private long seq;

  @Setup(Level.Trial)
  public void setUp() throws Exception {
    encoder = new FrameCodec.Encoder();
    decoder = new FrameCodec.Decoder(2 * TransportSettings.MAX_PAYLOAD, 64 * 1024); // the production bounds
    encoderChannel = new EmbeddedChannel(encoder);
    decoderChannel = new EmbeddedChannel(decoder);
    // pooled, as on a real connection; EmbeddedChannel defaults to unpooled heap buffers
    encoderChannel.config().setAllocator(PooledByteBufAllocator.DEFAULT);
    decoderChannel.config().setAllocator(PooledByteBufAllocator.DEFAULT);
    encoderContext = encoderChannel.pipeline().firstContext();
    decoderContext = decoderChannel.pipeline().firstContext();
    header = writeHeader(1);
    byte[] data = new byte[payloadBytes];
    new Random(1).nextBytes(data);
    payload = Unpooled.directBuffer(payloadBytes).writeBytes(data);

    // the wire form of one frame, made by the encoder under test
    encoder.encode(encoderContext, new Frame(header, payload.retainedDuplicate()), out);
    wire = Unpooled.directBuffer();
    for (Object o : out) {
      ByteBuf b = (ByteBuf) o;
      wire.writeBytes(b);
      b.release();
    }
    out.clear();
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    payload.release();
    wire.release();
    encoderChannel.finishAndReleaseAll();
    decoderChannel.finishAndReleaseAll();
  }

  /** A new header per frame, as the stream numbers each change, then the prefix written. */
  @Benchmark
  public int encodeWrite() throws Exception {
    Envelope h = writeHeader(++seq);
    encoder.encode(encoderContext, new Frame(h, payload.retainedDuplicate()), out);
    int bytes = 0;
    for (Object o : out) {
      ByteBuf b = (ByteBuf) o;
      bytes += b.readableBytes();
      b.release();
    }
    out.clear();
    return bytes;
  }

  /** One whole frame arriving in one buffer: split, header parsed, payload sliced. */
  @Benchmark
  public long decodeWrite() throws Exception {
    ByteBuf in = wire.retainedDuplicate();
    try {
      Frame frame = (Frame) decoder.decode(decoderContext, in);
      long seq = frame.header().getChange().getSeq();
      frame.release();
      return seq;
    } finally {
      in.release();
    }
  }

  private static Envelope writeHeader(long seq) {
    return Envelope.newBuilder().setChange(Change.newBuilder().setSeq(seq)
        .setWrite(Write.newBuilder().setPath("orders/2026.log").setPosition(seq * 4096))).build();
  }
}
