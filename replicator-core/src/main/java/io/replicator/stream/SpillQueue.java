package io.replicator.stream;

import static com.google.common.base.Preconditions.checkArgument;

import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.change.MalformedChangeException;
import io.replicator.proto.Change;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A bounded FIFO of changes in files on this node's disk: appended in order, read back oldest
 * first, emptied at once. Appends are plain buffered writes (no fsync): what the queue holds is
 * only ever a copy of changes already made locally, see {@link FollowerSpill}.
 *
 * <p>Files: segments {@code NNNNNNNNNN.seg} in one directory, each a sequence of records {@code
 * uint32 headerLength, uint32 payloadLength, Change header (seq 1), payload}. A new segment starts
 * when the tail one passes the segment size; a segment read to its end is deleted, and when the
 * queue runs empty its one segment is cut back to nothing and reused. So the disk holds at most
 * the bound plus the part of the oldest segment already read.
 *
 * <p>Threads: one appender at a time (the caller serialises them) and one consumer ({@link #peek},
 * {@link #remove}, {@link #forEach}, {@link #clear}); the lock guards the bookkeeping only, and the
 * consumer reads record data outside it, so reading back a large record never holds up an append.
 */
final class SpillQueue implements Closeable {
  /** uint32 headerLength, uint32 payloadLength. */
  static final int RECORD_OVERHEAD = 8;
  /** Far above a header: a larger length read back is damage, not a record. */
  private static final int MAX_HEADER = 1 << 20;
  private static final Pattern SEGMENT = Pattern.compile("(\\d{10})\\.seg");

  /** One segment file; positions guarded by the queue's lock. */
  private static final class Segment {
    final long number;
    final Path file;
    final FileChannel channel;
    /** Where the next record goes. */
    long end;
    /** Where the oldest unread record starts. */
    long read;

    Segment(long number, Path file, FileChannel channel) {
      this.number = number;
      this.file = file;
      this.channel = channel;
    }
  }

  /** The oldest change, decoded, with the record's size on disk. */
  record Head(FileChange change, int payloadLength, long recordBytes) {}

  private final Path directory;
  private final long boundBytes;
  private final long segmentBytes;
  private final ReentrantLock lock = new ReentrantLock();
  private final ArrayDeque<Segment> segments = new ArrayDeque<>();
  private long bytes;
  private long changes;
  // consumer only: the head read and not yet removed
  private Head head;

  private SpillQueue(Path directory, long boundBytes, long segmentBytes) {
    this.directory = directory;
    this.boundBytes = boundBytes;
    this.segmentBytes = segmentBytes;
  }

  /**
   * Opens the queue in {@code directory}, holding at most {@code boundBytes} of records. Segments
   * left there (a process that stopped with changes spilled) are kept, up to the first record that
   * cannot be read back (a torn append), so the caller can account for them.
   */
  static SpillQueue open(Path directory, long boundBytes) throws IOException {
    checkArgument(boundBytes > 0, "spill bound of %s bytes", boundBytes);
    long segment = Math.max(1L << 20, Math.min(64L << 20, boundBytes / 8));
    SpillQueue q = new SpillQueue(directory, boundBytes, segment);
    Files.createDirectories(directory);
    List<Long> found = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(directory)) {
      for (Path f : files) {
        Matcher m = SEGMENT.matcher(f.getFileName().toString());
        if (m.matches()) {
          found.add(Long.parseLong(m.group(1)));
        }
      }
    }
    found.sort(null);
    boolean torn = false;
    for (long n : found) {
      Path file = q.segmentFile(n);
      if (torn) {
        Files.deleteIfExists(file);
        continue;
      }
      Segment s = new Segment(n, file, FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE));
      q.segments.add(s);
      long size = s.channel.size();
      while (s.end < size) {
        long record = q.recordSize(s, s.end, size);
        if (record < 0) {
          torn = true;
          break;
        }
        s.end += record;
        q.bytes += record;
        q.changes++;
      }
      s.channel.truncate(s.end);
    }
    return q;
  }

  private Path segmentFile(long number) {
    return directory.resolve(String.format("%010d.seg", number));
  }

  /** The size of the record at {@code position}, or -1 when none can be read there. */
  private long recordSize(Segment s, long position, long size) throws IOException {
    if (size - position < RECORD_OVERHEAD) {
      return -1;
    }
    ByteBuffer lengths = readFully(s.channel, position, RECORD_OVERHEAD);
    int header = lengths.getInt();
    int payload = lengths.getInt();
    if (header <= 0 || header > MAX_HEADER || payload < 0) {
      return -1;
    }
    long record = RECORD_OVERHEAD + (long) header + payload;
    return size - position < record ? -1 : record;
  }

  /**
   * Appends {@code change} (a buffered write, no fsync). False when it would take the queue past
   * its bound: nothing is appended then.
   */
  boolean append(FileChange change) throws IOException {
    // seq 1: a spilled change is numbered when it is sent; fromProto wants a valid one
    Change header = ChangeProtos.toProto(1, change);
    byte[] h = header.toByteArray();
    int payload = change.payloadLength();
    long record = RECORD_OVERHEAD + (long) h.length + payload;
    lock.lock();
    try {
      if (bytes + record > boundBytes) {
        return false;
      }
      Segment tail = segments.peekLast();
      if (tail == null || (tail.end > 0 && tail.end + record > segmentBytes)) {
        long n = tail == null ? 0 : tail.number + 1;
        Path file = segmentFile(n);
        tail = new Segment(n, file, FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
            StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING));
        segments.addLast(tail);
      }
      ByteBuffer head = ByteBuffer.allocate(RECORD_OVERHEAD + h.length);
      head.putInt(h.length).putInt(payload).put(h).flip();
      long at = tail.end;
      at += writeFully(tail.channel, head, at);
      if (payload > 0) {
        writeFully(tail.channel, change.payload().duplicate(), at);
      }
      // published only now: a failed write leaves the queue as it was (the tail's garbage is
      // overwritten by the next append)
      tail.end += record;
      bytes += record;
      changes++;
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** The oldest change without removing it, or null when the queue is empty. Consumer only. */
  Head peek() throws IOException {
    if (head != null) {
      return head;
    }
    Segment s;
    long position;
    lock.lock();
    try {
      s = segments.peekFirst();
      while (s != null && s.read >= s.end && s != segments.peekLast()) {
        // read to its end and no longer appended to: its space goes back
        segments.pollFirst();
        s.channel.close();
        Files.deleteIfExists(s.file);
        s = segments.peekFirst();
      }
      if (s == null || s.read >= s.end) {
        return null;
      }
      position = s.read;
    } finally {
      lock.unlock();
    }
    head = read(s, position, true);
    return head;
  }

  /** Drops the change {@link #peek} returned. Consumer only. */
  void remove() throws IOException {
    Head h = head;
    if (h == null) {
      throw new IllegalStateException("remove without peek");
    }
    head = null;
    lock.lock();
    try {
      Segment s = segments.peekFirst();
      s.read += h.recordBytes();
      bytes -= h.recordBytes();
      changes--;
      if (changes == 0) {
        // empty: keep one segment and write it again from its start
        while (segments.size() > 1) {
          Segment old = segments.pollFirst();
          old.channel.close();
          Files.deleteIfExists(old.file);
        }
        Segment only = segments.peekFirst();
        only.read = 0;
        only.end = 0;
        only.channel.truncate(0);
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Hands every change still queued, oldest first, to {@code each}, without their payloads when
   * {@code withPayload} is false (a write then carries no data: {@link Head#payloadLength} says how
   * much it wrote).
   * Consumer only; appends must have stopped.
   */
  void forEach(boolean withPayload, Consumer<Head> each) throws IOException {
    List<Segment> all;
    lock.lock();
    try {
      all = new ArrayList<>(segments);
    } finally {
      lock.unlock();
    }
    for (Segment s : all) {
      long end;
      long position;
      lock.lock();
      try {
        end = s.end;
        position = s.read;
      } finally {
        lock.unlock();
      }
      while (position < end) {
        Head h = read(s, position, withPayload);
        each.accept(h);
        position += h.recordBytes();
      }
    }
  }

  /** Empties the queue and deletes its files. Consumer only. */
  void clear() throws IOException {
    head = null;
    lock.lock();
    try {
      for (Segment s : segments) {
        s.channel.close();
        Files.deleteIfExists(s.file);
      }
      segments.clear();
      bytes = 0;
      changes = 0;
    } finally {
      lock.unlock();
    }
  }

  private Head read(Segment s, long position, boolean withPayload) throws IOException {
    ByteBuffer lengths = readFully(s.channel, position, RECORD_OVERHEAD);
    int headerLength = lengths.getInt();
    int payloadLength = lengths.getInt();
    if (headerLength <= 0 || headerLength > MAX_HEADER || payloadLength < 0) {
      throw new IOException("damaged spill record at " + s.file + " offset " + position);
    }
    ByteBuffer h = readFully(s.channel, position + RECORD_OVERHEAD, headerLength);
    ByteBuffer payload = withPayload
        ? readFully(s.channel, position + RECORD_OVERHEAD + headerLength, payloadLength)
        : null;
    try {
      FileChange change = ChangeProtos.fromProto(Change.parseFrom(h), payload);
      return new Head(change, payloadLength, RECORD_OVERHEAD + (long) headerLength + payloadLength);
    } catch (MalformedChangeException | com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IOException("damaged spill record at " + s.file + " offset " + position + ": " + e.getMessage(), e);
    }
  }

  private static ByteBuffer readFully(FileChannel ch, long position, int length) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(length);
    while (b.hasRemaining()) {
      if (ch.read(b, position + b.position()) < 0) {
        throw new IOException("spill record cut short at offset " + position);
      }
    }
    return b.flip();
  }

  private static int writeFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
    int done = 0;
    while (b.hasRemaining()) {
      done += ch.write(b, position + done);
    }
    return done;
  }

  /** Record bytes queued (headers and payloads). */
  long bytes() {
    lock.lock();
    try {
      return bytes;
    } finally {
      lock.unlock();
    }
  }

  /** Changes queued. */
  long changes() {
    lock.lock();
    try {
      return changes;
    } finally {
      lock.unlock();
    }
  }

  boolean isEmpty() {
    return changes() == 0;
  }

  /** Closes the files, leaving them in place. */
  @Override
  public void close() throws IOException {
    lock.lock();
    try {
      for (Segment s : segments) {
        s.channel.close();
      }
      segments.clear();
    } finally {
      lock.unlock();
    }
  }
}
