package io.replicator.transport;

import com.github.luben.zstd.Zstd;
import io.replicator.proto.Change;
import io.replicator.proto.CompressionCodec;
import io.replicator.proto.Envelope;
import io.replicator.proto.Hello;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import net.jpountz.lz4.LZ4Factory;

/** Builds raw wire bytes and settings for tests, independently of the production encoder. */
final class Wire {
  static final String CLUSTER = "test-cluster";

  private Wire() {}

  static InetSocketAddress loopback() {
    try {
      return new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0);
    } catch (UnknownHostException e) {
      throw new AssertionError(e);
    }
  }

  static TransportSettings settings(String nodeId) {
    return TransportSettings.defaults(CLUSTER, nodeId);
  }

  static TransportSettings settings(String cluster, String nodeId) {
    return TransportSettings.defaults(cluster, nodeId);
  }

  static TransportSettings settings(String nodeId, Duration heartbeat, Duration peerTimeout, Duration handshake) {
    TransportSettings d = TransportSettings.defaults(CLUSTER, nodeId);
    return new TransportSettings(CLUSTER, nodeId, d.incarnation(), d.maxFrameLength(), d.maxHeaderLength(),
        heartbeat, peerTimeout, handshake);
  }

  /** A complete frame as the protocol describes it. */
  static byte[] frame(Envelope header, byte[] payload) {
    byte[] h = header.toByteArray();
    return ByteBuffer.allocate(8 + h.length + payload.length)
        .putInt(4 + h.length + payload.length).putInt(h.length).put(h).put(payload).array();
  }

  static byte[] frame(Envelope header) {
    return frame(header, new byte[0]);
  }

  /** Big-endian 32-bit words followed by raw bytes. */
  static byte[] raw(int[] words, byte[] tail) {
    ByteBuffer b = ByteBuffer.allocate(4 * words.length + tail.length);
    for (int w : words) {
      b.putInt(w);
    }
    return b.put(tail).array();
  }

  static Envelope hello(int version, String cluster, String nodeId) {
    return Envelope.newBuilder().setHello(Hello.newBuilder()
        .setProtocolVersion(version).setClusterName(cluster).setNodeId(nodeId)).build();
  }

  static Envelope hello(String nodeId) {
    return hello(TransportSettings.PROTOCOL_VERSION, CLUSTER, nodeId);
  }

  /** A Hello that offers frame compression with {@code codecs}. */
  static Envelope hello(String nodeId, CompressionCodec... codecs) {
    Envelope h = hello(nodeId);
    return h.toBuilder().setHello(h.getHello().toBuilder().addAllCompression(List.of(codecs))).build();
  }

  /**
   * A compressed frame (LZ4 block of the plain frame's body) that announces {@code announcedLength}
   * uncompressed bytes, true or not.
   */
  static byte[] compressedFrame(Envelope header, byte[] payload, long announcedLength) {
    return compressedFrame(CompressionCodec.COMPRESSION_LZ4, header, payload, announcedLength);
  }

  /**
   * A compressed frame (an LZ4 block or a zstd frame of the plain frame's body, made by the
   * libraries directly) that announces {@code announcedLength} uncompressed bytes, true or not.
   */
  static byte[] compressedFrame(CompressionCodec codec, Envelope header, byte[] payload, long announcedLength) {
    byte[] plain = frame(header, payload);
    byte[] body = Arrays.copyOfRange(plain, 4, plain.length);
    byte[] packed = codec == CompressionCodec.COMPRESSION_ZSTD ? Zstd.compress(body, 3)
        : LZ4Factory.safeInstance().fastCompressor().compress(body);
    return ByteBuffer.allocate(8 + packed.length)
        .putInt((int) (0x8000_0000L | (4 + packed.length))).putInt((int) announcedLength).put(packed).array();
  }

  static byte[] compressedFrame(Envelope header, byte[] payload) {
    return compressedFrame(CompressionCodec.COMPRESSION_LZ4, header, payload);
  }

  static byte[] compressedFrame(CompressionCodec codec, Envelope header, byte[] payload) {
    return compressedFrame(codec, header, payload, 4 + header.getSerializedSize() + payload.length);
  }

  static Envelope change(long seq) {
    return Envelope.newBuilder().setChange(Change.newBuilder().setSeq(seq)).build();
  }
}
