package io.replicator.meta;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Two files written in turn, each one record {@code magic, uint32 format, int64 counter, uint32
 * length, body, uint32 crc32c}: a write torn by a crash can only damage the slot being written, so
 * the other one still holds the previous record. Shared by the metadata and bitmap stores.
 */
final class SlotFiles {
  private static final Logger log = LoggerFactory.getLogger(SlotFiles.class);
  static final int HEADER = 4 + 4 + 8 + 4;

  /** Turns a slot body into a value; throwing marks the slot invalid (so a CRC collision still cannot inject garbage). */
  interface BodyParser<T> {
    T parse(ByteBuffer body) throws Exception;
  }

  /** What {@link #load} found: the newest valid value (null when none), its counter, and whether any slot file existed. */
  record Loaded<T>(T value, long counter, boolean anyFile) {}

  private final Path dir;
  private final String[] names;
  private final int magic;
  private final int format;
  private final int maxBody;

  SlotFiles(Path dir, String[] names, int magic, int format, int maxBody) {
    if (names.length != 2) {
      throw new IllegalArgumentException("two slots needed");
    }
    this.dir = dir;
    this.names = names.clone();
    this.magic = magic;
    this.format = format;
    this.maxBody = maxBody;
  }

  <T> Loaded<T> load(BodyParser<T> parser) throws IOException {
    long bestCounter = -1;
    T best = null;
    boolean anyFile = false;
    for (String name : names) {
      Path file = dir.resolve(name);
      long size;
      try {
        size = Files.size(file);
      } catch (NoSuchFileException e) {
        continue;
      }
      anyFile = true;
      // Check the size before reading so that a damaged or foreign file cannot make us allocate without bound.
      if (size < HEADER + 4 || size > (long) HEADER + maxBody + 4) {
        log.warn("slot {} has an impossible size {}; ignoring it", file, size);
        continue;
      }
      byte[] bytes;
      try {
        bytes = Files.readAllBytes(file);
      } catch (NoSuchFileException e) {
        continue;
      }
      long counter = validCounter(bytes);
      if (counter < 0) {
        log.warn("slot {} is torn or corrupt; ignoring it", file);
        continue;
      }
      if (counter <= bestCounter) {
        continue;
      }
      T value;
      try {
        value = parser.parse(ByteBuffer.wrap(bytes, HEADER, bytes.length - HEADER - 4).slice());
      } catch (Exception e) {
        log.warn("slot {} has a valid checksum but an unreadable body; ignoring it: {}", file, e.toString());
        continue;
      }
      if (value != null) {
        bestCounter = counter;
        best = value;
      }
    }
    return new Loaded<>(best, Math.max(bestCounter, 0), anyFile);
  }

  /** Writes {@code body} with {@code counter} into the slot that counter selects, and fsyncs it. */
  void write(long counter, byte[] body) throws IOException {
    if (body.length > maxBody) {
      throw new IOException("record of " + body.length + " bytes exceeds the limit of " + maxBody);
    }
    ByteBuffer buf = ByteBuffer.allocate(HEADER + body.length + 4);
    buf.putInt(magic).putInt(format).putLong(counter).putInt(body.length).put(body);
    CRC32C crc = new CRC32C();
    crc.update(buf.array(), 0, buf.position());
    buf.putInt((int) crc.getValue());
    buf.flip();
    Path file = dir.resolve(names[(int) (counter & 1)]);
    boolean created = !Files.exists(file);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      while (buf.hasRemaining()) {
        ch.write(buf);
      }
      ch.force(true);
    }
    if (created) {
      forceDirectory(dir);
    }
  }

  /** The record's counter when header, length and CRC are valid, else -1. */
  private long validCounter(byte[] bytes) {
    if (bytes.length < HEADER + 4) {
      return -1;
    }
    ByteBuffer buf = ByteBuffer.wrap(bytes);
    if (buf.getInt() != magic || buf.getInt() != format) {
      return -1;
    }
    long counter = buf.getLong();
    int length = buf.getInt();
    if (counter < 0 || length < 0 || length > maxBody || HEADER + length + 4 != bytes.length) {
      return -1;
    }
    CRC32C crc = new CRC32C();
    crc.update(bytes, 0, HEADER + length);
    int stored = ByteBuffer.wrap(bytes, HEADER + length, 4).getInt();
    return (int) crc.getValue() == stored ? counter : -1;
  }

  /** Makes a new directory entry durable; a no-op where directories cannot be opened. */
  static void forceDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException | UnsupportedOperationException e) {
      // some providers (in-memory ones, other platforms) cannot open a directory; nothing to make durable
      log.debug("cannot fsync directory {}: {}", dir, e.toString());
    }
  }
}
