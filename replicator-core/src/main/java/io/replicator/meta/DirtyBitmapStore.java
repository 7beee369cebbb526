package io.replicator.meta;

import static com.google.common.base.Preconditions.checkNotNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Internal: keeps a {@link DirtyBitmap} durable across restarts and {@code kill -9}, in two slots
 * written in turn with a counter and a CRC32C (the scheme of {@link NodeMetadataStore}), so a torn
 * write leaves the previous bitmap intact. A store whose slots are all damaged reports {@link
 * StoreState#CORRUPT}: the changes it tracked are lost and the peer needs a full resync.
 */
public final class DirtyBitmapStore {
  private static final Logger log = LoggerFactory.getLogger(DirtyBitmapStore.class);
  private static final int MAGIC = 0x5250424d; // "RPBM"
  private static final int FORMAT = 1;
  /** Largest bitmap kept: far beyond 1% of a TiB scattered (about 5 MiB); beyond it a full resync is cheaper anyway. */
  static final int MAX_BODY = 512 << 20;
  static final String[] SLOTS = {"dirty-bitmap.0", "dirty-bitmap.1"};

  private final SlotFiles slots;
  private final StoreState found;
  private final DirtyBitmap loaded;
  private long counter;

  private DirtyBitmapStore(SlotFiles slots, StoreState found, DirtyBitmap loaded, long counter) {
    this.slots = slots;
    this.found = found;
    this.loaded = loaded;
    this.counter = counter;
  }

  /** Opens the store in {@code dir} (created when missing) with {@link DirtyBitmap#DEFAULT_BLOCK_SIZE} for a new bitmap. */
  public static DirtyBitmapStore open(Path dir) throws IOException {
    return open(dir, DirtyBitmap.DEFAULT_BLOCK_SIZE);
  }

  /**
   * Opens the store in {@code dir} and reads the newest valid bitmap; when there is none, {@link
   * #bitmap()} is empty with {@code blockSize} (a stored bitmap keeps its own block size).
   */
  public static DirtyBitmapStore open(Path dir, int blockSize) throws IOException {
    checkNotNull(dir, "dir");
    DirtyBitmap empty = new DirtyBitmap(blockSize);
    Files.createDirectories(dir);
    SlotFiles slots = new SlotFiles(dir, SLOTS, MAGIC, FORMAT, MAX_BODY);
    SlotFiles.Loaded<DirtyBitmap> loaded = slots.load(body -> {
      byte[] bytes = new byte[body.remaining()];
      body.get(bytes);
      return DirtyBitmap.deserialize(bytes);
    });
    if (loaded.value() != null) {
      return new DirtyBitmapStore(slots, StoreState.VALID, loaded.value(), loaded.counter());
    }
    if (loaded.anyFile()) {
      log.error("no valid dirty bitmap in {}: what changed is unknown, the peer needs a full resync", dir);
      return new DirtyBitmapStore(slots, StoreState.CORRUPT, empty, 0);
    }
    return new DirtyBitmapStore(slots, StoreState.NONE, empty, 0);
  }

  /** What {@link #open} found. */
  public StoreState found() {
    return found;
  }

  /** The bitmap read at open (empty when none was valid); the caller keeps marking it and {@link #write}s it back. */
  public DirtyBitmap bitmap() {
    return loaded;
  }

  /** Writes {@code bitmap} durably into the older slot; when this returns, a crash cannot lose it. */
  public synchronized void write(DirtyBitmap bitmap) throws IOException {
    checkNotNull(bitmap, "bitmap");
    long next = counter + 1;
    slots.write(next, bitmap.serialize());
    counter = next;
  }
}
