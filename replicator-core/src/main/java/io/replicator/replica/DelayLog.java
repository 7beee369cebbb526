package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.io.Closeable;
import io.replicator.meta.FileReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The durable, bounded spill log of a delayed follower: every change is appended as received, kept
 * on the follower's disk across restarts, and handed to the applier oldest first, to apply when
 * {@link DelaySchedule} says so. A full log refuses the append instead of blocking, so the caller can
 * fall back to the primary's dirty bitmap.
 */
final class DelayLog implements Closeable {
  // Files: segments seg-<seq of their first record, 20 digits>.log holding records
  //   uint32 length, int64 seq, int64 receivedMillis, uint32 headerLength, header, payload,
  //   uint32 crc32c(length .. payload)        (length counts seq .. payload)
  // and the applied pointer in two slots applied.0 / applied.1, each
  //   "RPDA", uint32 format, int64 appliedSeq, int64 appliedMillis, uint32 crc32c
  // written alternately, so a write torn by a crash leaves the slot written before. Open reads the
  // whole log once: a damaged record at the end of the last segment is a torn append and is cut off;
  // damage anywhere else fails the open, naming the file and the offset. (One case cannot be told
  // from a torn append: a length in the last segment damaged to point past the file's end; it is cut
  // off with a warning.)
  //
  // Threads: one writer calls append and sync; one applier calls peek, peekAfter and applied; any
  // thread may call list and the status methods at any time. Each role must stay on one thread at a
  // time (the writer's seq check and the applier's cursor are not guarded against themselves). The
  // lock guards the bookkeeping only: payloads are written and read, and the pointer fsynced, without
  // it, so the applier reading a large entry or recording a batch does not hold up appends for long
  // (applied reads the 24-byte head of each record it passes under the lock). close is for after
  // both threads have stopped.

  private static final Logger log = LoggerFactory.getLogger(DelayLog.class);

  static final long DEFAULT_SEGMENT_BYTES = 64L << 20;
  /** Smallest segment {@link #open(Path, long)} picks, so a small log is not one file per record. */
  static final long MIN_SEGMENT_BYTES = 256L << 10;
  /** Largest record body: far above a frame (header and 1 MiB payload), so a garbage length is recognised. */
  static final int MAX_BODY = 64 << 20;
  /** seq, receivedMillis, headerLength: the part of the body before the header. */
  private static final int BODY_FIXED = 8 + 8 + 4;
  /** The length field and the fixed body fields: what must be read to know a record. */
  private static final int HEAD = 4 + BODY_FIXED;
  /** Bytes a record takes besides its header and payload. */
  static final int OVERHEAD = HEAD + 4;

  private static final Pattern SEGMENT = Pattern.compile("seg-(\\d{20})\\.log");
  static final String[] POINTER_SLOTS = {"applied.0", "applied.1"};
  private static final int POINTER_MAGIC = 0x52504441; // "RPDA"
  private static final int FORMAT = 1;
  private static final int POINTER_SIZE = 4 + 4 + 8 + 8 + 4;
  private static final int CHUNK = 64 * 1024;

  /** One logged change: the frame's header bytes and raw payload, with the follower's receive time. */
  record Entry(long seq, long receivedMillis, byte[] header, ByteBuffer payload) {}

  /**
   * One logged change as {@link #list} reports it: without its payload, whose size it gives, so a
   * listing of many large writes stays small; {@code applied} as of the listing.
   */
  record Logged(long seq, long receivedMillis, byte[] header, int payloadBytes, boolean applied) {}

  /** One segment file; its fields are guarded by the log's lock. */
  private static final class Segment {
    final Path path;
    final long nameSeq;
    final FileChannel channel;
    /** End of its last whole record. */
    long end;
    /** End of what an fsync covers: the applier sees nothing past it. */
    long syncedEnd;
    /** Seq of its last record; 0 while it has none. */
    long lastSeq;
    long maxMillis = Long.MIN_VALUE;

    Segment(Path path, long nameSeq, FileChannel channel) {
      this.path = path;
      this.nameSeq = nameSeq;
      this.channel = channel;
    }
  }

  /** The fixed part of a record. */
  private record Head(int length, long seq, long millis, int headerLength) {
    long size() {
      return 4L + length + 4;
    }

    int payloadLength() {
      return length - BODY_FIXED - headerLength;
    }

    /** Whether the fields can belong to a record this class wrote. */
    boolean plausible() {
      return length >= BODY_FIXED && length <= MAX_BODY && seq > 0 && headerLength >= 0
          && headerLength <= length - BODY_FIXED;
    }
  }

  private final Path dir;
  private final long capacityBytes;
  private final long segmentBytes;
  private final ReentrantLock lock = new ReentrantLock();
  private final FileChannel[] pointerChannels = new FileChannel[2];

  // guarded by lock
  private final List<Segment> segments = new ArrayList<>();
  /**
   * The next unapplied record is at cursorOffset of cursorSegment (or in the next segment, when that
   * is its end); null when there are no segments.
   */
  private Segment cursorSegment;
  private long cursorOffset;
  private long lastSeq;
  private long appliedSeq;
  /** What the pointer on disk says: segments are deleted only up to it. */
  private long durableAppliedSeq;
  private long lastAppliedMillis;
  private long backlogChanges;
  private long backlogBytes;
  private long diskBytes;
  private boolean directoryDirty;
  private boolean closed;
  /** Set when a write or fsync failed: what is on disk is unknown until a reopen checks it. */
  private IOException broken;
  /** The entry peek returned last, so an applier that peeks while it waits does not reread it. */
  private Entry peeked;
  private Segment peekedSegment;
  private long peekedOffset;
  private int nextPointerSlot;

  private DelayLog(Path dir, long capacityBytes, long segmentBytes) {
    this.dir = dir;
    this.capacityBytes = capacityBytes;
    this.segmentBytes = segmentBytes;
  }

  /**
   * Opens (or creates) the log in {@code dir}, holding at most {@code capacityBytes} of segment files.
   * Segments are 64 MiB, or an eighth of the capacity when that is smaller (at least {@value
   * #MIN_SEGMENT_BYTES} bytes), so the applied part that waits in the oldest and the newest segment
   * never takes much of the capacity.
   */
  static DelayLog open(Path dir, long capacityBytes) throws IOException {
    long segment = Math.max(MIN_SEGMENT_BYTES, Math.min(DEFAULT_SEGMENT_BYTES, capacityBytes / 8));
    return open(dir, capacityBytes, segment);
  }

  /**
   * Opens (or creates) the log with segments of about {@code segmentBytes} (a record larger than that
   * gets a segment of its own). Reads every record once, checks its CRC, cuts off a torn tail and
   * positions the applier after the applied pointer.
   *
   * @throws IOException when the log is damaged other than by a torn last append; the message names
   *     the file and the offset
   */
  static DelayLog open(Path dir, long capacityBytes, long segmentBytes) throws IOException {
    checkNotNull(dir, "dir");
    checkArgument(capacityBytes > 0, "capacity %s", capacityBytes);
    checkArgument(segmentBytes > 0, "segment size %s", segmentBytes);
    Files.createDirectories(dir);
    DelayLog dl = new DelayLog(dir, capacityBytes, segmentBytes);
    dl.lock.lock();
    try {
      dl.load();
    } catch (IOException | RuntimeException e) {
      dl.closeChannels();
      throw e;
    } finally {
      dl.lock.unlock();
    }
    return dl;
  }

  /**
   * Appends one change as received: the frame's header bytes and its raw payload (read from its
   * position to its limit; the buffer itself is left as it was), with the follower's receive time.
   * The applier sees it once it is durable: after the next {@link #sync}, or earlier when a new
   * segment is started (which fsyncs the one before).
   *
   * @return false, with nothing written, when the segment files would exceed the capacity: the caller
   *     must then track the change some other way (the log never blocks to wait for room)
   * @throws IllegalArgumentException when {@code seq} does not exceed every seq appended or applied
   *     before, also across restarts
   */
  boolean append(long seq, long receivedMillis, byte[] header, ByteBuffer payload) throws IOException {
    checkNotNull(header, "header");
    checkNotNull(payload, "payload");
    long body = (long) BODY_FIXED + header.length + payload.remaining();
    checkArgument(body <= MAX_BODY, "a record of %s bytes is larger than %s", body, MAX_BODY);
    long size = body + 8;
    Segment target;
    lock.lock();
    try {
      ensureWritable();
      checkArgument(seq > lastSeq, "sequence %s does not follow %s", seq, lastSeq);
      dropApplied();
      if (diskBytes + size > capacityBytes && !makeRoom(seq, size)) {
        return false;
      }
      target = segments.isEmpty() ? null : segments.get(segments.size() - 1);
      if (target == null || (target.end > 0 && target.end + size > segmentBytes)) {
        target = roll(seq);
      }
    } finally {
      lock.unlock();
    }
    // Written without the lock: only this thread writes, and readers stop at the published end.
    write(target, seq, receivedMillis, header, payload, (int) body);
    lock.lock();
    try {
      target.end += size;
      target.lastSeq = seq;
      target.maxMillis = Math.max(target.maxMillis, receivedMillis);
      lastSeq = seq;
      backlogChanges++;
      backlogBytes += size;
      diskBytes += size;
    } finally {
      lock.unlock();
    }
    return true;
  }

  /** Makes every append so far durable; call once per batch of appends, not per record. */
  void sync() throws IOException {
    Segment last;
    long end;
    boolean directory;
    lock.lock();
    try {
      ensureWritable();
      last = segments.isEmpty() ? null : segments.get(segments.size() - 1);
      end = last == null ? 0 : last.end;
      directory = directoryDirty;
      directoryDirty = false;
      if ((last == null || last.syncedEnd == end) && !directory) {
        return;
      }
    } finally {
      lock.unlock();
    }
    try {
      if (last != null && last.syncedEnd < end) {
        last.channel.force(false);
      }
      if (directory) {
        forceDirectory(dir); // new segments must still exist after a crash
      }
    } catch (IOException e) {
      // After a failed fsync the kernel may have dropped the dirty pages: retrying would report a
      // durability it does not have, so the log stops until a reopen has checked what is on disk.
      fail(e);
      throw e;
    }
    if (last != null) {
      lock.lock();
      try {
        last.syncedEnd = Math.max(last.syncedEnd, end);
      } finally {
        lock.unlock();
      }
    }
  }

  /**
   * The oldest entry not yet applied and already durable, or null when none. Does not consume it: the
   * same entry comes back (with a fresh view of the payload, read again only when needed) until
   * {@link #applied} passes it.
   *
   * @throws IOException also when the record fails its CRC (damage after the open); never skips it
   */
  Entry peek() throws IOException {
    return peekAfter(0);
  }

  /**
   * The oldest durable entry not yet applied whose seq exceeds {@code seq}, or null when none: lets
   * the applier apply a batch (peekAfter the seq of the entry it just applied) and record it with
   * one {@link #applied} and one fsync. Cheap when {@code seq} is that of the entry returned last.
   */
  Entry peekAfter(long seq) throws IOException {
    Segment segment;
    long offset;
    lock.lock();
    try {
      ensureOpen();
      normalizeCursor();
      if (peeked != null && peeked.seq() <= seq) {
        segment = peekedSegment; // read ahead of the cursor before: go on from there
        offset = peekedOffset;
      } else {
        segment = cursorSegment;
        offset = cursorOffset;
      }
      while (segment != null) {
        if (offset >= segment.end) {
          int i = segments.indexOf(segment);
          if (i == segments.size() - 1) {
            return null;
          }
          segment = segments.get(i + 1);
          offset = 0;
          continue;
        }
        if (offset >= segment.syncedEnd) {
          return null;
        }
        Head h = readHead(segment.channel, offset);
        if (!h.plausible()) {
          throw corrupt(segment.path, offset, "a record that was valid is now unreadable");
        }
        if (h.seq() > seq) {
          break;
        }
        offset += h.size();
      }
      if (segment == null) {
        return null;
      }
      if (peeked != null && peekedSegment == segment && peekedOffset == offset) {
        return copy(peeked);
      }
    } finally {
      lock.unlock();
    }
    // Read without the lock: the record is whole and synced, and at or after the applied cursor,
    // which only this thread moves, so its segment stays.
    Entry e = readEntry(segment, offset);
    lock.lock();
    try {
      peeked = e;
      peekedSegment = segment;
      peekedOffset = offset;
    } finally {
      lock.unlock();
    }
    return copy(e);
  }

  /**
   * Records durably that every entry up to and including {@code seq} is applied, then deletes the
   * segments that hold only applied entries. A seq already recorded does nothing; after a call that
   * failed, calling it again with the same seq retries the write of the pointer.
   */
  void applied(long seq) throws IOException {
    long millis;
    lock.lock();
    try {
      ensureOpen();
      checkArgument(seq >= appliedSeq, "applied %s after %s", seq, appliedSeq);
      checkArgument(seq <= lastSeq, "applied %s beyond the last seq %s", seq, lastSeq);
      if (seq <= durableAppliedSeq) {
        return;
      }
      // seq == appliedSeq here means the pointer write for it failed before: write it again.
      normalizeCursor();
      while (seq > appliedSeq && cursorSegment != null && cursorOffset < cursorSegment.end) {
        Head h = readHead(cursorSegment.channel, cursorOffset);
        if (!h.plausible()) {
          throw corrupt(cursorSegment.path, cursorOffset, "a record that was valid is now unreadable");
        }
        if (h.seq() > seq) {
          break;
        }
        cursorOffset += h.size();
        backlogChanges--;
        backlogBytes -= h.size();
        lastAppliedMillis = h.millis();
        normalizeCursor();
      }
      appliedSeq = seq;
      millis = lastAppliedMillis;
      if (peeked != null && peeked.seq() <= seq) {
        peeked = null; // applied: do not keep its payload
        peekedSegment = null;
      }
    } finally {
      lock.unlock();
    }
    // Only the applier writes the pointer, so its fsync needs no lock and holds up no append.
    writePointer(seq, millis);
    lock.lock();
    try {
      durableAppliedSeq = Math.max(durableAppliedSeq, seq);
      dropApplied();
    } finally {
      lock.unlock();
    }
  }

  /**
   * Up to {@code limit} logged entries (applied or not, as long as their segment is still on disk)
   * received at or after {@code sinceMillis}, oldest first, without their payloads. Reads the files
   * with channels of its own, so it holds up neither the writer nor the applier.
   */
  List<Logged> list(long sinceMillis, int limit) throws IOException {
    checkArgument(limit >= 0, "limit %s", limit);
    List<Path> paths = new ArrayList<>();
    List<Long> ends = new ArrayList<>();
    long applied;
    lock.lock();
    try {
      ensureOpen();
      for (Segment s : segments) {
        if (s.end > 0 && s.maxMillis >= sinceMillis) {
          paths.add(s.path);
          ends.add(s.end);
        }
      }
      applied = appliedSeq;
    } finally {
      lock.unlock();
    }
    List<Logged> out = new ArrayList<>();
    CRC32C crc = new CRC32C();
    ByteBuffer chunk = ByteBuffer.allocate(CHUNK);
    for (int i = 0; i < paths.size() && out.size() < limit; i++) {
      Path path = paths.get(i);
      FileChannel ch;
      try {
        ch = FileChannel.open(path, StandardOpenOption.READ);
      } catch (NoSuchFileException e) {
        continue; // deleted since the snapshot: every entry in it was applied
      }
      try (ch) {
        long end = ends.get(i);
        for (long pos = 0; pos < end && out.size() < limit; ) {
          Head h = readHead(ch, pos);
          if (!h.plausible() || pos + h.size() > end) {
            throw corrupt(path, pos, "a record that was valid is now unreadable");
          }
          if (h.millis() >= sinceMillis) {
            byte[] header = new byte[h.headerLength()];
            FileReads.readFully(ch, ByteBuffer.wrap(header), pos + HEAD);
            crc.reset();
            if (!checkCrc(ch, pos, h, crc, chunk)) {
              throw corrupt(path, pos, "CRC mismatch");
            }
            out.add(new Logged(h.seq(), h.millis(), header, h.payloadLength(), h.seq() <= applied));
          }
          pos += h.size();
        }
      }
    }
    return out;
  }

  /** Entries appended and not yet applied (durable or not). */
  long backlogChanges() {
    lock.lock();
    try {
      return backlogChanges;
    } finally {
      lock.unlock();
    }
  }

  /** Bytes of the records not yet applied, their framing included. */
  long backlogBytes() {
    lock.lock();
    try {
      return backlogBytes;
    } finally {
      lock.unlock();
    }
  }

  /** Bytes of the segment files: what counts against the capacity. */
  long diskBytes() {
    lock.lock();
    try {
      return diskBytes;
    } finally {
      lock.unlock();
    }
  }

  long capacityBytes() {
    return capacityBytes;
  }

  /** Receive time of the last applied entry, 0 when none was ever applied. */
  long lastAppliedMillis() {
    lock.lock();
    try {
      return lastAppliedMillis;
    } finally {
      lock.unlock();
    }
  }

  /** Highest seq appended or applied, 0 when none; the next append needs a higher one. */
  long lastSeq() {
    lock.lock();
    try {
      return lastSeq;
    } finally {
      lock.unlock();
    }
  }

  /** Highest seq passed to {@link #applied}, 0 when none. */
  long appliedSeq() {
    lock.lock();
    try {
      return appliedSeq;
    } finally {
      lock.unlock();
    }
  }

  /** Segment files now (for tests and status). */
  int segmentCount() {
    lock.lock();
    try {
      return segments.size();
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void close() throws IOException {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      closeChannels();
    } finally {
      lock.unlock();
    }
  }

  // ---- opening

  /** Reads the pointer and every segment; under the lock. */
  private void load() throws IOException {
    readPointer();
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "seg-*.log")) {
      for (Path p : ds) {
        if (SEGMENT.matcher(p.getFileName().toString()).matches()) {
          files.add(p);
        }
      }
    }
    files.sort(null); // zero-padded names sort as their numbers
    long prevSeq = 0;
    for (int i = 0; i < files.size(); i++) {
      Path file = files.get(i);
      Matcher m = SEGMENT.matcher(file.getFileName().toString());
      m.matches();
      long nameSeq = Long.parseLong(m.group(1));
      if (nameSeq <= prevSeq) {
        throw corrupt(file, 0, "its name does not follow seq " + prevSeq + " of the segment before");
      }
      Segment s = new Segment(file, nameSeq, FileChannel.open(file, StandardOpenOption.READ,
          StandardOpenOption.WRITE));
      segments.add(s);
      prevSeq = scan(s, i == files.size() - 1, prevSeq);
      s.syncedEnd = s.end;
      diskBytes += s.end;
    }
    // An empty segment holds nothing: a crash right after it was created, or a torn tail cut it empty.
    segments.removeIf(s -> {
      if (s.end > 0) {
        return false;
      }
      try {
        s.channel.close();
        Files.deleteIfExists(s.path);
      } catch (IOException e) {
        log.warn("delay log: cannot delete empty segment {}: {}", s.path, e.toString());
      }
      return true;
    });
    lastSeq = Math.max(prevSeq, appliedSeq);
    cursorSegment = segments.isEmpty() ? null : segments.get(0);
    cursorOffset = 0;
    // Position after the applied entries (bounded: applied segments are deleted, so this is at most
    // a segment or two of 24-byte reads).
    normalizeCursor();
    while (cursorSegment != null && cursorOffset < cursorSegment.end) {
      Head h = readHead(cursorSegment.channel, cursorOffset);
      if (h.seq() > appliedSeq) {
        break;
      }
      cursorOffset += h.size();
      normalizeCursor();
    }
    Segment s = cursorSegment;
    long pos = cursorOffset;
    for (int i = s == null ? segments.size() : segments.indexOf(s); i < segments.size(); i++) {
      Segment seg = segments.get(i);
      for (; pos < seg.end; ) {
        Head h = readHead(seg.channel, pos);
        backlogChanges++;
        backlogBytes += h.size();
        pos += h.size();
      }
      pos = 0;
    }
    dropApplied(); // segments a crash left between the pointer write and their deletion
  }

  /**
   * Checks every record of {@code s} and sets its end, cutting off a torn tail when {@code last};
   * returns the seq of its last record ({@code prevSeq} when it has none).
   */
  private long scan(Segment s, boolean last, long prevSeq) throws IOException {
    FileChannel ch = s.channel;
    long size = ch.size();
    long pos = 0;
    CRC32C crc = new CRC32C();
    ByteBuffer chunk = ByteBuffer.allocate(CHUNK);
    String torn = null;
    while (pos < size) {
      if (size - pos < HEAD) {
        torn = "a record cut short";
        break;
      }
      Head h = readHead(ch, pos);
      if (!h.plausible()) {
        // Zeros are space the file system extended but the crash never filled; anything else is damage.
        if (FileReads.allZero(ch, pos, size)) {
          torn = "zeros";
          break;
        }
        throw corrupt(s.path, pos, "an impossible record header");
      }
      long end = pos + h.size();
      if (end > size) {
        torn = "a record cut short";
        break;
      }
      crc.reset();
      if (!checkCrc(ch, pos, h, crc, chunk)) {
        if (last && FileReads.allZero(ch, end, size)) {
          torn = "a record written in part";
          break;
        }
        throw corrupt(s.path, pos, last ? "CRC mismatch with more records after it"
            : "CRC mismatch in a segment that is not the last");
      }
      if (h.seq() <= prevSeq || h.seq() < s.nameSeq) {
        throw corrupt(s.path, pos, "seq " + h.seq() + " does not follow " + Math.max(prevSeq, s.nameSeq - 1));
      }
      prevSeq = h.seq();
      s.lastSeq = h.seq();
      s.maxMillis = Math.max(s.maxMillis, h.millis());
      pos = end;
    }
    if (torn != null) {
      if (!last) {
        // Appends move to a new segment only after an fsync of the old one: its end cannot be torn.
        throw corrupt(s.path, pos, "a damaged end (" + torn + ") in a segment that is not the last");
      }
      log.warn("delay log {}: cutting off a torn tail of {} bytes at offset {} ({}) left by a crash; "
          + "it was never synced, so never applied", s.path, size - pos, pos, torn);
      ch.truncate(pos);
      ch.force(true);
    }
    s.end = pos;
    return prevSeq;
  }

  // ---- writing

  /**
   * Called when the append does not fit: when the newest segment holds only applied entries, starts a
   * new one so the old can go, if that makes room. Without this a log whose applier has caught up
   * would stay full of applied records in the segment still being written.
   */
  private boolean makeRoom(long seq, long size) throws IOException {
    Segment last = segments.isEmpty() ? null : segments.get(segments.size() - 1);
    if (last == null || last.end == 0 || last.lastSeq > durableAppliedSeq
        || diskBytes - last.end + size > capacityBytes) {
      return false;
    }
    roll(seq);
    dropApplied();
    return diskBytes + size <= capacityBytes;
  }

  /** Starts segment {@code seq} as the newest; under the lock. */
  private Segment roll(long seq) throws IOException {
    Segment old = segments.isEmpty() ? null : segments.get(segments.size() - 1);
    if (old != null && old.syncedEnd < old.end) {
      // The old segment's tail must be durable before a record in the new one can be, or a crash
      // could leave a torn record in a segment that is not the last, which open takes for damage.
      try {
        old.channel.force(false);
      } catch (IOException e) {
        fail(e);
        throw e;
      }
      old.syncedEnd = old.end;
    }
    Path path = dir.resolve(String.format("seg-%020d.log", seq));
    FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
        StandardOpenOption.WRITE);
    Segment s = new Segment(path, seq, ch);
    segments.add(s);
    directoryDirty = true;
    if (cursorSegment == null) {
      cursorSegment = s;
      cursorOffset = 0;
    }
    return s;
  }

  private void write(Segment s, long seq, long millis, byte[] header, ByteBuffer payload, int body)
      throws IOException {
    ByteBuffer head = ByteBuffer.allocate(HEAD + header.length);
    head.putInt(body).putLong(seq).putLong(millis).putInt(header.length).put(header).flip();
    ByteBuffer data = payload.duplicate();
    CRC32C crc = new CRC32C();
    crc.update(head.duplicate());
    crc.update(data.duplicate());
    ByteBuffer tail = ByteBuffer.allocate(4).putInt((int) crc.getValue()).flip();
    ByteBuffer[] parts = {head, data, tail};
    FileChannel ch = s.channel;
    long start = s.end; // only this thread changes it
    try {
      ch.position(start);
      while (tail.hasRemaining()) {
        ch.write(parts);
      }
    } catch (IOException e) {
      // Cut what the failed append left (a full disk, say), so later appends do not follow a damaged
      // record; when even that fails the log stops until a reopen.
      try {
        ch.truncate(start);
        ch.position(start);
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
        fail(e);
      }
      throw e;
    }
  }

  // ---- applying

  /** Moves the cursor off the end of a segment that is no longer the newest; under the lock. */
  private void normalizeCursor() {
    while (cursorSegment != null && cursorOffset >= cursorSegment.end
        && cursorSegment != segments.get(segments.size() - 1)) {
      cursorSegment = segments.get(segments.indexOf(cursorSegment) + 1);
      cursorOffset = 0;
    }
  }

  /**
   * Deletes the oldest segments while they hold only entries the pointer on disk records as applied;
   * the newest stays, as appends go there. Under the lock.
   */
  private void dropApplied() {
    normalizeCursor();
    while (segments.size() > 1) {
      Segment first = segments.get(0);
      if (first == cursorSegment || first.lastSeq > durableAppliedSeq) {
        break;
      }
      segments.remove(0);
      diskBytes -= first.end;
      if (peekedSegment == first) {
        peeked = null;
        peekedSegment = null;
      }
      try {
        first.channel.close();
        Files.deleteIfExists(first.path);
      } catch (IOException e) {
        // Its entries are applied: a file left behind is only space, and the next open deletes it.
        log.warn("delay log: cannot delete applied segment {}: {}", first.path, e.toString());
      }
    }
  }

  private Entry readEntry(Segment s, long offset) throws IOException {
    FileChannel ch = s.channel;
    Head h = readHead(ch, offset);
    if (!h.plausible()) {
      throw corrupt(s.path, offset, "a record that was valid is now unreadable");
    }
    byte[] header = new byte[h.headerLength()];
    FileReads.readFully(ch, ByteBuffer.wrap(header), offset + HEAD);
    ByteBuffer payload = ByteBuffer.allocate(h.payloadLength());
    FileReads.readFully(ch, payload, offset + HEAD + header.length);
    payload.flip();
    ByteBuffer tail = ByteBuffer.allocate(4);
    FileReads.readFully(ch, tail, offset + HEAD + header.length + payload.remaining());
    CRC32C crc = new CRC32C();
    crc.update(ByteBuffer.allocate(HEAD).putInt(h.length()).putLong(h.seq()).putLong(h.millis())
        .putInt(h.headerLength()).flip());
    crc.update(header);
    crc.update(payload.duplicate());
    if ((int) crc.getValue() != tail.getInt(0)) {
      throw corrupt(s.path, offset, "CRC mismatch");
    }
    return new Entry(h.seq(), h.millis(), header, payload.asReadOnlyBuffer());
  }

  private static Entry copy(Entry e) {
    return new Entry(e.seq(), e.receivedMillis(), e.header().clone(), e.payload().duplicate());
  }

  // ---- the applied pointer

  private void readPointer() throws IOException {
    long best = -1;
    int bestSlot = -1;
    int present = 0;
    for (int i = 0; i < 2; i++) {
      Path p = dir.resolve(POINTER_SLOTS[i]);
      if (!Files.exists(p)) {
        continue;
      }
      present++;
      byte[] b = Files.readAllBytes(p);
      if (b.length != POINTER_SIZE) {
        continue;
      }
      ByteBuffer buf = ByteBuffer.wrap(b);
      CRC32C crc = new CRC32C();
      crc.update(b, 0, POINTER_SIZE - 4);
      if (buf.getInt() != POINTER_MAGIC || buf.getInt() != FORMAT
          || (int) crc.getValue() != buf.getInt(POINTER_SIZE - 4)) {
        continue;
      }
      long seq = buf.getLong();
      long millis = buf.getLong();
      if (seq > best) {
        best = seq;
        bestSlot = i;
        appliedSeq = seq;
        lastAppliedMillis = millis;
      }
    }
    if (bestSlot < 0 && present == 2) {
      // One slot can be torn by a crash, never both: the other held the write before.
      throw corrupt(dir.resolve(POINTER_SLOTS[0]), 0, "neither applied pointer slot is valid");
    }
    if (bestSlot < 0 && present == 1) {
      log.warn("delay log {}: the first applied pointer was torn by a crash; nothing counts as applied", dir);
    }
    durableAppliedSeq = appliedSeq;
    nextPointerSlot = bestSlot < 0 ? 0 : 1 - bestSlot;
  }

  private void writePointer(long seq, long millis) throws IOException {
    int slot = nextPointerSlot;
    ByteBuffer buf = ByteBuffer.allocate(POINTER_SIZE);
    buf.putInt(POINTER_MAGIC).putInt(FORMAT).putLong(seq).putLong(millis);
    CRC32C crc = new CRC32C();
    crc.update(buf.array(), 0, POINTER_SIZE - 4);
    buf.putInt((int) crc.getValue()).flip();
    FileChannel ch = pointerChannels[slot];
    boolean created = false;
    if (ch == null) {
      Path p = dir.resolve(POINTER_SLOTS[slot]);
      created = !Files.exists(p);
      ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      pointerChannels[slot] = ch;
    }
    while (buf.hasRemaining()) {
      ch.write(buf, buf.position());
    }
    // Same size every time: only the data changes after the first write, which syncs the size too.
    ch.force(created);
    if (created) {
      forceDirectory(dir);
    }
    nextPointerSlot = 1 - slot;
  }

  // ---- helpers

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException("delay log " + dir + " is closed");
    }
  }

  private void ensureWritable() throws IOException {
    ensureOpen();
    if (broken != null) {
      throw new IOException("delay log " + dir + " is unusable after a failed write; reopen it", broken);
    }
  }

  private void fail(IOException e) {
    lock.lock();
    try {
      if (broken == null) {
        broken = e;
      }
    } finally {
      lock.unlock();
    }
  }

  private void closeChannels() {
    for (Segment s : segments) {
      closeQuietly(s.channel);
    }
    for (FileChannel ch : pointerChannels) {
      if (ch != null) {
        closeQuietly(ch);
      }
    }
  }

  private static void closeQuietly(FileChannel ch) {
    try {
      ch.close();
    } catch (IOException e) {
      log.debug("closing delay log file: {}", e.toString());
    }
  }

  private static IOException corrupt(Path file, long offset, String why) {
    return new IOException("delay log file " + file + " is corrupt at offset " + offset + ": " + why
        + "; the changes from there on cannot be trusted (the follower needs a resync)");
  }

  /** The fixed part of the record at {@code pos}; fields are zero where the file ends. */
  private static Head readHead(FileChannel ch, long pos) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(HEAD);
    FileReads.readFully(ch, b, pos);
    return new Head(b.getInt(0), b.getLong(4), b.getLong(12), b.getInt(20));
  }

  /** Whether the record at {@code pos} matches its CRC, read in chunks so a large one costs no large buffer. */
  private static boolean checkCrc(FileChannel ch, long pos, Head h, CRC32C crc, ByteBuffer chunk)
      throws IOException {
    long end = pos + 4 + h.length();
    for (long at = pos; at < end; ) {
      chunk.clear().limit((int) Math.min(chunk.capacity(), end - at));
      FileReads.readFully(ch, chunk, at);
      chunk.flip();
      at += chunk.remaining();
      crc.update(chunk);
    }
    ByteBuffer stored = ByteBuffer.allocate(4);
    FileReads.readFully(ch, stored, end);
    return (int) crc.getValue() == stored.getInt(0);
  }



  /** Makes new and renamed directory entries durable; a no-op where directories cannot be opened. */
  private static void forceDirectory(Path dir) throws IOException {
    FileChannel ch;
    try {
      ch = FileChannel.open(dir, StandardOpenOption.READ);
    } catch (UnsupportedOperationException | IOException e) {
      log.debug("cannot open directory {} to fsync it: {}", dir, e.toString());
      return;
    }
    try (ch) {
      ch.force(true);
    }
  }
}
