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
 * Which codec a link uses (each side's {@link Compression} mode, where the peer is, and whether
 * zstd loads here) and the codecs themselves: LZ4 blocks, and zstd through {@link ZstdFrames}. Both
 * decompress into exactly the size the frame announced: a peer's bytes never make them write past it.
 */
final class FrameCompression {
  private static final LZ4Factory LZ4 = LZ4Factory.fastestInstance();
  private static final LZ4Compressor COMPRESSOR = LZ4.fastCompressor();
  private static final LZ4SafeDecompressor DECOMPRESSOR = LZ4.safeDecompressor();

  private FrameCompression() {}

  /** What the connecting side offers in its Hello, most wanted first. */
  static List<CompressionCodec> offer(Compression mode, SocketAddress remote) {
    // OFF and LZ4 never touch zstd, so a node that wants neither zstd nor AUTO never loads it
    return wanted(mode, remote, (mode == Compression.ZSTD || mode == Compression.AUTO) && ZstdFrames.available());
  }

  /** What the accepting side picks from the peer's offer: the peer's most wanted codec that it wants too. */
  static CompressionCodec pick(Compression mode, SocketAddress remote, List<CompressionCodec> offered) {
    return pick(offered, offer(mode, remote));
  }

  /** The codecs a side with {@code mode} wants, most wanted first; {@code zstd}: whether zstd loaded here. */
  static List<CompressionCodec> wanted(Compression mode, SocketAddress remote, boolean zstd) {
    return switch (mode) {
      case OFF -> List.of();
      case LZ4 -> List.of(CompressionCodec.COMPRESSION_LZ4);
      case ZSTD -> zstd ? List.of(CompressionCodec.COMPRESSION_ZSTD) : List.of();
      // LZ4 first, as it costs little enough for a pair's own LAN link; zstd for a peer that insists
      case AUTO -> !isRemote(remote) ? List.of()
          : zstd ? List.of(CompressionCodec.COMPRESSION_LZ4, CompressionCodec.COMPRESSION_ZSTD)
          : List.of(CompressionCodec.COMPRESSION_LZ4);
    };
  }

  /** Not on loopback (nor an in-memory channel), where bytes are cheaper than the CPU that saves them. */
  private static boolean isRemote(SocketAddress remote) {
    return remote instanceof InetSocketAddress inet && inet.getAddress() != null
        && !inet.getAddress().isLoopbackAddress();
  }

  /** The first of {@code offered} (the peer's order) that is also {@code wanted}; NONE when there is none. */
  static CompressionCodec pick(List<CompressionCodec> offered, List<CompressionCodec> wanted) {
    for (CompressionCodec c : offered) {
      if (c != CompressionCodec.COMPRESSION_NONE && wanted.contains(c)) {
        return c;
      }
    }
    return CompressionCodec.COMPRESSION_NONE;
  }

  /** Largest output of {@link #compress} for {@code length} input bytes. */
  static int maxCompressedLength(CompressionCodec codec, int length) {
    return codec == CompressionCodec.COMPRESSION_ZSTD ? ZstdFrames.maxCompressedLength(length)
        : COMPRESSOR.maxCompressedLength(length);
  }

  /**
   * Compresses the readable bytes of {@code src} into {@code dst} from its writer index, which it
   * advances; returns the compressed length. {@code dst} must have {@link #maxCompressedLength} writable.
   */
  static int compress(CompressionCodec codec, ByteBuf src, ByteBuf dst) {
    if (codec == CompressionCodec.COMPRESSION_ZSTD) {
      return ZstdFrames.compress(src, dst);
    }
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
  static void decompress(CompressionCodec codec, ByteBuf src, ByteBuf dst, int rawLength) {
    if (codec == CompressionCodec.COMPRESSION_ZSTD) {
      ZstdFrames.decompress(src, dst, rawLength);
      return;
    }
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
