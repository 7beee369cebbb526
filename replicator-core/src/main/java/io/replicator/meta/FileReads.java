package io.replicator.meta;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/** Internal: positional reads the node's durable logs share when they scan their files at open. */
public final class FileReads {
  private FileReads() {}

  /** Whether every byte from {@code from} to {@code size} (or to the end of the file) is zero. */
  public static boolean allZero(FileChannel ch, long from, long size) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(8192);
    for (long pos = from; pos < size; ) {
      buf.clear();
      int n = ch.read(buf, pos);
      if (n <= 0) {
        break;
      }
      for (int i = 0; i < n; i++) {
        if (buf.get(i) != 0) {
          return false;
        }
      }
      pos += n;
    }
    return true;
  }

  /** Reads from {@code pos} until {@code buf} is full or the file ends (the rest stays as it was). */
  public static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    for (long at = pos; buf.hasRemaining(); ) {
      int n = ch.read(buf, at);
      if (n < 0) {
        break;
      }
      at += n;
    }
  }
}
