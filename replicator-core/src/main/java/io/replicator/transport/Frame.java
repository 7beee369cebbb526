package io.replicator.transport;

import static com.google.common.base.Preconditions.checkNotNull;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replicator.proto.Envelope;

/**
 * One unit on a peer connection: a protobuf header and a raw payload (file data, possibly empty).
 * The payload is reference counted; whoever ends up holding a frame releases it.
 */
public final class Frame {
  private final Envelope header;
  private final ByteBuf payload;

  public Frame(Envelope header, ByteBuf payload) {
    this.header = checkNotNull(header, "header");
    this.payload = checkNotNull(payload, "payload");
  }

  /** A frame without payload. */
  public static Frame of(Envelope header) {
    return new Frame(header, Unpooled.EMPTY_BUFFER);
  }

  public Envelope header() {
    return header;
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
    return header.getBodyCase() + "(" + payload.readableBytes() + " payload bytes)";
  }
}
