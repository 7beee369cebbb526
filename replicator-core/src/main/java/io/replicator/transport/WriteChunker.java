package io.replicator.transport;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;

/**
 * Cuts large outbound buffers into slices before the bandwidth cap, which holds back whole
 * messages: a capped link then trickles a large frame out at the cap instead of going silent for
 * as long as the whole frame takes, which the peer would take for a dead link.
 */
final class WriteChunker extends ChannelOutboundHandlerAdapter {
  private final int chunk;

  WriteChunker(int chunk) {
    this.chunk = chunk;
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (msg instanceof ByteBuf buf && buf.readableBytes() > chunk) {
      // slices share the buffer; the last write takes the original reference and the promise,
      // and an earlier failure closes the connection, so nothing waits on the slices' own
      while (buf.readableBytes() > chunk) {
        ctx.write(buf.readRetainedSlice(chunk), ctx.voidPromise());
      }
      ctx.write(buf, promise);
      return;
    }
    ctx.write(msg, promise);
  }
}
