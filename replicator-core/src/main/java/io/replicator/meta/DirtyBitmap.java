package io.replicator.meta;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.ChangePaths;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.NoSuchElementException;
import java.util.PrimitiveIterator;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.LongConsumer;
import org.roaringbitmap.longlong.LongIterator;
import org.roaringbitmap.longlong.Roaring64NavigableMap;

/**
 * Internal: what changed while the peer was absent or behind: per file one bit per block (in a
 * compressed {@link Roaring64NavigableMap}, so memory follows the dirty data, not the file sizes),
 * and the dirty paths whose whole entry (existence, type, size, attributes and, for a file or
 * directory that was created, moved or truncated, its content) the resync must reconcile.
 * Thread-safe: every operation holds the bitmap's monitor.
 */
public final class DirtyBitmap {
  /** The default block size: the page size most file systems and disks work in. */
  public static final int DEFAULT_BLOCK_SIZE = 4096;

  private static final int MAGIC = 0x52504442; // "RPDB"
  /** 2 added the renames; 1 (without them) is still read. */
  private static final int FORMAT = 2;
  /** Renames remembered for the resync to replay; later ones are not (a prefix replays consistently). */
  static final int MAX_RENAMES = 10_000;
  /** Writes up to this many blocks are marked block by block; larger ones as a range. */
  private static final int SMALL_RANGE_BLOCKS = 64;

  private final int blockSize;
  private final int shift;
  private final TreeMap<String, Roaring64NavigableMap> blocks = new TreeMap<>();
  private final TreeSet<String> paths = new TreeSet<>();
  private final List<Rename> renames = new ArrayList<>();
  /**
   * The dirty blocks over all files, kept as they are marked and cleared (guarded by this), so
   * {@code status()} costs the same whether ten files or ten million are dirty.
   */
  private long blockCount;

  /**
   * A rename the peer missed, in the order they were made: the resync replays them on the peer
   * (where the source is still there) before comparing, so a renamed file or directory is not sent
   * again. Only a hint: both names are dirty paths and are reconciled whatever the replay did.
   */
  public record Rename(String source, String target, boolean replaceExisting) {}

  /** An empty bitmap with {@link #DEFAULT_BLOCK_SIZE}. */
  public DirtyBitmap() {
    this(DEFAULT_BLOCK_SIZE);
  }

  /** An empty bitmap; {@code blockSize} must be a power of two (so a block index is a shift, not a division). */
  public DirtyBitmap(int blockSize) {
    checkArgument(blockSize > 0 && Integer.bitCount(blockSize) == 1, "block size %s is not a power of two", blockSize);
    this.blockSize = blockSize;
    this.shift = Integer.numberOfTrailingZeros(blockSize);
  }

  public int blockSize() {
    return blockSize;
  }

  /** Marks every block that {@code length} bytes written at {@code position} touch. */
  public void markWrite(String path, long position, long length) {
    ChangePaths.check(path);
    checkArgument(position >= 0 && length >= 0, "negative position %s or length %s", position, length);
    if (length == 0) {
      return;
    }
    long first = position >>> shift;
    // Saturate instead of overflowing: a range reaching the largest offset marks up to the last block.
    long end = position + length < 0 ? Long.MAX_VALUE : position + length;
    long last = (end - 1) >>> shift;
    synchronized (this) {
      Roaring64NavigableMap map = blocks.computeIfAbsent(path, p -> newMap());
      if (last - first < SMALL_RANGE_BLOCKS) {
        // block by block: a cardinality costs as many steps as the file has 64 Ki-block chunks
        for (long block = first; block <= last; block++) {
          if (!map.contains(block)) {
            map.addLong(block);
            blockCount++;
          }
        }
      } else {
        long before = map.getLongCardinality();
        map.addRange(first, last + 1);
        blockCount += map.getLongCardinality() - before;
      }
    }
  }

  /**
   * Marks what {@code change} touched: the blocks of a write, a truncation or a deletion, both
   * names of a rename, the entry of anything else (a force touches nothing).
   */
  public void mark(io.replicator.change.FileChange change) {
    if (change instanceof io.replicator.change.FileChange.Write w) {
      markWrite(w.path(), w.position(), w.length());
    } else if (change instanceof io.replicator.change.FileChange.WriteFile w) {
      for (io.replicator.change.FileChange.WriteFile.Piece piece : w.ranges()) {
        markWrite(w.path(), piece.position(), piece.length());
      }
      markPath(w.path());
    } else if (change instanceof io.replicator.change.FileChange.Truncate t) {
      markTruncate(t.path(), t.size());
    } else if (change instanceof io.replicator.change.FileChange.Delete d) {
      markDelete(d.path());
    } else if (change instanceof io.replicator.change.FileChange.Move m) {
      markMove(m.source(), m.target(), m.replaceExisting());
    } else if (!(change instanceof io.replicator.change.FileChange.Force)) {
      markPath(change.path());
    }
  }

  /** Marks all blocks of extent {@code extentIndex} of {@code extentSize} bytes (e.g. a peer's hot extent). */
  public void markExtent(String path, long extentIndex, long extentSize) {
    checkArgument(extentIndex >= 0 && extentSize > 0, "bad extent %s of size %s", extentIndex, extentSize);
    long start;
    try {
      start = Math.multiplyExact(extentIndex, extentSize);
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException("extent " + extentIndex + " of size " + extentSize + " is out of range");
    }
    markWrite(path, start, extentSize);
  }

  /** The entry at {@code path} changed as a whole (created, attributes...): the resync reconciles it. */
  public void markPath(String path) {
    ChangePaths.check(path);
    synchronized (this) {
      paths.add(path);
    }
  }

  /**
   * {@code source} was renamed to {@code target}: the blocks of source and of everything under it move to
   * the new names (replacing what target held: that content no longer exists), and both names are dirty.
   */
  public void markMove(String source, String target) {
    markMove(source, target, true);
  }

  /** As {@link #markMove(String, String)}, remembering the rename (and whether it replaced the target) for replay. */
  public void markMove(String source, String target, boolean replaceExisting) {
    ChangePaths.check(source);
    ChangePaths.check(target);
    checkArgument(!source.isEmpty() && !target.isEmpty(), "the root cannot be moved");
    synchronized (this) {
      if (source.equals(target)) {
        paths.add(source);
        return;
      }
      Map<String, Roaring64NavigableMap> moved = removeSubtree(source);
      removeSubtree(target);
      for (Map.Entry<String, Roaring64NavigableMap> e : moved.entrySet()) {
        blocks.put(target + e.getKey().substring(source.length()), e.getValue());
        blockCount += e.getValue().getLongCardinality();
      }
      paths.add(source);
      paths.add(target);
      if (renames.size() < MAX_RENAMES) {
        renames.add(new Rename(source, target, replaceExisting));
      } else if (renames.size() == MAX_RENAMES) {
        // a sentinel: replay stops here, so what was replayed is a consistent prefix
        renames.add(new Rename("", "", false));
      }
    }
  }

  /** {@code path} (and anything under it) was deleted: its blocks no longer matter, its name is dirty. */
  public void markDelete(String path) {
    ChangePaths.check(path);
    synchronized (this) {
      removeSubtree(path);
      paths.add(path);
    }
  }

  /** {@code path} was cut to {@code size} bytes: blocks wholly beyond are dropped, the path is dirty. */
  public void markTruncate(String path, long size) {
    ChangePaths.check(path);
    checkArgument(size >= 0, "negative size %s", size);
    // The block holding the new end keeps its bit: its head may still differ from the peer's.
    long firstGone = size == 0 ? 0 : ((size - 1) >>> shift) + 1;
    synchronized (this) {
      Roaring64NavigableMap map = blocks.get(path);
      if (map != null) {
        // Remove from the top: work follows the dirty blocks, never the size of the dropped range.
        while (!map.isEmpty() && map.last() >= firstGone) {
          map.removeLong(map.last());
          blockCount--;
        }
        if (map.isEmpty()) {
          blocks.remove(path);
        }
      }
      paths.add(path);
    }
  }

  /** Block {@code blockIndex} of {@code path} was resynced. */
  public synchronized void clearBlock(String path, long blockIndex) {
    Roaring64NavigableMap map = blocks.get(path);
    if (map != null && map.contains(blockIndex)) {
      map.removeLong(blockIndex);
      blockCount--;
      if (map.isEmpty()) {
        blocks.remove(path);
      }
    }
  }

  /** The entry at {@code path} was reconciled; its dirty blocks (if any) stay until cleared one by one. */
  public synchronized void clearPath(String path) {
    paths.remove(path);
  }

  /** Everything was resynced. */
  public synchronized void clearAll() {
    blocks.clear();
    blockCount = 0;
    paths.clear();
    renames.clear();
  }

  /** Adds everything {@code other} marked (same block size required). */
  public void union(DirtyBitmap other) {
    checkNotNull(other, "other");
    checkArgument(other.blockSize == blockSize, "block sizes differ: %s and %s", blockSize, other.blockSize);
    if (other == this) {
      return;
    }
    // Copy first, then lock this: never hold both monitors, so two unions in opposite directions cannot deadlock.
    Snapshot theirs = other.snapshot();
    synchronized (this) {
      paths.addAll(theirs.paths);
      for (Map.Entry<String, Roaring64NavigableMap> e : theirs.blocks.entrySet()) {
        Roaring64NavigableMap map = blocks.computeIfAbsent(e.getKey(), p -> newMap());
        long before = map.getLongCardinality();
        map.or(e.getValue());
        blockCount += map.getLongCardinality() - before;
      }
    }
  }

  /** How many paths are dirty (namespace or attribute changes to reconcile). */
  public synchronized int dirtyPathCount() {
    return paths.size();
  }

  public synchronized boolean isEmpty() {
    return blocks.isEmpty() && paths.isEmpty();
  }

  /** How many dirty blocks there are over all files. */
  public synchronized long dirtyBlocks() {
    return blockCount;
  }

  /** Dirty blocks times the block size (saturating at {@link Long#MAX_VALUE}). */
  public long dirtyBytes() {
    return bytes(dirtyBlocks(), blockSize);
  }

  /** An immutable copy; it takes memory in proportion to what is dirty (compressed), not to file sizes. */
  public synchronized Snapshot snapshot() {
    TreeMap<String, Roaring64NavigableMap> copy = new TreeMap<>();
    for (Map.Entry<String, Roaring64NavigableMap> e : blocks.entrySet()) {
      copy.put(e.getKey(), copyOf(e.getValue()));
    }
    List<Rename> replayable = new ArrayList<>();
    for (Rename r : renames) {
      if (r.source().isEmpty()) {
        break;
      }
      replayable.add(r);
    }
    return new Snapshot(blockSize, copy, new ArrayList<>(paths), replayable);
  }

  /**
   * The portable form: {@code "RPDB", format, block size, dirty path count, paths, file count, then per
   * file its path and the Roaring portable serialization}, strings as length-prefixed UTF-8.
   */
  public byte[] serialize() {
    Snapshot s = snapshot();
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      DataOutputStream out = new DataOutputStream(bytes);
      out.writeInt(MAGIC);
      out.writeInt(FORMAT);
      out.writeInt(blockSize);
      out.writeInt(s.paths.size());
      for (String p : s.paths) {
        writeString(out, p);
      }
      out.writeInt(s.blocks.size());
      for (Map.Entry<String, Roaring64NavigableMap> e : s.blocks.entrySet()) {
        writeString(out, e.getKey());
        Roaring64NavigableMap map = e.getValue();
        map.runOptimize();
        // Serialized apart for its exact length: serializedSizeInBytes() follows the global
        // serialization mode, which need not be the portable one written here.
        ByteArrayOutputStream one = new ByteArrayOutputStream();
        DataOutputStream oneOut = new DataOutputStream(one);
        map.serializePortable(oneOut);
        oneOut.flush();
        out.writeLong(one.size());
        one.writeTo(out);
      }
      out.writeInt(s.renames.size());
      for (Rename r : s.renames) {
        writeString(out, r.source());
        writeString(out, r.target());
        out.writeBoolean(r.replaceExisting());
      }
      out.flush();
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e); // a byte array stream does not fail
    }
  }

  /**
   * Reads {@link #serialize()}'s form.
   *
   * @throws IOException when the bytes are not a valid bitmap (every count and length is checked
   *     against what is left, so damaged input cannot make it allocate without bound)
   */
  public static DirtyBitmap deserialize(byte[] data) throws IOException {
    checkNotNull(data, "data");
    try {
      DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
      int format = in.readInt() == MAGIC ? in.readInt() : -1;
      if (format != 1 && format != FORMAT) {
        throw new IOException("not a dirty bitmap (bad magic or format)");
      }
      int blockSize = in.readInt();
      if (blockSize <= 0 || Integer.bitCount(blockSize) != 1) {
        throw new IOException("bad block size " + blockSize);
      }
      DirtyBitmap bitmap = new DirtyBitmap(blockSize);
      int pathCount = count(in);
      for (int i = 0; i < pathCount; i++) {
        bitmap.paths.add(readPath(in));
      }
      int fileCount = count(in);
      for (int i = 0; i < fileCount; i++) {
        String path = readPath(in);
        long size = in.readLong();
        if (size < 0 || size > in.available()) {
          throw new IOException("bitmap of " + path + " claims " + size + " bytes, " + in.available() + " left");
        }
        byte[] chunk = new byte[(int) size];
        in.readFully(chunk);
        Roaring64NavigableMap map = newMap();
        DataInputStream chunkIn = new DataInputStream(new ByteArrayInputStream(chunk));
        map.deserializePortable(chunkIn);
        if (chunkIn.available() != 0) {
          throw new IOException("bitmap of " + path + " has trailing bytes");
        }
        if (!map.isEmpty()) {
          bitmap.blocks.put(path, map);
          bitmap.blockCount += map.getLongCardinality();
        }
      }
      if (format >= 2) {
        int renameCount = count(in);
        for (int i = 0; i < renameCount; i++) {
          String source = readPath(in);
          String target = readPath(in);
          bitmap.renames.add(new Rename(source, target, in.readBoolean()));
        }
      }
      if (in.available() != 0) {
        throw new IOException("trailing bytes after the bitmap");
      }
      return bitmap;
    } catch (IOException e) {
      throw e;
    } catch (RuntimeException e) {
      // Roaring's reader trusts its input; whatever it trips on is a damaged bitmap to us.
      throw new IOException("damaged dirty bitmap: " + e, e);
    }
  }

  /**
   * Internal: an immutable view of a {@link DirtyBitmap}: the dirty paths and, per file, its dirty
   * block indices in ascending order.
   */
  public static final class Snapshot {
    private final int blockSize;
    private final SortedMap<String, Roaring64NavigableMap> blocks;
    private final List<String> paths;

    private final List<Rename> renames;

    private Snapshot(int blockSize, SortedMap<String, Roaring64NavigableMap> blocks, List<String> paths,
        List<Rename> renames) {
      this.blockSize = blockSize;
      this.blocks = blocks;
      this.paths = Collections.unmodifiableList(paths);
      this.renames = Collections.unmodifiableList(renames);
    }

    /** The renames the peer missed, in the order they were made (see {@link Rename}). */
    public List<Rename> renames() {
      return renames;
    }

    public int blockSize() {
      return blockSize;
    }

    /** The dirty paths (namespace and attribute changes), sorted. */
    public List<String> paths() {
      return paths;
    }

    /** The files with dirty blocks, sorted. */
    public List<String> files() {
      return List.copyOf(blocks.keySet());
    }

    /** How many blocks of {@code path} are dirty. */
    public long blockCount(String path) {
      Roaring64NavigableMap map = blocks.get(path);
      return map == null ? 0 : map.getLongCardinality();
    }

    /** The dirty block indices of {@code path}, ascending, decoded as they are iterated. */
    public PrimitiveIterator.OfLong blocks(String path) {
      Roaring64NavigableMap map = blocks.get(path);
      if (map == null) {
        return new Iter(null);
      }
      return new Iter(map.getLongIterator());
    }

    /** Calls {@code action} with each dirty block index of {@code path}, ascending. */
    public void forEachBlock(String path, LongConsumer action) {
      blocks(path).forEachRemaining(action);
    }

    public long dirtyBlocks() {
      return countBlocks(blocks);
    }

    public long dirtyBytes() {
      return bytes(dirtyBlocks(), blockSize);
    }

    public boolean isEmpty() {
      return blocks.isEmpty() && paths.isEmpty();
    }
  }

  private static final class Iter implements PrimitiveIterator.OfLong {
    private final LongIterator it;

    Iter(LongIterator it) {
      this.it = it;
    }

    @Override
    public boolean hasNext() {
      return it != null && it.hasNext();
    }

    @Override
    public long nextLong() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return it.next();
    }
  }

  /** Removes and returns the entries of {@code path} and of everything under it. */
  private TreeMap<String, Roaring64NavigableMap> removeSubtree(String path) {
    TreeMap<String, Roaring64NavigableMap> removed = new TreeMap<>();
    if (path.isEmpty()) {
      removed.putAll(blocks); // the root: everything
      blocks.clear();
      blockCount = 0;
      return removed;
    }
    Roaring64NavigableMap own = blocks.remove(path);
    if (own != null) {
      removed.put(path, own);
    }
    // Keys under "p" are exactly those in ["p/", "p0"): '0' is the character after '/'. Siblings
    // such as "p.txt" or "p-x" sort between "p" and "p/" and are left alone.
    NavigableMap<String, Roaring64NavigableMap> under = blocks.subMap(path + '/', true, path + '0', false);
    removed.putAll(under);
    under.clear();
    blockCount -= countBlocks(removed);
    return removed;
  }

  private static Roaring64NavigableMap newMap() {
    return new Roaring64NavigableMap();
  }

  private static Roaring64NavigableMap copyOf(Roaring64NavigableMap map) {
    Roaring64NavigableMap copy = newMap();
    copy.or(map);
    return copy;
  }

  private static long countBlocks(Map<String, Roaring64NavigableMap> blocks) {
    long n = 0;
    for (Roaring64NavigableMap map : blocks.values()) {
      n += map.getLongCardinality();
    }
    return n;
  }

  private static long bytes(long blocks, int blockSize) {
    long hi = Math.multiplyHigh(blocks, blockSize);
    long lo = blocks * blockSize;
    return hi != 0 || lo < 0 ? Long.MAX_VALUE : lo;
  }

  private static int count(DataInputStream in) throws IOException {
    int n = in.readInt();
    // Every entry takes at least four bytes, so a count beyond that is damage, not a reason to allocate.
    if (n < 0 || n > in.available() / 4) {
      throw new IOException("bad count " + n);
    }
    return n;
  }

  private static void writeString(DataOutputStream out, String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    out.writeInt(b.length);
    out.write(b);
  }

  private static String readPath(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > in.available() || n > ChangePaths.MAX_LENGTH * 3) {
      throw new IOException("bad string length " + n);
    }
    byte[] b = new byte[n];
    in.readFully(b);
    String path = new String(b, StandardCharsets.UTF_8);
    String problem = ChangePaths.problem(path);
    if (problem != null) {
      throw new IOException("bad path in bitmap: " + problem);
    }
    return path;
  }
}
