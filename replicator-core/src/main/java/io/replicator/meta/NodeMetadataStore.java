package io.replicator.meta;

import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.proto.NodeMetadata;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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
  private static final int MAX_BODY = 16 << 20;
  static final String[] SLOTS = {"node-meta.0", "node-meta.1"};

  private final SlotFiles slots;
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

  private NodeMetadataStore(SlotFiles slots, long counter, NodeMetadata current, Found found) {
    this.slots = slots;
    this.counter = counter;
    this.current = current;
    this.found = found;
  }

  /** Opens the store in {@code dir}, creating the directory when missing, and reads the newest valid slot. */
  public static NodeMetadataStore open(Path dir) throws IOException {
    checkNotNull(dir, "dir");
    createDurably(dir.toAbsolutePath());
    SlotFiles slots = new SlotFiles(dir, SLOTS, MAGIC, FORMAT, MAX_BODY);
    SlotFiles.Loaded<NodeMetadata> loaded = slots.load(NodeMetadata::parseFrom);
    if (loaded.value() != null) {
      return new NodeMetadataStore(slots, loaded.counter(), loaded.value(), Found.VALID);
    }
    Found found = loaded.anyFile() ? Found.CORRUPT : Found.NONE;
    if (found == Found.CORRUPT) {
      log.error("no valid metadata in {}: the peer must be treated as out of date (full resync)", dir);
    }
    return new NodeMetadataStore(slots, 0, NodeMetadata.getDefaultInstance(), found);
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
    slots.write(nextCounter, next.toByteArray());
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
}
