package io.replicator.replica;

import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.change.FileChange;
import io.replicator.meta.DirtyBitmap;
import io.replicator.proto.CopyMark;
import io.replicator.proto.CopyPosition;
import io.replicator.proto.CopyRecord;
import io.replicator.proto.CopySegment;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What this replica received that another copy of the cluster may lack, kept by the primary's
 * marks ({@link CopyMark}): DRBD 9's per-peer bitmaps, so that the next primary resyncs a follower
 * from a bitmap instead of by checksum after a failover or a swap.
 *
 * <h2>Why it is complete</h2>
 * The primary puts each mark into every copy's stream at the same point, and says in each mark
 * which earlier mark every copy in sync has applied. A copy that applied every change before mark
 * {@code m} can lack, of what this replica received, only the changes after {@code m}: the
 * segments closed after {@code m} and the open one. Recording starts at a session's first mark
 * (changes before it are before the mark, so a copy past it has them), which is why a copy known to
 * stand before that mark gets no answer: the caller then falls back to a checksum resync.
 *
 * <h2>Bounds</h2>
 * Segments every known copy has passed are dropped; beyond {@value #MAX_SEGMENTS} the two oldest
 * merge (coarser, still complete). Memory follows the blocks changed, not the tree. Kept in
 * memory, written to the metadata directory on a clean close and read (then removed) at the next
 * start: a crash loses it, and a stale record is never used.
 */
public final class UnsharedChanges {
  private static final Logger log = LoggerFactory.getLogger(UnsharedChanges.class);

  /** The record's file in the metadata directory. */
  public static final String FILE_NAME = "unshared-changes";
  static final int MAX_SEGMENTS = 32;
  /** The name under which the pair's secondary is kept (followers have non-empty names). */
  public static final String SECONDARY = "";

  private record Segment(long closing, DirtyBitmap blocks) {}

  /** What a copy may lack of this replica's data, and the generation it held then. */
  public record Shortfall(long epoch, long generation, DirtyBitmap blocks) {}

  private final int blockSize;
  private long epoch;
  /** Positions before this mark get no answer: the record starts there, or dropped what came before. */
  private long validFrom;
  private final Map<String, CopyPosition> positions = new LinkedHashMap<>();
  private final ArrayDeque<Segment> closed = new ArrayDeque<>();
  private DirtyBitmap open;
  /** Whether the current session saw its first mark: only then is anything recorded. */
  private boolean sessionMarked;
  /** Read back from a record the pair's secondary kept (see {@link #save}). */
  private boolean bySecondary;

  public UnsharedChanges(int blockSize) {
    this.blockSize = blockSize;
    this.open = new DirtyBitmap(blockSize);
  }

  /** A new session: nothing is recorded until its first mark (which starts the record afresh). */
  public synchronized void sessionStarted() {
    sessionMarked = false;
  }

  /** Marks what {@code change} touched as possibly missing elsewhere (only between marks). */
  public synchronized void received(FileChange change) {
    if (!sessionMarked) {
      return;
    }
    open.mark(change);
  }

  /** A mark from the primary: closes the open segment and learns where the copies stand. */
  public synchronized void marked(CopyMark m) {
    checkNotNull(m, "m");
    if (m.getEpoch() == 0 || m.getNumber() == 0) {
      return;
    }
    if (!sessionMarked || m.getEpoch() != epoch) {
      // a session's first mark: whatever was received since the last mark of an earlier session
      // (and between sessions) is not recorded, so nothing older can answer for a copy
      sessionMarked = true;
      epoch = m.getEpoch();
      validFrom = m.getNumber();
      closed.clear();
      positions.clear();
      open = new DirtyBitmap(blockSize);
    } else {
      if (m.getNumber() <= lastClosing()) {
        return; // not a later mark: ignore rather than reorder segments
      }
      closed.addLast(new Segment(m.getNumber(), open));
      open = new DirtyBitmap(blockSize);
    }
    for (CopyPosition p : m.getPositionsList()) {
      positions.put(p.getSecondary() ? SECONDARY : p.getName(), p);
    }
    prune();
  }

  private long lastClosing() {
    return closed.isEmpty() ? validFrom : closed.peekLast().closing();
  }

  private void prune() {
    long min = Long.MAX_VALUE;
    for (CopyPosition p : positions.values()) {
      min = Math.min(min, p.getMark());
    }
    if (min != Long.MAX_VALUE) {
      while (!closed.isEmpty() && closed.peekFirst().closing() <= min) {
        // a copy first reported later, standing before this segment, can no longer be answered
        validFrom = Math.max(validFrom, closed.removeFirst().closing());
      }
    }
    while (closed.size() > MAX_SEGMENTS) {
      Segment first = closed.removeFirst();
      Segment second = closed.removeFirst();
      // into the older one, usually the larger: the work follows the newer, smaller segment
      first.blocks().union(second.blocks());
      closed.addFirst(new Segment(second.closing(), first.blocks()));
    }
  }

  /**
   * What copy {@code name} ({@link #SECONDARY} for the pair's secondary) may lack of this
   * replica's data, or empty when this record cannot say (the copy was never reported in sync
   * past this record's start).
   */
  public synchronized Optional<Shortfall> shortfall(String name) {
    CopyPosition p = positions.get(name);
    if (p == null || epoch == 0 || p.getMark() < validFrom) {
      return Optional.empty();
    }
    DirtyBitmap out = new DirtyBitmap(blockSize);
    for (Segment s : closed) {
      if (s.closing() > p.getMark()) {
        out.union(s.blocks());
      }
    }
    out.union(open);
    return Optional.of(new Shortfall(epoch, p.getGeneration(), out));
  }

  /**
   * Whether this record was kept by the pair's secondary: a follower's reports say what the
   * secondary may lack, so only the secondary, as the next primary, may continue followers from it.
   */
  public synchronized boolean keptBySecondary() {
    return bySecondary;
  }

  @Override
  public synchronized String toString() {
    StringBuilder b = new StringBuilder("record of epoch ").append(Long.toHexString(epoch)).append(" from mark ")
        .append(validFrom).append(", ").append(closed.size()).append(" segment(s), positions");
    positions.forEach((name, p) -> b.append(' ').append(name.isEmpty() ? "secondary" : name).append('@')
        .append(p.getMark()));
    return b.toString();
  }

  /** The copies this record knows a position of (followers by name; the secondary as {@link #SECONDARY}). */
  public synchronized List<String> copies() {
    return new ArrayList<>(positions.keySet());
  }

  /** The copies it can say what they may lack of (see {@link #shortfall}). */
  public synchronized List<String> answerableCopies() {
    List<String> out = new ArrayList<>();
    positions.forEach((name, p) -> {
      if (epoch != 0 && p.getMark() >= validFrom) {
        out.add(name);
      }
    });
    return out;
  }

  // ---------------------------------------------------------------- kept across a clean close

  /**
   * Writes the record into {@code dir} (a clean close); the next {@link #take} reads it once.
   * {@code bySecondary}: this node is the pair's secondary, so that as the next primary it may
   * continue the followers from it (a follower's record is only for its own reports).
   */
  public synchronized void save(Path dir, boolean bySecondary) throws IOException {
    CopyRecord.Builder b = CopyRecord.newBuilder().setEpoch(epoch).setValidFrom(validFrom)
        .addAllPositions(positions.values()).setBySecondary(bySecondary);
    if (sessionMarked || !closed.isEmpty()) {
      for (Segment s : closed) {
        b.addSegments(CopySegment.newBuilder().setClosing(s.closing())
            .setBlocks(com.google.protobuf.ByteString.copyFrom(s.blocks().serialize())));
      }
      b.addSegments(CopySegment.newBuilder().setClosing(0)
          .setBlocks(com.google.protobuf.ByteString.copyFrom(open.serialize())));
    }
    Files.createDirectories(dir);
    Path tmp = dir.resolve(FILE_NAME + ".tmp");
    try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      b.build().writeTo(out);
    }
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
    Files.move(tmp, dir.resolve(FILE_NAME), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /**
   * Reads the record a clean close left in {@code dir} and removes it, so that it is used once:
   * after a crash later on, a stale record must not answer. Empty (with a log line) when there is
   * none or it cannot be read.
   */
  public static UnsharedChanges take(Path dir, int blockSize) {
    UnsharedChanges u = new UnsharedChanges(blockSize);
    Path file = dir.resolve(FILE_NAME);
    byte[] data;
    try {
      data = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      return u;
    } catch (IOException e) {
      log.warn("cannot read {}: {}; followers continue by checksum", file, e.toString());
      deleteQuietly(file);
      return u;
    }
    deleteQuietly(file);
    try {
      CopyRecord r = CopyRecord.parseFrom(data);
      if (r.getEpoch() == 0 || r.getSegmentsCount() == 0) {
        return u;
      }
      List<Segment> segments = new ArrayList<>();
      DirtyBitmap open = null;
      for (CopySegment s : r.getSegmentsList()) {
        DirtyBitmap bits = DirtyBitmap.deserialize(s.getBlocks().toByteArray());
        if (bits.blockSize() != blockSize) {
          throw new IOException("block size " + bits.blockSize() + ", not " + blockSize);
        }
        if (s.getClosing() == 0) {
          open = bits;
        } else {
          segments.add(new Segment(s.getClosing(), bits));
        }
      }
      if (open == null) {
        throw new IOException("no open segment");
      }
      u.epoch = r.getEpoch();
      u.validFrom = r.getValidFrom();
      u.bySecondary = r.getBySecondary();
      for (CopyPosition p : r.getPositionsList()) {
        u.positions.put(p.getSecondary() ? SECONDARY : p.getName(), p);
      }
      u.closed.addAll(segments);
      u.open = open;
      return u;
    } catch (IOException | RuntimeException e) {
      log.warn("ignoring a damaged {}: {}; followers continue by checksum", file, e.toString());
      return new UnsharedChanges(blockSize);
    }
  }

  private static void deleteQuietly(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      log.warn("cannot remove {}: {}", file, e.toString());
    }
  }
}
