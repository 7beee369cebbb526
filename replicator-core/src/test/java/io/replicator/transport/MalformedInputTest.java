package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad input closes the connection with a PROTOCOL_ERROR goodbye and never escapes the pipeline;
 * the server keeps serving well-behaved peers afterwards.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MalformedInputTest extends TransportFixture {
  private static final int MAX_FRAME = 2 * TransportSettings.MAX_PAYLOAD;
  private static final int MAX_HEADER = 64 * 1024;

  static Stream<Arguments> badFrames() {
    byte[] garbage = new byte[10];
    Arrays.fill(garbage, (byte) 0xFF);
    // field 99 (unknown to Envelope) as a varint: parses, but no body is set
    byte[] unknownOnly = {(byte) 0x98, 0x06, 0x01};
    return Stream.of(
        Arguments.of("oversize frame length", Wire.raw(new int[] {MAX_FRAME + 1, 0}, new byte[0]), "oversize"),
        Arguments.of("frame length 0xFFFFFFFF", Wire.raw(new int[] {0xFFFFFFFF, 0}, new byte[0]), "oversize"),
        Arguments.of("header longer than frame", Wire.raw(new int[] {8, 100}, new byte[4]), "header length 100"),
        Arguments.of("negative header length", Wire.raw(new int[] {8, 0xFFFFFFFF}, new byte[4]),
            "header length 4294967295"),
        // before the handshake no frame may exceed one header: refused by its length alone
        Arguments.of("header over the header limit",
            Wire.raw(new int[] {4 + MAX_HEADER + 1, MAX_HEADER + 1}, new byte[MAX_HEADER + 1]),
            "before the handshake completed"),
        Arguments.of("garbage header", Wire.raw(new int[] {4 + 10, 10}, garbage), "unparseable header"),
        Arguments.of("empty envelope", Wire.raw(new int[] {4, 0}, new byte[0]), "no message"),
        Arguments.of("unknown envelope field only", Wire.raw(new int[] {4 + 3, 3}, unknownOnly), "no message"),
        Arguments.of("zero-length frame", Wire.raw(new int[] {0}, new byte[0]), "no header length"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badFrames")
  void embeddedPipelineClosesWithoutThrowing(String name, byte[] bytes, String reason) {
    EmbeddedChannel ch = new EmbeddedChannel();
    Pipelines.install(ch.pipeline(), Wire.settings("server"),
        PeerChannelHandler.server(Wire.settings("server"), Wire.hello("server").getHello(),
            c -> PeerAcceptor.Decision.accept(serverListener, null)));
    ByteBuf in = Unpooled.wrappedBuffer(bytes);
    // writeInbound rethrows anything that reached the end of the pipeline
    ch.writeInbound(in);
    ch.runPendingTasks();
    assertThat(ch.isOpen()).as(name).isFalse();
    ch.checkException();
    Goodbye bye = goodbyeIn(ch);
    assertThat(bye.getCode()).isEqualTo(Goodbye.Code.PROTOCOL_ERROR);
    assertThat(bye.getMessage()).contains(reason);
    assertThat(in.refCnt()).as("input released").isZero();
    ch.finishAndReleaseAll();
  }

  private static Goodbye goodbyeIn(EmbeddedChannel ch) {
    ByteBuf all = Unpooled.buffer();
    for (ByteBuf b = ch.readOutbound(); b != null; b = ch.readOutbound()) {
      all.writeBytes(b);
      b.release();
    }
    EmbeddedChannel dec = new EmbeddedChannel(new FrameCodec.Decoder(MAX_FRAME, MAX_HEADER));
    dec.writeInbound(all);
    Frame f = dec.readInbound();
    assertThat(f).as("a goodbye was written").isNotNull();
    f.release();
    dec.finishAndReleaseAll();
    return f.header().getGoodbye();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badFrames")
  void serverClosesTheConnectionAndKeepsServing(String name, byte[] bytes, String reason) throws Exception {
    TransportServer server = server(Wire.settings("server"));
    RawPeer peer = raw(server.localAddress());
    peer.send(bytes);
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).as(name).hasSize(1);
    assertThat(sent.get(0).getGoodbye().getCode()).isEqualTo(Goodbye.Code.PROTOCOL_ERROR);
    assertThat(sent.get(0).getGoodbye().getMessage()).contains(reason);

    PeerConnection good = connect(server, "client", new RecordingListener());
    assertThat(good.remoteNodeId()).isEqualTo("server");
    assertThat(good.isActive()).isTrue();
  }

  @Test
  void badInputAfterTheHandshakeClosesAndTellsTheListener() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    RawPeer peer = raw(server.localAddress());
    peer.handshake("raw-client");
    peer.send(Wire.raw(new int[] {4 + 10, 10}, new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF,
        (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF}));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).last().satisfies(e -> assertThat(e.getGoodbye().getMessage()).contains("unparseable header"));
    org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(5))
        .until(() -> serverListener.closes.size() == 1);
    assertThat(serverListener.closes.get(0)).contains("bad input from peer").contains("unparseable header");
  }
}
