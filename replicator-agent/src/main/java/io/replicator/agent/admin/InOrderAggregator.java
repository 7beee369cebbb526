package io.replicator.agent.admin;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.TooLongHttpContentException;

/**
 * Netty's aggregator, except that it never answers a client itself. Netty's writes 413 (body too
 * large) and 417 (unknown {@code Expect}) straight to the socket: ahead of the answers to earlier
 * pipelined requests still being handled, and without the one log line every refusal gets. Here
 * a body that is too large becomes a failed request for {@link AdminHttpHandler}, which answers
 * 413 in its turn, logs it and closes; an {@code Expect} other than {@code 100-continue} is
 * ignored, as RFC 9110 allows. {@code 100 Continue} itself is still sent at once: it is an interim
 * answer the client waits for before it sends the body.
 */
final class InOrderAggregator extends HttpObjectAggregator {
  InOrderAggregator(int maxContentLength) {
    super(maxContentLength);
  }

  /**
   * {@code 100 Continue} when the client asks for it and its body fits; nothing otherwise. Not
   * Netty's: for 413 and 417 it also tells the decoder to skip the body, so the request never
   * arrives whole, while here it must arrive to be refused (or served) in turn.
   */
  @Override
  protected Object newContinueResponse(HttpMessage start, int maxContentLength, ChannelPipeline pipeline) {
    // isContentLengthInvalid, not HttpUtil.getContentLength: the decoder passes a Content-Length it
    // ignores (the body framed by chunks instead) through unparsed, and a NumberFormatException here
    // would close the connection before the answers to earlier requests are out. The fuzz found it.
    if (HttpUtil.is100ContinueExpected(start) && !isContentLengthInvalid(start, maxContentLength)) {
      start.headers().remove(HttpHeaderNames.EXPECT);
      return new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE, Unpooled.EMPTY_BUFFER);
    }
    return null;
  }

  @Override
  protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) throws Exception {
    if (!(oversized instanceof HttpRequest request)) {
      super.handleOversizedMessage(ctx, oversized);
      return;
    }
    // Only the request line travels on: the caller releases the oversized message, body and all.
    DefaultFullHttpRequest refused = new DefaultFullHttpRequest(request.protocolVersion(), request.method(),
        request.uri(), Unpooled.EMPTY_BUFFER);
    refused.setDecoderResult(DecoderResult.failure(
        new TooLongHttpContentException("Request body over " + maxContentLength() + " bytes")));
    ctx.fireChannelRead(refused);
  }
}
