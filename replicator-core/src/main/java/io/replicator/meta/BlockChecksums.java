package io.replicator.meta;

import com.dynatrace.hash4j.hashing.Hasher128;
import com.dynatrace.hash4j.hashing.Hashing;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;

/**
 * Strong per-block checksums for resync and verify: 128-bit XXH3 of each block (a short last
 * block hashes only its bytes). Both sides hash the same way, so equal checksums mean equal blocks
 * with overwhelming probability. Internal.
 */
public final class BlockChecksums {
  /** Bytes per checksum. */
  public static final int SIZE = 16;
  private static final Hasher128 HASHER = Hashing.xxh3_128();

  private BlockChecksums() {}

  /** A block-sized buffer per thread: hashing reads one block at a time, many times a second. */
  private static final ThreadLocal<byte[]> SCRATCH = new ThreadLocal<>();

  private static byte[] scratch(int size) {
    byte[] b = SCRATCH.get();
    if (b == null || b.length < size) {
      b = new byte[size];
      SCRATCH.set(b);
    }
    return b;
  }

  /** The checksum of {@code length} bytes of {@code array} from {@code offset}. */
  public static void hash(byte[] array, int offset, int length, byte[] out, int outOffset) {
    // one shot: the same value as hashing the bytes as a stream, without a stream object per block
    var v = HASHER.hashBytesTo128Bits(array, offset, length);
    long hi = v.getMostSignificantBits();
    long lo = v.getLeastSignificantBits();
    for (int i = 0; i < 8; i++) {
      out[outOffset + i] = (byte) (hi >>> (56 - 8 * i));
      out[outOffset + 8 + i] = (byte) (lo >>> (56 - 8 * i));
    }
  }

  /**
   * Reads and hashes {@code count} blocks of {@code ch} starting at {@code firstBlock}, stopping at
   * the end of the file; returns the checksums, {@link #SIZE} bytes per block read.
   */
  public static byte[] hashBlocks(FileChannel ch, long firstBlock, int count, int blockSize) throws IOException {
    return hashBlocks(ch, ch.size(), firstBlock, count, blockSize);
  }

  /**
   * As {@link #hashBlocks(FileChannel, long, int, int)}, on any channel, for a file of {@code size}
   * bytes (known already: no need to ask); a file that turns out shorter is hashed as far as it goes.
   */
  public static byte[] hashBlocks(SeekableByteChannel ch, long size, long firstBlock, int count, int blockSize)
      throws IOException {
    long start = firstBlock * blockSize;
    if (start >= size || count <= 0) {
      return new byte[0];
    }
    int blocks = (int) Math.min(count, (size - start + blockSize - 1) / blockSize);
    byte[] out = new byte[blocks * SIZE];
    byte[] block = scratch(blockSize);
    ByteBuffer buf = ByteBuffer.wrap(block, 0, blockSize);
    for (int i = 0; i < blocks; i++) {
      long pos = start + (long) i * blockSize;
      int want = (int) Math.min(blockSize, size - pos);
      buf.clear().limit(want);
      if (ch instanceof FileChannel fc) {
        while (buf.hasRemaining()) {
          if (fc.read(buf, pos + buf.position()) < 0) {
            break;
          }
        }
      } else {
        ch.position(pos);
        while (buf.hasRemaining()) {
          if (ch.read(buf) < 0) {
            break;
          }
        }
      }
      hash(block, 0, buf.position(), out, i * SIZE);
    }
    return out;
  }
}
