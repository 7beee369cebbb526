package io.replicator.transport;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.util.Native;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.handler.codec.CorruptedFrameException;
import java.nio.ByteBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The zstd block codec of {@link FrameCompression}, through zstd-jni's native library: offered only
 * when that library loads on this machine, so a node without it still links, uncompressed or with
 * LZ4.
 */
final class ZstdFrames {
  private static final Logger log = LoggerFactory.getLogger(ZstdFrames.class);
  /**
   * zstd's own default level: 5.6:1 on the log and JSON text of CompressionTest where LZ4 gives
   * 3.3:1, at a speed per core far above what a WAN link (the reason to choose zstd) carries.
   */
  static final int LEVEL = 3;
  /** Why zstd cannot be used here, or null when it loaded. */
  private static final String UNAVAILABLE = load();

  private ZstdFrames() {}

  private static String load() {
    try {
      Native.load();
      Zstd.compressBound(1); // the first native call: fails here, not on a link, when the library is unusable
      return null;
    } catch (LinkageError | RuntimeException e) {
      String why = "zstd-jni's native library does not load on " + System.getProperty("os.name") + "/"
          + System.getProperty("os.arch") + " (" + e + ")";
      log.warn("frame compression: zstd is not offered on any link: {}; links use LZ4 or none", why);
      return why;
    }
  }

  /** Whether zstd can be offered and accepted. */
  static boolean available() {
    return UNAVAILABLE == null;
  }

  static int maxCompressedLength(int length) {
    return (int) Math.min(Integer.MAX_VALUE - 16, Zstd.compressBound(length));
  }

  /** As {@link FrameCompression#compress}. */
  static int compress(ByteBuf src, ByteBuf dst) {
    int length = src.readableBytes();
    int room = dst.writableBytes();
    ByteBuffer in = src.nioBuffer(src.readerIndex(), length);
    ByteBuffer out = dst.nioBuffer(dst.writerIndex(), room);
    long n;
    if (in.isDirect() && out.isDirect()) {
      n = Zstd.compressDirectByteBuffer(out, out.position(), room, in, in.position(), length, LEVEL);
      check(n, "compressing a frame");
    } else {
      byte[] packed = new byte[room];
      n = Zstd.compressByteArray(packed, 0, room, ByteBufUtil.getBytes(src, src.readerIndex(), length), 0, length,
          LEVEL);
      check(n, "compressing a frame");
      dst.setBytes(dst.writerIndex(), packed, 0, (int) n);
    }
    dst.writerIndex(dst.writerIndex() + (int) n);
    return (int) n;
  }

  /** As {@link FrameCompression#decompress}: never writes more than {@code rawLength} bytes. */
  static void decompress(ByteBuf src, ByteBuf dst, int rawLength) {
    int length = src.readableBytes();
    ByteBuffer in = src.nioBuffer(src.readerIndex(), length);
    ByteBuffer out = dst.nioBuffer(dst.writerIndex(), rawLength);
    long n;
    try {
      if (in.isDirect() && out.isDirect()) {
        n = Zstd.decompressDirectByteBuffer(out, out.position(), rawLength, in, in.position(), length);
      } else {
        byte[] plain = new byte[rawLength];
        n = Zstd.decompressByteArray(plain, 0, rawLength, ByteBufUtil.getBytes(src, src.readerIndex(), length), 0,
            length);
        if (!Zstd.isError(n)) {
          dst.setBytes(dst.writerIndex(), plain, 0, (int) n);
        }
      }
    } catch (RuntimeException e) {
      // zstd-jni reports some errors as exceptions rather than codes
      throw new CorruptedFrameException("compressed frame does not decompress to the " + rawLength
          + " bytes it announces: " + e.getMessage());
    }
    if (Zstd.isError(n)) {
      throw new CorruptedFrameException("compressed frame does not decompress to the " + rawLength
          + " bytes it announces: " + Zstd.getErrorName(n));
    }
    if (n != rawLength) {
      throw new CorruptedFrameException("compressed frame decompresses to " + n + " bytes, not the "
          + rawLength + " it announces");
    }
    dst.writerIndex(dst.writerIndex() + rawLength);
  }

  private static void check(long n, String what) {
    if (Zstd.isError(n)) {
      throw new IllegalStateException(what + " failed: " + Zstd.getErrorName(n));
    }
  }
}
