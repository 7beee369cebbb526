package io.replicator.transport;

import com.google.protobuf.CodedOutputStream;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufInputStream;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.MessageToMessageEncoder;
import io.netty.handler.codec.TooLongFrameException;
import io.replicator.proto.CompressionCodec;
import io.replicator.proto.Envelope;
import java.io.IOException;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The wire format: {@code uint32 frameLength, uint32 headerLength, Envelope header, payload}.
 * Frame length is bounded, so a peer cannot make us buffer more than the bound; the payload is
 * handed on as a slice of the received buffer and written out without copying. On a link that
 * negotiated compression a frame may instead be {@code uint32 (frameLength | 0x80000000),
 * uint32 bodyLength, compressed body}, where the body is what follows the length of a plain frame;
 * the expanded body is held to the same bound.
 */
final class FrameCodec {

  /** Bytes of the two length fields. */
  static final int PREFIX = 8;
  /** The frame length's top bit: the body is compressed. No frame is that long. */
  static final long COMPRESSED = 0x8000_0000L;
  /** Smaller bodies are sent as they are: too little to save for the work. */
  static final int MIN_COMPRESSED_BODY = 256;

  private FrameCodec() {}

  /** Splits the byte stream into frames and parses their headers. */
  static final class Decoder extends LengthFieldBasedFrameDecoder {
    /** First byte of a frame length that no accepted frame has, but a TLS record does. */
    private static final int TLS_RECORD_MIN = 0x14;
    /** Frames of this size on are gathered in a buffer of their own ({@link #cumulate}). */
    static final int LARGE_FRAME = 64 * 1024;
    /**
     * Room left past a large frame for the start of the next, which usually arrives in the same
     * read: without it, that read would not fit, and the whole frame would be copied once more.
     */
    private static final int READ_SLACK = 64 * 1024;
    private final int maxFrameLength;
    private final int maxHeaderLength;
    private final boolean recognisesTls;
    private final LinkCounters counters;
    /** What compressed frames from the peer use; until negotiated, a compressed frame is an error. */
    private CompressionCodec codec = CompressionCodec.COMPRESSION_NONE;
    /**
     * Until the handshake completes only handshake messages may come, and they have no payload:
     * an unauthenticated peer can make us buffer one header's worth, not a whole frame's.
     */
    private boolean handshaking = true;

    Decoder(int maxFrameLength, int maxHeaderLength) {
      this(maxFrameLength, maxHeaderLength, new LinkCounters());
    }

    Decoder(int maxFrameLength, int maxHeaderLength, LinkCounters counters) {
      // length field at 0, 4 bytes, counts what follows it; strip it
      super(maxFrameLength, 0, 4, 0, 4, true);
      this.maxFrameLength = maxFrameLength;
      this.maxHeaderLength = maxHeaderLength;
      this.recognisesTls = maxFrameLength < TLS_RECORD_MIN << 24;
      this.counters = counters;
      setCumulator(this::cumulate);
    }

    /**
     * Gathers what was read so far. A large frame is gathered in one buffer of its own size, taken
     * from kept memory ({@link PayloadBuffers#RECEIVED}): grown by doubling, as Netty's cumulation
     * is, its bytes would be copied about twice more and every fresh buffer zeroed, and a buffer
     * whose earlier frames are still being applied (their payloads are slices of it) cannot grow in
     * place at all. Only once the handshake is done: before, a frame's announced size is not
     * trusted with memory.
     */
    private ByteBuf cumulate(ByteBufAllocator alloc, ByteBuf cumulation, ByteBuf in) {
      int frameBytes = handshaking || cumulation == in ? -1 : announcedFrameBytes(cumulation);
      if (frameBytes < LARGE_FRAME) {
        return MERGE_CUMULATOR.cumulate(alloc, cumulation, in);
      }
      try {
        int needed = in.readableBytes();
        if (cumulation.refCnt() == 1 && !cumulation.isReadOnly() && cumulation.writableBytes() >= needed) {
          cumulation.writeBytes(in);
          return cumulation;
        }
        int have = cumulation.readableBytes();
        ByteBuf whole = PayloadBuffers.RECEIVED.take(Math.max(frameBytes + READ_SLACK, have + needed));
        whole.writeBytes(cumulation).writeBytes(in);
        cumulation.release();
        return whole;
      } finally {
        in.release();
      }
    }

    /**
     * Bytes of the frame starting at {@code buf}'s reader index, length field included, or -1 when
     * not known yet or beyond the bound (the decoder rejects those).
     */
    private int announcedFrameBytes(ByteBuf buf) {
      if (buf.readableBytes() < 4) {
        return -1;
      }
      long length = buf.getUnsignedInt(buf.readerIndex()) & ~COMPRESSED;
      return length > maxFrameLength ? -1 : (int) length + 4;
    }

    /** Accepts compressed frames from now on (the handshake picked {@code codec}). */
    void compression(CompressionCodec codec) {
      this.codec = codec;
    }

    /** Lifts the handshake's frame limit: the peer is now trusted with full frames. */
    void handshakeDone() {
      handshaking = false;
    }

    @Override
    protected Object decode(ChannelHandlerContext ctx, ByteBuf in) throws Exception {
      if (recognisesTls && in.readableBytes() >= 2
          && in.getByte(in.readerIndex()) >= TLS_RECORD_MIN && in.getByte(in.readerIndex()) <= 0x17
          && in.getByte(in.readerIndex() + 1) == 0x03) {
        // a TLS record header (handshake, alert...): as a length it would be oversize anyway, so
        // this costs nothing and tells the operator what is really wrong
        throw new CorruptedFrameException("the peer speaks TLS and this node does not (configure TLS on both nodes)");
      }
      boolean compressed = in.isReadable() && (in.getByte(in.readerIndex()) & 0x80) != 0;
      // unmasked: a compressed frame (top bit set) is oversize here too, as none may come yet
      if (handshaking && in.readableBytes() >= 4 && in.getUnsignedInt(in.readerIndex()) > 4L + maxHeaderLength) {
        throw new TooLongFrameException("frame of " + in.getUnsignedInt(in.readerIndex())
            + " bytes before the handshake completed (limit " + (4L + maxHeaderLength) + ")");
      }
      ByteBuf frame = (ByteBuf) super.decode(ctx, in);
      if (frame == null) {
        return null;
      }
      int wireLength = PREFIX / 2 + frame.readableBytes();
      ByteBuf body = frame;
      try {
        if (compressed) {
          body = decompress(ctx, frame);
        }
        counters.received(PREFIX / 2 + body.readableBytes(), wireLength);
        return parse(body);
      } finally {
        if (body != frame) {
          body.release();
        }
        frame.release();
      }
    }

    /** The frame's body ({@code uint32 headerLength, header, payload}) from its compressed form. */
    private ByteBuf decompress(ChannelHandlerContext ctx, ByteBuf frame) {
      if (codec == CompressionCodec.COMPRESSION_NONE) {
        throw new CorruptedFrameException("compressed frame on a link that negotiated no compression");
      }
      if (frame.readableBytes() < 4) {
        throw new CorruptedFrameException("compressed frame of " + frame.readableBytes()
            + " bytes has no uncompressed length");
      }
      long rawLength = frame.readUnsignedInt();
      // the bound of an uncompressed frame holds for what a compressed one expands to: a peer
      // that claims more gets an error here, before anything is allocated
      if (rawLength < 4 || rawLength > maxFrameLength) {
        throw new CorruptedFrameException("compressed frame announces " + rawLength
            + " uncompressed bytes (must be 4 to " + maxFrameLength + ")");
      }
      ByteBuf body = ctx.alloc().buffer((int) rawLength);
      try {
        FrameCompression.decompress(codec, frame, body, (int) rawLength);
        return body;
      } catch (RuntimeException e) {
        body.release();
        throw e;
      }
    }

    private Frame parse(ByteBuf frame) {
      if (frame.readableBytes() < 4) {
        throw new CorruptedFrameException("frame of " + frame.readableBytes() + " bytes has no header length");
      }
      int headerLength = frame.readInt();
      if (headerLength < 0 || headerLength > maxHeaderLength || headerLength > frame.readableBytes()) {
        throw new CorruptedFrameException(
            "header length " + Integer.toUnsignedString(headerLength) + " does not fit a frame of "
                + (frame.readableBytes() + 4) + " bytes (header limit " + maxHeaderLength + ")");
      }
      Envelope header;
      try {
        header = Envelope.parseFrom(new ByteBufInputStream(frame.readSlice(headerLength)));
      } catch (IOException e) {
        throw new CorruptedFrameException("unparseable header: " + e.getMessage());
      }
      if (header.getBodyCase() == Envelope.BodyCase.BODY_NOT_SET) {
        throw new CorruptedFrameException("header carries no message (unknown or empty envelope)");
      }
      // a slice, not a copy: the payload stays in the receive buffer until it is applied
      ByteBuf payload = frame.readableBytes() == 0 ? io.netty.buffer.Unpooled.EMPTY_BUFFER : frame.retainedSlice();
      return new Frame(header, payload);
    }

    @Override
    protected long getUnadjustedFrameLength(ByteBuf buf, int offset, int length, ByteOrder order) {
      // the top bit flags a compressed frame, the rest is its length
      return super.getUnadjustedFrameLength(buf, offset, length, order) & ~COMPRESSED;
    }
  }

  /**
   * Writes the prefix and header into a small buffer and passes the payload on untouched; once
   * compression is on, frames of some size are compressed whole, unless that saves nothing.
   */
  static final class Encoder extends MessageToMessageEncoder<Frame> {
    private final LinkCounters counters;
    private CompressionCodec codec = CompressionCodec.COMPRESSION_NONE;

    Encoder() {
      this(new LinkCounters());
    }

    Encoder(LinkCounters counters) {
      super(Frame.class);
      this.counters = counters;
    }

    /** Compresses the frames encoded from now on with {@code codec} (called after the handshake). */
    void compression(CompressionCodec codec) {
      this.codec = codec;
    }

    LinkCounters counters() {
      return counters;
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, Frame frame, List<Object> out) throws IOException {
      Envelope header = frame.header();
      int headerLength = header.getSerializedSize();
      ByteBuf payload = frame.payload();
      int bodyLength = 4 + headerLength + payload.readableBytes();
      if (codec != CompressionCodec.COMPRESSION_NONE && bodyLength >= MIN_COMPRESSED_BODY
          && encodeCompressed(ctx, frame, header, headerLength, bodyLength, out)) {
        return;
      }
      ByteBuf prefix = ctx.alloc().ioBuffer(PREFIX + headerLength);
      try {
        prefix.writeInt(bodyLength);
        writeHeader(prefix, header, headerLength);
      } catch (IOException | RuntimeException e) {
        prefix.release();
        // the frame is ours to release; the base class cannot (a Frame is not reference counted)
        frame.release();
        throw e;
      }
      counters.sent(4 + bodyLength, 4 + bodyLength);
      out.add(prefix);
      // the payload's reference passes to the outbound buffer, which releases it once written
      if (payload.isReadable()) {
        out.add(payload);
      } else {
        frame.release();
      }
    }

    /**
     * Adds the compressed frame to {@code out} and releases the frame; or, when compressing does
     * not make it smaller (random or already compressed data), adds nothing and returns false.
     */
    private boolean encodeCompressed(ChannelHandlerContext ctx, Frame frame, Envelope header, int headerLength,
        int bodyLength, List<Object> out) throws IOException {
      ByteBuf body = ctx.alloc().buffer(bodyLength);
      ByteBuf packed = null;
      try {
        writeHeader(body, header, headerLength);
        ByteBuf payload = frame.payload();
        body.writeBytes(payload, payload.readerIndex(), payload.readableBytes());
        packed = ctx.alloc().ioBuffer(PREFIX + FrameCompression.maxCompressedLength(codec, bodyLength));
        packed.writerIndex(PREFIX);
        int n = FrameCompression.compress(codec, body, packed);
        if (4 + n >= bodyLength) {
          return false;
        }
        packed.setInt(0, (int) (COMPRESSED | (4 + n)));
        packed.setInt(4, bodyLength);
        counters.sent(4 + bodyLength, PREFIX + n);
        out.add(packed);
        packed = null;
        frame.release();
        return true;
      } catch (IOException | RuntimeException e) {
        frame.release();
        throw e;
      } finally {
        body.release();
        if (packed != null) {
          packed.release();
        }
      }
    }

    /** The header length and the header, at the writer index of {@code buf}. */
    private static void writeHeader(ByteBuf buf, Envelope header, int headerLength) throws IOException {
      buf.writeInt(headerLength);
      CodedOutputStream cos = CodedOutputStream.newInstance(buf.nioBuffer(buf.writerIndex(), headerLength));
      header.writeTo(cos);
      cos.checkNoSpaceLeft();
      buf.writerIndex(buf.writerIndex() + headerLength);
    }
  }
}
