package io.replicator.transport;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.MessageToMessageEncoder;
import io.netty.handler.codec.TooLongFrameException;
import io.replicator.proto.Envelope;
import java.io.IOException;
import java.util.List;

/**
 * The wire format: {@code uint32 frameLength, uint32 headerLength, Envelope header, payload}.
 * Frame length is bounded, so a peer cannot make us buffer more than the bound; the payload is
 * handed on as a slice of the received buffer and written out without copying.
 */
final class FrameCodec {

  /** Bytes of the two length fields. */
  static final int PREFIX = 8;

  private FrameCodec() {}

  /** Splits the byte stream into frames and parses their headers. */
  static final class Decoder extends LengthFieldBasedFrameDecoder {
    /** First byte of a frame length that no accepted frame has, but a TLS record does. */
    private static final int TLS_RECORD_MIN = 0x14;
    private final int maxHeaderLength;
    private final boolean recognisesTls;
    /**
     * Until the handshake completes only handshake messages may come, and they have no payload:
     * an unauthenticated peer can make us buffer one header's worth, not a whole frame's.
     */
    private boolean handshaking = true;

    Decoder(int maxFrameLength, int maxHeaderLength) {
      // length field at 0, 4 bytes, counts what follows it; strip it
      super(maxFrameLength, 0, 4, 0, 4, true);
      this.maxHeaderLength = maxHeaderLength;
      this.recognisesTls = maxFrameLength < TLS_RECORD_MIN << 24;
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
      if (handshaking && in.readableBytes() >= 4 && in.getUnsignedInt(in.readerIndex()) > 4L + maxHeaderLength) {
        throw new TooLongFrameException("frame of " + in.getUnsignedInt(in.readerIndex())
            + " bytes before the handshake completed (limit " + (4L + maxHeaderLength) + ")");
      }
      ByteBuf frame = (ByteBuf) super.decode(ctx, in);
      if (frame == null) {
        return null;
      }
      try {
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
        } catch (InvalidProtocolBufferException e) {
          throw new CorruptedFrameException("unparseable header: " + e.getMessage());
        }
        if (header.getBodyCase() == Envelope.BodyCase.BODY_NOT_SET) {
          throw new CorruptedFrameException("header carries no message (unknown or empty envelope)");
        }
        // a slice, not a copy: the payload stays in the receive buffer until it is applied
        ByteBuf payload = frame.readableBytes() == 0 ? io.netty.buffer.Unpooled.EMPTY_BUFFER : frame.retainedSlice();
        return new Frame(header, payload);
      } finally {
        frame.release();
      }
    }
  }

  /** Writes the prefix and header into a small buffer and passes the payload on untouched. */
  static final class Encoder extends MessageToMessageEncoder<Frame> {
    Encoder() {
      super(Frame.class);
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, Frame frame, List<Object> out) throws IOException {
      Envelope header = frame.header();
      int headerLength = header.getSerializedSize();
      ByteBuf payload = frame.payload();
      ByteBuf prefix = ctx.alloc().ioBuffer(PREFIX + headerLength);
      try {
        prefix.writeInt(4 + headerLength + payload.readableBytes());
        prefix.writeInt(headerLength);
        CodedOutputStream cos = CodedOutputStream.newInstance(prefix.nioBuffer(prefix.writerIndex(), headerLength));
        header.writeTo(cos);
        cos.checkNoSpaceLeft();
        prefix.writerIndex(prefix.writerIndex() + headerLength);
      } catch (IOException | RuntimeException e) {
        prefix.release();
        // the frame is ours to release; the base class cannot (a Frame is not reference counted)
        frame.release();
        throw e;
      }
      out.add(prefix);
      // the payload's reference passes to the outbound buffer, which releases it once written
      if (payload.isReadable()) {
        out.add(payload);
      } else {
        frame.release();
      }
    }
  }
}
