package io.replicator.transport;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.CorruptedFrameException;
import io.replicator.proto.CompressionCodec;
import io.replicator.transport.TransportSettings.Compression;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.List;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * Which codec a link uses (each side's {@link Compression} mode and where the peer is) and the LZ4
 * block codec itself. The decompressor is the bounds-checking one: a peer's bytes never make it
 * write past the size it announced.
 */
final class FrameCompression {
  private static final LZ4Factory LZ4 = LZ4Factory.fastestInstance();
  private static final LZ4Compressor COMPRESSOR = LZ4.fastCompressor();
  private static final LZ4SafeDecompressor DECOMPRESSOR = LZ4.safeDecompressor();

  private FrameCompression() {}

  /** What the connecting side offers in its Hello. */
  static List<CompressionCodec> offer(Compression mode, SocketAddress remote) {
    return wants(mode, remote) ? List.of(CompressionCodec.COMPRESSION_LZ4) : List.of();
  }

  /** What the accepting side picks from the peer's offer: the first codec it wants too. */
  static CompressionCodec pick(Compression mode, SocketAddress remote, List<CompressionCodec> offered) {
    if (wants(mode, remote) && offered.contains(CompressionCodec.COMPRESSION_LZ4)) {
      return CompressionCodec.COMPRESSION_LZ4;
    }
    return CompressionCodec.COMPRESSION_NONE;
  }

  private static boolean wants(Compression mode, SocketAddress remote) {
    return switch (mode) {
      case OFF -> false;
      case LZ4 -> true;
      // on loopback (or an in-memory channel) bytes are cheaper than the CPU that saves them
      case AUTO -> remote instanceof InetSocketAddress inet && inet.getAddress() != null
          && !inet.getAddress().isLoopbackAddress();
    };
  }

  /** Largest output of {@link #compress} for {@code length} input bytes. */
  static int maxCompressedLength(int length) {
    return COMPRESSOR.maxCompressedLength(length);
  }

  /**
   * Compresses the readable bytes of {@code src} into {@code dst} from its writer index, which it
   * advances; returns the compressed length. {@code dst} must have {@link #maxCompressedLength} writable.
   */
  static int compress(ByteBuf src, ByteBuf dst) {
    int length = src.readableBytes();
    int n = COMPRESSOR.compress(src.nioBuffer(src.readerIndex(), length), 0, length,
        dst.nioBuffer(dst.writerIndex(), dst.writableBytes()), 0, dst.writableBytes());
    dst.writerIndex(dst.writerIndex() + n);
    return n;
  }

  /**
   * Decompresses the readable bytes of {@code src} into {@code dst}, which has exactly
   * {@code rawLength} writable bytes.
   *
   * @throws CorruptedFrameException when the block is malformed or does not make exactly
   *     {@code rawLength} bytes
   */
  static void decompress(ByteBuf src, ByteBuf dst, int rawLength) {
    int n;
    try {
      n = DECOMPRESSOR.decompress(src.nioBuffer(src.readerIndex(), src.readableBytes()), 0, src.readableBytes(),
          dst.nioBuffer(dst.writerIndex(), rawLength), 0, rawLength);
    } catch (LZ4Exception e) {
      throw new CorruptedFrameException("compressed frame does not decompress to the " + rawLength
          + " bytes it announces: " + e.getMessage());
    }
    if (n != rawLength) {
      throw new CorruptedFrameException("compressed frame decompresses to " + n + " bytes, not the "
          + rawLength + " it announces");
    }
    dst.writerIndex(dst.writerIndex() + n);
  }
}
