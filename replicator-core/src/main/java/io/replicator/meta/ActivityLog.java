package io.replicator.meta;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.ChangePaths;
import io.replicator.proto.HotExtent;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Internal: the primary's activity log (after DRBD's): before a write enters an extent that is not
 * already hot, the extent is recorded durably, so after a crash of the primary only its hot extents
 * (and hot namespace paths) can differ from the peer. Least recently used extents are retired lazily.
 * Thread-safe; a write into hot extents takes no lock and does no I/O (and allocates nothing unless
 * its directory's entries are what covers it).
 *
 * <p>Updates are batched, as DRBD batches its activity-log transactions: writers that need new
 * extents at the same time share one append and one fsync (group commit); a write that streams
 * sequentially records the next extents ahead of it, so a long sequential file costs one record
 * every {@value #AHEAD} extents rather than one per extent; and a file created in a directory makes
 * that directory's entries hot (its {@linkplain #hotPaths() hot path}: after a crash the directory is
 * compared whole), which covers the name and the first extent of every file created there, so a
 * directory filling with small files costs one record, not one per file. The file is preallocated
 * with zeros, so an append overwrites allocated space and its fsync carries no change of the
 * file's size.
 *
 * <p>File {@value #FILE}: a header {@code "RPAL", uint32 format, int64 extent size}, then frames
 * {@code uint32 length, body, uint32 crc32c(length, body)}, one per append, then zeros up to the
 * preallocated size; a body is a sequence of records {@code byte type (1 hot, 2 cold), int64 extent
 * (-1: the path itself; -2: the entries of a directory), uint32 length, UTF-8 path}. A crash can only tear the last frame, which
 * replay drops; damage before the last frame is reported {@link StoreState#CORRUPT}.
 */
public final class ActivityLog implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(ActivityLog.class);

  public static final long DEFAULT_EXTENT_SIZE = 4L << 20;
  public static final int DEFAULT_MAX_HOT_EXTENTS = 1024;
  static final String FILE = "activity.log";
  /** Name of the log file in its directory, for callers that only want to know whether one exists. */
  public static final String FILE_NAME = FILE;
  static final String TEMP = "activity.log.tmp";
  static final String CORRUPT_COPY = "activity.log.corrupt";

  private static final int MAGIC = 0x5250414c; // "RPAL"
  private static final int FORMAT = 1;
  private static final int HEADER = 4 + 4 + 8;
  static final int MAX_FRAME = 1 << 20;
  private static final byte HOT = 1;
  private static final byte COLD = 2;
  /** The extent index that stands for the path itself (a namespace change in flight). */
  static final long NAMESPACE = -1;
  /**
   * The extent index that stands for the entries of a directory: their names, and the first extent
   * of each file among them. Recovery reconciles the directory whole, which covers both.
   */
  static final long ENTRIES = -2;
  /** Most extents one call may make hot: a bigger write must be split by the caller, or the bound means nothing. */
  static final long MAX_EXTENTS_PER_CALL = 1 << 16;
  /** Extents recorded ahead of a write that continues the extent before it (a sequential stream). */
  static final int AHEAD = 15;
  /** Zeros written ahead of the log's end, so appends do not grow the file. */
  static final int PREALLOCATE = 256 * 1024;

  /** Internal: a hot extent: bytes {@code [index * extentSize, (index + 1) * extentSize)} of {@code path}. */
  public record Extent(String path, long index) {}

  /** One hot entry; {@code lastUse} is a clock value, written racily on hits (an approximate LRU is enough). */
  private static final class Entry {
    final String path;
    final long index;
    volatile long lastUse;

    Entry(String path, long index, long lastUse) {
      this.path = path;
      this.index = index;
      this.lastUse = lastUse;
    }
  }

  /** The hot entries of one path, sorted by index; replaced whole under the lock, read without it. */
  private record FileHot(long[] indices, Entry[] entries) {
    Entry find(long index) {
      int i = Arrays.binarySearch(indices, index);
      return i >= 0 ? entries[i] : null;
    }
  }

  private final Path dir;
  private final Path file;
  private final long extentSize;
  private final int maxHot;
  private final StoreState found;
  private final long droppedTailBytes;
  private final ConcurrentHashMap<String, FileHot> hot = new ConcurrentHashMap<>();
  private final AtomicLong clock = new AtomicLong();
  /** Guards the hot set and the batches; held for no I/O except compaction and clear. */
  private final ReentrantLock lock = new ReentrantLock();
  /** Serialises the log's I/O: one batch is written and fsynced at a time. */
  private final ReentrantLock ioLock = new ReentrantLock();

  // guarded by lock
  private int hotCount;
  private FileChannel channel;
  /** End of the last frame: where the next append goes. */
  private long fileSize;
  /** Bytes of the file, zeros after {@link #fileSize}. */
  private long allocatedSize;
  private long recordsInFile;
  private boolean closed;
  /** Records waiting for the next append; writers join it until a flush takes it. */
  private Batch open = new Batch();
  /** The batch being written, or null. */
  private Batch writing;

  /** Test hook: fsyncs of the log file (appends and compactions). */
  final AtomicLong fsyncs = new AtomicLong();
  /** Test hook: compaction waits until the log holds this many records at least (and 4x the hot set). */
  volatile int compactMinRecords = 256;

  private ActivityLog(Path dir, long extentSize, int maxHot, StoreState found, long droppedTailBytes) {
    this.dir = dir;
    this.file = dir.resolve(FILE);
    this.extentSize = extentSize;
    this.maxHot = maxHot;
    this.found = found;
    this.droppedTailBytes = droppedTailBytes;
  }

  /** Opens the log in {@code dir} with {@link #DEFAULT_EXTENT_SIZE} and {@link #DEFAULT_MAX_HOT_EXTENTS}. */
  public static ActivityLog open(Path dir) throws IOException {
    return open(dir, DEFAULT_EXTENT_SIZE, DEFAULT_MAX_HOT_EXTENTS);
  }

  /**
   * Opens (or creates) the log in {@code dir} and replays it. A log written with another extent size
   * keeps its own (its records mean byte ranges of that size); see {@link #extentSize()}.
   */
  public static ActivityLog open(Path dir, long extentSize, int maxHotExtents) throws IOException {
    checkNotNull(dir, "dir");
    checkArgument(extentSize > 0, "extent size %s", extentSize);
    checkArgument(maxHotExtents > 0, "max hot extents %s", maxHotExtents);
    Files.createDirectories(dir);
    Path file = dir.resolve(FILE);
    Files.deleteIfExists(dir.resolve(TEMP)); // a compaction that a crash interrupted; the log itself is intact
    if (!Files.exists(file)) {
      ActivityLog al = new ActivityLog(dir, extentSize, maxHotExtents, StoreState.NONE, 0);
      al.lock.lock();
      try {
        al.rewrite(List.of());
      } finally {
        al.lock.unlock();
      }
      return al;
    }
    Replay replay = replay(file);
    long size = replay.extentSize > 0 ? replay.extentSize : extentSize;
    if (replay.extentSize > 0 && replay.extentSize != extentSize) {
      log.warn("activity log {} uses extents of {} bytes, not {}; keeping its size", file, replay.extentSize, extentSize);
    }
    StoreState state = replay.corrupt ? StoreState.CORRUPT : StoreState.VALID;
    ActivityLog al = new ActivityLog(dir, size, maxHotExtents, state, replay.droppedTail);
    al.lock.lock();
    try {
      List<Entry> entries = byLastUse(new ArrayList<>(replay.hot.values()));
      for (Entry e : entries) {
        al.insert(e);
      }
      al.clock.set(replay.seq);
      if (replay.corrupt) {
        log.error("activity log {} is corrupt at offset {}: hot extents may be missing, a full resync is needed",
            file, replay.goodEnd);
        Files.copy(file, dir.resolve(CORRUPT_COPY), StandardCopyOption.REPLACE_EXISTING);
      } else if (replay.droppedTail > 0) {
        log.warn("activity log {}: dropped a torn tail of {} bytes left by a crash", file, replay.droppedTail);
      }
      if (replay.corrupt || replay.droppedTail > 0 || replay.extentSize <= 0) {
        // Never append after damage: the next replay would take the old damage for mid-file corruption.
        al.rewrite(entries);
      } else {
        al.channel = FileChannel.open(file, StandardOpenOption.WRITE);
        al.fileSize = replay.goodEnd;
        al.allocatedSize = al.channel.size();
        al.recordsInFile = replay.records;
      }
    } finally {
      al.lock.unlock();
    }
    return al;
  }

  /** What {@link #open} found: no log, a valid one (perhaps with a dropped torn tail) or a corrupt one. */
  public StoreState found() {
    return found;
  }

  /** Bytes of a torn last frame that open dropped (0 when the log ended cleanly). */
  public long droppedTailBytes() {
    return droppedTailBytes;
  }

  public long extentSize() {
    return extentSize;
  }

  public int maxHotExtents() {
    return maxHot;
  }

  /**
   * Call before writing {@code length} bytes at {@code position} of {@code path}: returns at once when
   * every touched extent is hot, otherwise records the new extents durably (fsync) before returning.
   */
  public void beforeWrite(String path, long position, long length) throws IOException {
    checkNotNull(path, "path");
    checkArgument(position >= 0 && length >= 0, "negative position %s or length %s", position, length);
    if (length == 0) {
      return;
    }
    long end = position + length < 0 ? Long.MAX_VALUE : position + length;
    long first = position / extentSize;
    long last = (end - 1) / extentSize;
    FileHot f = hot.get(path);
    if (f != null && touchAll(f, first, last)) {
      return;
    }
    if (first == 0 && last == 0 && entriesHot(directoryOf(path))) {
      return; // a small file's first write: covered by its directory's entries
    }
    ChangePaths.check(path);
    checkArgument(last - first < MAX_EXTENTS_PER_CALL, "write of %s bytes spans too many extents: split it", length);
    // continuing the extent before: a sequential stream, which will need the next ones soon
    boolean sequential = first > 0 && (f != null && f.find(first - 1) != null || first == 1 && entriesHot(directoryOf(path)));
    makeHot(path, first, last, sequential ? Math.min(AHEAD, maxHot / 16) : 0);
  }

  /**
   * Call before creating the file {@code path}: its name and its first extent become hot (a created
   * file is about to be written). In a directory other than the root, that is the directory's
   * entries, one record for every file created there; at the root, where reconciling the directory
   * would mean the whole tree, the file's own name and first extent, in one record.
   */
  public void beforeCreate(String path) throws IOException {
    checkNotNull(path, "path");
    ChangePaths.check(path);
    String directory = directoryOf(path);
    if (directory != null) {
      if (!entriesHot(directory)) {
        makeHot(directory, ENTRIES, ENTRIES, 0);
      }
      return;
    }
    FileHot f = hot.get(path);
    if (f != null && touchAll(f, NAMESPACE, 0)) {
      return;
    }
    makeHot(path, NAMESPACE, 0, 0);
  }

  /** Call before creating, deleting, renaming or truncating {@code path}: the path itself becomes hot. */
  public void beforeNamespaceChange(String path) throws IOException {
    checkNotNull(path, "path");
    FileHot f = hot.get(path);
    if (f != null && touchAll(f, NAMESPACE, NAMESPACE)) {
      return;
    }
    ChangePaths.check(path);
    makeHot(path, NAMESPACE, NAMESPACE, 0);
  }

  /** The hot extents now (namespace and directory entries excluded; see {@link #hotPaths()}). */
  public Set<Extent> hotExtents() {
    Set<Extent> out = new TreeSet<>(Comparator.comparing(Extent::path).thenComparingLong(Extent::index));
    for (FileHot f : hot.values()) {
      for (Entry e : f.entries) {
        if (e.index >= 0) {
          out.add(new Extent(e.path, e.index));
        }
      }
    }
    return out;
  }

  /**
   * The paths to reconcile whole after a crash, sorted: those made hot by {@link
   * #beforeNamespaceChange}, and the directories whose entries {@link #beforeCreate} made hot.
   */
  public Set<String> hotPaths() {
    Set<String> out = new TreeSet<>();
    for (FileHot f : hot.values()) {
      if (f.find(NAMESPACE) != null || f.find(ENTRIES) != null) {
        out.add(f.entries[0].path);
      }
    }
    return out;
  }

  /** How many entries (extents and paths) are hot. */
  public int hotCount() {
    lock.lock();
    try {
      return hotCount;
    } finally {
      lock.unlock();
    }
  }

  /** The hot extents in wire form (for the peer, which adds them to what it resyncs). */
  public List<HotExtent> toProto() {
    List<HotExtent> out = new ArrayList<>();
    for (Extent e : hotExtents()) {
      out.add(HotExtent.newBuilder().setPath(e.path()).setExtent(e.index()).setExtentSize(extentSize).build());
    }
    return out;
  }

  /** Adds every hot extent (as blocks) and hot path (as a dirty path) to {@code bitmap}: what a crash may have left different. */
  public void markInto(DirtyBitmap bitmap) {
    for (Extent e : hotExtents()) {
      bitmap.markExtent(e.path(), e.index(), extentSize);
    }
    for (String p : hotPaths()) {
      bitmap.markPath(p);
    }
  }

  /** A resync completed with the peer connected: nothing can differ, every extent is cold. */
  public void clear() throws IOException {
    ioLock.lock();
    lock.lock();
    try {
      ensureOpen();
      if (hotCount == 0 && open.isEmpty() && recordsInFile == 0) {
        return; // already empty on disk: nothing to write
      }
      hot.clear();
      hotCount = 0;
      rewrite(List.of());
    } finally {
      lock.unlock();
      ioLock.unlock();
    }
  }

  @Override
  public void close() throws IOException {
    ioLock.lock();
    lock.lock();
    try {
      closed = true;
      if (channel != null) {
        // a clean end: the zeros reserved ahead are not needed until the next open
        channel.truncate(fileSize);
        channel.close();
        channel = null;
      }
    } finally {
      lock.unlock();
      ioLock.unlock();
    }
  }

  /** The end of the log's last frame (the file may hold preallocated zeros beyond it); for tests. */
  long fileSize() {
    lock.lock();
    try {
      return fileSize;
    } finally {
      lock.unlock();
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** The directory {@code path} is in, or null at the root (whose entries are never made hot). */
  private static String directoryOf(String path) {
    int slash = path.lastIndexOf('/');
    return slash > 0 ? path.substring(0, slash) : null;
  }

  /** True when the entries of {@code directory} (null: none) are hot; stamps them as used. */
  private boolean entriesHot(String directory) {
    FileHot d = directory == null ? null : hot.get(directory);
    return d != null && touchAll(d, ENTRIES, ENTRIES);
  }

  /** True when all of {@code [first, last]} is hot; stamps them as used. No allocation, no lock. */
  private boolean touchAll(FileHot f, long first, long last) {
    long now = clock.get();
    for (long i = first; i <= last; i++) {
      Entry e = f.find(i);
      if (e == null) {
        return false;
      }
      if (e.lastUse != now) {
        e.lastUse = now; // skip the store when already current: fewer cache-line writes between threads
      }
    }
    return true;
  }

  /**
   * Makes {@code [first, last]} of {@code path} hot durably, with {@code ahead} more extents after
   * them when they are not hot yet. Writers that arrive while an append is being written join the
   * next one; whoever finds the next one unwritten writes it for everybody in it.
   */
  private void makeHot(String path, long first, long last, int ahead) throws IOException {
    Batch batch = null;
    lock.lock();
    try {
      ensureOpen();
      FileHot f = hot.get(path);
      long now = clock.get();
      boolean added = false;
      for (long i = first; i <= last; i++) {
        Entry e = f == null ? null : f.find(i);
        if (e != null) {
          e.lastUse = now;
          continue;
        }
        Extent key = new Extent(path, i);
        if (writing != null && writing.contains(key)) {
          batch = batch == null ? writing : batch; // on its way to the disk: wait for it
        } else if (!open.contains(key)) {
          open.add(HOT, key);
          added = true;
        }
        if (open.contains(key)) {
          batch = open;
        }
      }
      if (batch == null) {
        return; // another thread made them hot while we waited for the lock
      }
      if (added) {
        for (long i = last + 1; i <= last + ahead; i++) {
          Extent key = new Extent(path, i);
          if ((f == null || f.find(i) == null) && !open.contains(key)
              && (writing == null || !writing.contains(key))) {
            open.add(HOT, key);
          }
        }
      }
    } finally {
      lock.unlock();
    }
    // waiting for the open batch also waits for the one being written: they are written in turn
    flush(batch);
  }

  /** Returns once {@code batch} is durable (writing it, and everything joined since, when nobody did). */
  private void flush(Batch batch) throws IOException {
    ioLock.lock();
    try {
      if (batch.finished) {
        batch.rethrow();
        return;
      }
      List<Entry> evict;
      ByteBuffer frame;
      lock.lock();
      try {
        ensureOpen();
        // batches are taken only here, one at a time: an unfinished one is the open one
        writing = batch;
        open = new Batch();
        evict = chooseEvictions(batch);
        FrameWriter w = new FrameWriter();
        for (Extent key : batch.keys) {
          w.add(HOT, key.index(), key.path().getBytes(StandardCharsets.UTF_8));
        }
        // Cold records ride in the same append: they cost no fsync of their own, and losing them only
        // means resyncing a little more after a crash.
        for (Entry e : evict) {
          w.add(COLD, e.index, e.path.getBytes(StandardCharsets.UTF_8));
        }
        frame = w.finish();
      } finally {
        lock.unlock();
      }
      IOException failure = null;
      try {
        append(frame);
      } catch (IOException e) {
        failure = e;
      }
      lock.lock();
      try {
        writing = null;
        if (failure == null) {
          recordsInFile += batch.keys.size() + evict.size();
          // Publish only after the fsync: a writer that sees an extent hot must be covered by the log.
          for (Extent key : batch.keys) {
            insert(new Entry(key.path(), key.index(), clock.incrementAndGet()));
          }
          for (Entry e : evict) {
            remove(e.path, e.index);
          }
          if (recordsInFile > 4L * Math.max(hotCount, compactMinRecords)) {
            compact();
          }
        }
      } catch (IOException e) {
        failure = failure != null ? failure : e;
      } finally {
        lock.unlock();
        batch.done(failure);
      }
      batch.rethrow();
    } finally {
      ioLock.unlock();
    }
  }

  /** Records that wait to be appended together, and whether they were. */
  private static final class Batch {
    final List<Extent> keys = new ArrayList<>();
    private final Set<Extent> set = new java.util.HashSet<>();
    private volatile boolean finished;
    private volatile IOException failure;

    void add(byte type, Extent key) {
      if (set.add(key)) {
        keys.add(key);
      }
    }

    boolean contains(Extent key) {
      return set.contains(key);
    }

    boolean isEmpty() {
      return keys.isEmpty();
    }

    void done(IOException e) {
      failure = e;
      finished = true;
    }

    void rethrow() throws IOException {
      IOException e = failure;
      if (e != null) {
        throw new IOException("activity log append failed: " + e.getMessage(), e);
      }
    }
  }

  /**
   * When the new entries would take the hot set over the bound, picks the least recently used entries
   * (never those of the batch in hand) to bring it to 7/8 of the bound, so eviction is done in batches.
   */
  private List<Entry> chooseEvictions(Batch batch) {
    int adding = batch.keys.size();
    if (hotCount + adding <= maxHot) {
      return List.of();
    }
    int target = Math.max(0, maxHot - Math.max(1, maxHot / 8) - adding);
    List<Entry> candidates = new ArrayList<>(hotCount);
    for (FileHot f : hot.values()) {
      for (Entry e : f.entries) {
        if (!batch.contains(new Extent(e.path, e.index))) {
          candidates.add(e);
        }
      }
    }
    int excess = hotCount - target;
    if (excess <= 0) {
      return List.of();
    }
    List<Entry> sorted = byLastUse(candidates);
    return new ArrayList<>(sorted.subList(0, Math.min(excess, sorted.size())));
  }

  /**
   * Orders entries by a snapshot of their last use. Hits update {@code lastUse} without the lock,
   * so sorting by the live field can see a key change mid-sort, which TimSort rejects with
   * "Comparison method violates its general contract" (thrown into an application's write).
   */
  private static List<Entry> byLastUse(List<Entry> entries) {
    long[][] keyed = new long[entries.size()][2];
    for (int i = 0; i < keyed.length; i++) {
      keyed[i][0] = entries.get(i).lastUse;
      keyed[i][1] = i;
    }
    Arrays.sort(keyed, Comparator.comparingLong((long[] k) -> k[0]).thenComparingLong(k -> k[1]));
    List<Entry> out = new ArrayList<>(keyed.length);
    for (long[] k : keyed) {
      out.add(entries.get((int) k[1]));
    }
    return out;
  }

  private void insert(Entry e) {
    FileHot f = hot.get(e.path);
    if (f == null) {
      hot.put(e.path, new FileHot(new long[] {e.index}, new Entry[] {e}));
      hotCount++;
      return;
    }
    int i = Arrays.binarySearch(f.indices, e.index);
    if (i >= 0) {
      f.entries[i].lastUse = Math.max(f.entries[i].lastUse, e.lastUse);
      return;
    }
    int at = -i - 1;
    int n = f.indices.length;
    long[] indices = new long[n + 1];
    Entry[] entries = new Entry[n + 1];
    System.arraycopy(f.indices, 0, indices, 0, at);
    System.arraycopy(f.entries, 0, entries, 0, at);
    indices[at] = e.index;
    entries[at] = e;
    System.arraycopy(f.indices, at, indices, at + 1, n - at);
    System.arraycopy(f.entries, at, entries, at + 1, n - at);
    hot.put(e.path, new FileHot(indices, entries));
    hotCount++;
  }

  private void remove(String path, long index) {
    FileHot f = hot.get(path);
    if (f == null) {
      return;
    }
    int i = Arrays.binarySearch(f.indices, index);
    if (i < 0) {
      return;
    }
    hotCount--;
    int n = f.indices.length;
    if (n == 1) {
      hot.remove(path);
      return;
    }
    long[] indices = new long[n - 1];
    Entry[] entries = new Entry[n - 1];
    System.arraycopy(f.indices, 0, indices, 0, i);
    System.arraycopy(f.entries, 0, entries, 0, i);
    System.arraycopy(f.indices, i + 1, indices, i, n - i - 1);
    System.arraycopy(f.entries, i + 1, entries, i, n - i - 1);
    hot.put(path, new FileHot(indices, entries));
  }

  /**
   * Writes one frame at the end of the log and makes it durable. Under ioLock only: the channel
   * and the sizes are touched by nobody else meanwhile (compaction and clear hold ioLock too).
   */
  private void append(ByteBuffer buf) throws IOException {
    long before = fileSize;
    int length = buf.remaining();
    FileChannel ch = channel;
    if (ch == null) {
      throw new IOException("activity log is unusable after a failed write; reopen it");
    }
    try {
      boolean grows = before + buf.remaining() > allocatedSize;
      long at = before;
      while (buf.hasRemaining()) {
        at += ch.write(buf, at);
      }
      if (grows) {
        allocatedSize = preallocate(ch, at);
      }
      // data only when the frame overwrote preallocated zeros; with the size too when it grew
      ch.force(grows);
      fsyncs.incrementAndGet();
      fileSize = at;
    } catch (IOException e) {
      // Zero what a failed append left, so later appends do not follow a damaged frame.
      try {
        ByteBuffer zeros = ByteBuffer.allocate(length);
        while (zeros.hasRemaining()) {
          ch.write(zeros, before + zeros.position());
        }
        ch.force(false);
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
        closeQuietly();
      }
      throw e;
    }
  }

  /** Writes zeros from {@code end} to the next {@link #PREALLOCATE} boundary past it; returns the new size. */
  private static long preallocate(FileChannel ch, long end) throws IOException {
    long target = (end / PREALLOCATE + 1) * PREALLOCATE;
    ByteBuffer zeros = ByteBuffer.allocate(64 * 1024);
    for (long at = Math.max(end, ch.size()); at < target; ) {
      zeros.clear().limit((int) Math.min(zeros.capacity(), target - at));
      at += ch.write(zeros, at);
    }
    return Math.max(target, ch.size());
  }

  /** Rewrites the log as a snapshot of the hot set: the size stays proportional to the hot set. */
  private void compact() throws IOException {
    List<Entry> entries = new ArrayList<>(hotCount);
    for (FileHot f : hot.values()) {
      entries.addAll(Arrays.asList(f.entries));
    }
    entries = byLastUse(entries); // replay keeps the LRU order
    rewrite(entries);
  }

  /** Writes a new file (temp, fsync, atomic rename, fsync of the directory) holding {@code entries} as hot. */
  private void rewrite(List<Entry> entries) throws IOException {
    closeQuietly();
    Path temp = dir.resolve(TEMP);
    FrameWriter w = new FrameWriter();
    for (Entry e : entries) {
      w.add(HOT, e.index, e.path.getBytes(StandardCharsets.UTF_8));
    }
    ByteBuffer header = ByteBuffer.allocate(HEADER).putInt(MAGIC).putInt(FORMAT).putLong(extentSize).flip();
    ByteBuffer body = w.finish();
    long end;
    long allocated;
    try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      while (header.hasRemaining()) {
        ch.write(header);
      }
      while (body.hasRemaining()) {
        ch.write(body);
      }
      end = ch.position();
      allocated = preallocate(ch, end);
      ch.force(true);
      fsyncs.incrementAndGet();
    }
    Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    SlotFiles.forceDirectory(dir);
    channel = FileChannel.open(file, StandardOpenOption.WRITE);
    fileSize = end;
    allocatedSize = allocated;
    recordsInFile = entries.size();
  }

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException("activity log is closed");
    }
    if (channel == null) {
      throw new IOException("activity log is unusable after a failed write; reopen it");
    }
  }

  private void closeQuietly() {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException e) {
        log.debug("closing activity log: {}", e.toString());
      }
      channel = null;
    }
  }

  /** Builds frames of at most {@link #MAX_FRAME} bytes; each gets its length and CRC. */
  private static final class FrameWriter {
    private final List<byte[]> frames = new ArrayList<>();
    private ByteBuffer body = ByteBuffer.allocate(256);

    void add(byte type, long index, byte[] path) {
      int size = 1 + 8 + 4 + path.length;
      if (body.position() > 0 && body.position() + size > MAX_FRAME) {
        flushFrame();
      }
      if (body.remaining() < size) {
        ByteBuffer bigger = ByteBuffer.allocate(Math.max(body.capacity() * 2, body.position() + size));
        body.flip();
        bigger.put(body);
        body = bigger;
      }
      body.put(type).putLong(index).putInt(path.length).put(path);
    }

    private void flushFrame() {
      int length = body.position();
      ByteBuffer frame = ByteBuffer.allocate(4 + length + 4);
      frame.putInt(length).put(body.array(), 0, length);
      CRC32C crc = new CRC32C();
      crc.update(frame.array(), 0, 4 + length);
      frame.putInt((int) crc.getValue());
      frames.add(frame.array());
      body.clear();
    }

    ByteBuffer finish() {
      if (body.position() > 0) {
        flushFrame();
      }
      int total = 0;
      for (byte[] f : frames) {
        total += f.length;
      }
      ByteBuffer all = ByteBuffer.allocate(total);
      for (byte[] f : frames) {
        all.put(f);
      }
      return all.flip();
    }
  }

  /** What replay found. */
  private static final class Replay {
    final Map<Extent, Entry> hot = new HashMap<>();
    long extentSize;
    long goodEnd;
    long records;
    long seq;
    long droppedTail;
    /** Zeros after the last frame: preallocated, or left by a crash; nothing is lost in them. */
    long zeroTail;
    boolean corrupt;
  }

  private static Replay replay(Path file) throws IOException {
    Replay r = new Replay();
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      ByteBuffer header = ByteBuffer.allocate(HEADER);
      FileReads.readFully(ch, header, 0);
      header.flip();
      // The header is written with the file (temp + rename), so it is never torn: a bad one is damage.
      if (header.remaining() < HEADER || header.getInt() != MAGIC || header.getInt() != FORMAT) {
        r.corrupt = true;
        r.goodEnd = 0;
        return r;
      }
      long extentSize = header.getLong();
      if (extentSize <= 0) {
        r.corrupt = true;
        return r;
      }
      r.extentSize = extentSize;
      long pos = HEADER;
      ByteBuffer lenBuf = ByteBuffer.allocate(4);
      while (pos < size) {
        if (size - pos < 4) {
          r.droppedTail = size - pos; // a length cut by the crash
          break;
        }
        lenBuf.clear();
        FileReads.readFully(ch, lenBuf, pos);
        int length = lenBuf.getInt(0);
        if (length <= 0 || length > MAX_FRAME) {
          if (FileReads.allZero(ch, pos, size)) {
            // zeros reserved ahead of the appends (or extended by the file system, never written)
            r.zeroTail = size - pos;
          } else if (FileReads.allZero(ch, pos + 4, size)) {
            r.droppedTail = size - pos; // a length written only in part
          } else {
            r.corrupt = true;
          }
          break;
        }
        long frameEnd = pos + 4 + length + 4;
        if (frameEnd > size) {
          r.droppedTail = size - pos; // the last append, cut short
          break;
        }
        ByteBuffer frame = ByteBuffer.allocate(4 + length + 4);
        FileReads.readFully(ch, frame, pos);
        CRC32C crc = new CRC32C();
        crc.update(frame.array(), 0, 4 + length);
        if ((int) crc.getValue() != frame.getInt(4 + length)) {
          if (frameEnd == size || FileReads.allZero(ch, frameEnd, size)) {
            r.droppedTail = size - pos; // the last append, written only in part
          } else {
            r.corrupt = true; // more frames follow: this one was complete once
          }
          break;
        }
        if (!apply(r, ByteBuffer.wrap(frame.array(), 4, length).slice())) {
          r.corrupt = true; // the checksum matched, so we wrote something we cannot read: not a crash
          break;
        }
        pos = frameEnd;
      }
      r.goodEnd = pos;
    }
    return r;
  }

  /** Applies one frame's records; false when they do not parse. The frame is applied whole or not at all. */
  private static boolean apply(Replay r, ByteBuffer body) {
    List<Object[]> records = new ArrayList<>();
    while (body.hasRemaining()) {
      if (body.remaining() < 13) {
        return false;
      }
      byte type = body.get();
      long index = body.getLong();
      int n = body.getInt();
      if ((type != HOT && type != COLD) || index < ENTRIES || n < 0 || n > body.remaining()) {
        return false;
      }
      byte[] b = new byte[n];
      body.get(b);
      String path = new String(b, StandardCharsets.UTF_8);
      if (ChangePaths.problem(path) != null) {
        return false;
      }
      records.add(new Object[] {type, new Extent(path, index)});
    }
    for (Object[] rec : records) {
      Extent key = (Extent) rec[1];
      r.records++;
      if ((byte) rec[0] == HOT) {
        r.hot.put(key, new Entry(key.path(), key.index(), ++r.seq));
      } else {
        r.hot.remove(key);
      }
    }
    return true;
  }


}
