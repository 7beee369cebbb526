package io.replicator.meta;

import static com.google.common.base.Preconditions.checkNotNull;

import com.google.protobuf.InvalidProtocolBufferException;
import io.replicator.proto.NodeMetadata;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a node's {@link NodeMetadata} durable and crash-safe: two slots written in turn, each a
 * record with a counter and a CRC32C, so a write torn by a crash leaves the other slot intact.
 * The newest valid slot wins; when slots exist but none is valid, the metadata is reported lost
 * (which must lead to a full resync, never to a silent skip).
 *
 * <p>Slot layout: {@code "RPLM", uint32 format, int64 counter, uint32 length, body, uint32 crc}
 * where the CRC covers everything before it.
 */
public final class NodeMetadataStore {
  private static final Logger log = LoggerFactory.getLogger(NodeMetadataStore.class);
  private static final int MAGIC = 0x52504c4d; // "RPLM"
  private static final int FORMAT = 1;
  private static final int HEADER = 4 + 4 + 8 + 4;
  private static final int MAX_BODY = 16 << 20;
  static final String[] SLOTS = {"node-meta.0", "node-meta.1"};

  private final Path dir;
  private long counter;
  private NodeMetadata current;

  /** What {@link #open} found on disk. */
  public enum Found {
    /** No metadata yet: a node that never ran here. */
    NONE,
    /** A valid record. */
    VALID,
    /** Slots exist but none is valid: torn, truncated or corrupt. */
    CORRUPT
  }

  private final Found found;

  private NodeMetadataStore(Path dir, long counter, NodeMetadata current, Found found) {
    this.dir = dir;
    this.counter = counter;
    this.current = current;
    this.found = found;
  }

  /** Opens the store in {@code dir}, creating the directory when missing, and reads the newest valid slot. */
  public static NodeMetadataStore open(Path dir) throws IOException {
    checkNotNull(dir, "dir");
    createDurably(dir.toAbsolutePath());
    long bestCounter = -1;
    NodeMetadata best = null;
    boolean anyFile = false;
    for (String slot : SLOTS) {
      Path file = dir.resolve(slot);
      byte[] bytes;
      try {
        bytes = Files.readAllBytes(file);
      } catch (NoSuchFileException e) {
        continue;
      }
      anyFile = true;
      Optional<Slot> parsed = parse(bytes);
      if (parsed.isEmpty()) {
        log.warn("metadata slot {} is torn or corrupt; ignoring it", file);
        continue;
      }
      if (parsed.get().counter > bestCounter) {
        bestCounter = parsed.get().counter;
        best = parsed.get().body;
      }
    }
    if (best != null) {
      return new NodeMetadataStore(dir, bestCounter, best, Found.VALID);
    }
    Found found = anyFile ? Found.CORRUPT : Found.NONE;
    if (found == Found.CORRUPT) {
      log.error("no valid metadata in {}: the peer must be treated as out of date (full resync)", dir);
    }
    return new NodeMetadataStore(dir, 0, NodeMetadata.getDefaultInstance(), found);
  }

  /** Whether a valid record was found at open, none, or only corrupt ones. */
  public Found found() {
    return found;
  }

  /** The newest record (the default instance when none was valid). */
  public synchronized NodeMetadata current() {
    return current;
  }

  /** Writes {@code next} durably (into the older slot) and makes it current. */
  public synchronized void write(NodeMetadata next) throws IOException {
    checkNotNull(next, "next");
    long nextCounter = counter + 1;
    byte[] body = next.toByteArray();
    ByteBuffer buf = ByteBuffer.allocate(HEADER + body.length + 4);
    buf.putInt(MAGIC).putInt(FORMAT).putLong(nextCounter).putInt(body.length).put(body);
    CRC32C crc = new CRC32C();
    crc.update(buf.array(), 0, buf.position());
    buf.putInt((int) crc.getValue());
    buf.flip();
    Path file = dir.resolve(SLOTS[(int) (nextCounter % 2)]);
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
    counter = nextCounter;
    current = next;
  }

  /**
   * Creates {@code dir} and any missing parents, and fsyncs the parent of each created one: a
   * metadata directory whose entry was lost in a crash would read as NONE (never ran here)
   * instead of the state it held.
   */
  private static void createDurably(Path dir) throws IOException {
    if (Files.isDirectory(dir)) {
      return;
    }
    Path parent = dir.getParent();
    if (parent != null) {
      createDurably(parent);
    }
    Files.createDirectories(dir);
    if (parent != null) {
      forceDirectory(parent);
    }
  }

  private static void forceDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException | UnsupportedOperationException e) {
      // some providers (in-memory ones, other platforms) cannot open a directory; nothing to make durable
      log.debug("cannot fsync directory {}: {}", dir, e.toString());
    }
  }

  private record Slot(long counter, NodeMetadata body) {}

  private static Optional<Slot> parse(byte[] bytes) {
    if (bytes.length < HEADER + 4) {
      return Optional.empty();
    }
    ByteBuffer buf = ByteBuffer.wrap(bytes);
    if (buf.getInt() != MAGIC || buf.getInt() != FORMAT) {
      return Optional.empty();
    }
    long counter = buf.getLong();
    int length = buf.getInt();
    if (length < 0 || length > MAX_BODY || HEADER + length + 4 != bytes.length) {
      return Optional.empty();
    }
    CRC32C crc = new CRC32C();
    crc.update(bytes, 0, HEADER + length);
    int stored = ByteBuffer.wrap(bytes, HEADER + length, 4).getInt();
    if ((int) crc.getValue() != stored) {
      return Optional.empty();
    }
    try {
      return Optional.of(new Slot(counter, NodeMetadata.parseFrom(ByteBuffer.wrap(bytes, HEADER, length))));
    } catch (InvalidProtocolBufferException e) {
      return Optional.empty();
    }
  }
}
