package io.replicator.transport;

import static com.google.common.base.Preconditions.checkNotNull;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replicator.proto.Change;
import io.replicator.proto.Envelope;

/**
 * One unit on a peer connection: a protobuf header and a raw payload (file data, possibly empty).
 * The payload is reference counted; whoever ends up holding a frame releases it.
 */
public final class Frame {
  private Envelope header;
  /** A change whose envelope is built when first needed (on the I/O thread that encodes it). */
  private final Change change;
  private final long seq;
  private final ByteBuf payload;

  public Frame(Envelope header, ByteBuf payload) {
    this.header = checkNotNull(header, "header");
    this.change = null;
    this.seq = 0;
    this.payload = checkNotNull(payload, "payload");
  }

  private Frame(Change change, long seq, ByteBuf payload) {
    this.change = checkNotNull(change, "change");
    this.seq = seq;
    this.payload = checkNotNull(payload, "payload");
  }

  /** A frame without payload. */
  public static Frame of(Envelope header) {
    return new Frame(header, Unpooled.EMPTY_BUFFER);
  }

  /**
   * The frame of change {@code seq}: {@code change} is built without its number, so a sender
   * does that work before it takes the lock that hands out numbers; the envelope is put together
   * when the frame is encoded.
   */
  public static Frame change(Change change, long seq, ByteBuf payload) {
    return new Frame(change, seq, payload == null ? Unpooled.EMPTY_BUFFER : payload);
  }

  public Envelope header() {
    Envelope h = header;
    if (h == null) {
      h = Envelope.newBuilder().setChange(change.toBuilder().setSeq(seq)).build();
      header = h;
    }
    return h;
  }

  public ByteBuf payload() {
    return payload;
  }

  /** Releases the payload; safe on frames without one. */
  public void release() {
    if (payload.refCnt() > 0 && payload != Unpooled.EMPTY_BUFFER) {
      payload.release();
    }
  }

  @Override
  public String toString() {
    return header().getBodyCase() + "(" + payload.readableBytes() + " payload bytes)";
  }
}
