package io.replicator.change;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.proto.Change;
import io.replicator.proto.Copy;
import io.replicator.proto.CreateFile;
import io.replicator.proto.CreateLink;
import io.replicator.proto.CreateSymbolicLink;
import io.replicator.proto.Delete;
import io.replicator.proto.Force;
import io.replicator.proto.MakeDirectory;
import io.replicator.proto.Move;
import io.replicator.proto.SetOwner;
import io.replicator.proto.SetPermissions;
import io.replicator.proto.SetTimes;
import io.replicator.proto.Truncate;
import io.replicator.proto.Write;
import io.replicator.proto.WriteFile;
import java.nio.ByteBuffer;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The one place where {@link FileChange}s become protobuf {@link Change} headers and back. The
 * way in ({@link #fromProto}) trusts nothing: every path, position, size, mode and the presence
 * of a payload is checked, so the replica only ever sees well-formed changes.
 */
public final class ChangeProtos {

  /** Highest POSIX permission mode a change may carry (rwxrwxrwx, no setuid/setgid/sticky). */
  static final int MAX_MODE = 0777;

  /** PosixFilePermission in declaration order is owner rwx, group rwx, others rwx: bit 8 down to 0. */
  private static final PosixFilePermission[] PERMISSIONS = PosixFilePermission.values();

  private ChangeProtos() {}

  /**
   * The header for a change. A {@link FileChange.Write} carries only its path and position: the
   * caller sends {@code data} as the frame's raw payload.
   */
  public static Change toProto(long seq, FileChange change) {
    checkArgument(seq > 0, "seq must be positive: %s", seq);
    return builder(change).setSeq(seq).build();
  }

  /**
   * The header for a change without its sequence number (0), for a sender that numbers it later
   * ({@code body.toBuilder().setSeq(n)}).
   */
  public static Change unnumbered(FileChange change) {
    return builder(change).build();
  }

  private static Change.Builder builder(FileChange change) {
    checkNotNull(change, "change");
    Change.Builder b = Change.newBuilder();
    if (change instanceof FileChange.Write w) {
      b.setWrite(Write.newBuilder().setPath(w.path()).setPosition(w.position()));
    } else if (change instanceof FileChange.WriteFile f) {
      WriteFile.Builder w = WriteFile.newBuilder().setPath(f.path()).setPosition(f.position()).setCreate(f.create());
      if (f.size() >= 0) {
        w.setSize(f.size());
      }
      if (f.mode() >= 0) {
        w.setMode(f.mode());
      }
      if (f.lastModified() != null) {
        w.setLastModifiedNanos(toNanos(f.lastModified()));
      }
      for (FileChange.WriteFile.Piece p : f.pieces()) {
        w.addPieces(WriteFile.Piece.newBuilder().setPosition(p.position()).setLength(p.length()));
      }
      b.setWriteFile(w);
    } else if (change instanceof FileChange.Truncate t) {
      b.setTruncate(Truncate.newBuilder().setPath(t.path()).setSize(t.size()));
    } else if (change instanceof FileChange.CreateFile c) {
      b.setCreateFile(CreateFile.newBuilder().setPath(c.path()).setTruncate(c.truncate()));
    } else if (change instanceof FileChange.MakeDirectory m) {
      b.setMakeDirectory(MakeDirectory.newBuilder().setPath(m.path()));
    } else if (change instanceof FileChange.Delete d) {
      b.setDelete(Delete.newBuilder().setPath(d.path()));
    } else if (change instanceof FileChange.Move m) {
      b.setMove(
          Move.newBuilder()
              .setSource(m.source())
              .setTarget(m.target())
              .setReplaceExisting(m.replaceExisting())
              .setAtomic(m.atomic())
              .setReplay(m.replay()));
    } else if (change instanceof FileChange.Copy c) {
      b.setCopy(
          Copy.newBuilder()
              .setSource(c.source())
              .setTarget(c.target())
              .setReplaceExisting(c.replaceExisting())
              .setCopyAttributes(c.copyAttributes()));
    } else if (change instanceof FileChange.CreateSymbolicLink l) {
      b.setCreateSymbolicLink(
          CreateSymbolicLink.newBuilder().setPath(l.path()).setTarget(l.target()));
    } else if (change instanceof FileChange.CreateLink l) {
      b.setCreateLink(CreateLink.newBuilder().setPath(l.path()).setExisting(l.existing()));
    } else if (change instanceof FileChange.SetTimes t) {
      SetTimes.Builder times = SetTimes.newBuilder().setPath(t.path());
      if (t.lastModified() != null) {
        times.setLastModifiedNanos(toNanos(t.lastModified()));
      }
      if (t.lastAccess() != null) {
        times.setLastAccessNanos(toNanos(t.lastAccess()));
      }
      if (t.creation() != null) {
        times.setCreationNanos(toNanos(t.creation()));
      }
      b.setSetTimes(times);
    } else if (change instanceof FileChange.SetPermissions p) {
      b.setSetPermissions(
          SetPermissions.newBuilder().setPath(p.path()).setMode(toMode(p.permissions())));
    } else if (change instanceof FileChange.SetOwner o) {
      b.setSetOwner(
          SetOwner.newBuilder()
              .setPath(o.path())
              .setOwner(o.owner() == null ? "" : o.owner())
              .setGroup(o.group() == null ? "" : o.group()));
    } else if (change instanceof FileChange.Force f) {
      b.setForce(Force.newBuilder().setPath(f.path()).setMetadata(f.metadata()).setOrderOnly(f.orderOnly()));
    } else {
      // Unreachable while FileChange is sealed; a new kind must be added here.
      throw new IllegalArgumentException("unknown change kind " + change.getClass().getName());
    }
    return b;
  }

  /**
   * The change a received header (and, for a Write, its payload) describes, fully validated.
   *
   * @param payload the raw bytes after the header; null or empty when the frame had none. It is
   *     only allowed for a Write, whose data becomes a read-only view of it (not a copy), so the
   *     caller keeps the buffer alive until the change is applied.
   * @throws MalformedChangeException naming the seq and the problem
   */
  public static FileChange fromProto(Change proto, ByteBuffer payload)
      throws MalformedChangeException {
    checkNotNull(proto, "proto");
    long seq = proto.getSeq();
    if (seq <= 0) {
      // uint64 on the wire: a value above Long.MAX_VALUE reads as negative and is refused too.
      throw new MalformedChangeException(seq, "seq must be between 1 and 2^63-1");
    }
    Change.OpCase kind = proto.getOpCase();
    // The wire cannot tell "no payload" from "empty payload": only non-empty ones are present.
    boolean hasPayload = payload != null && payload.hasRemaining();
    if (hasPayload && kind != Change.OpCase.WRITE && kind != Change.OpCase.WRITE_FILE) {
      throw new MalformedChangeException(
          seq,
          payload.remaining() + " payload bytes on a change that has no data (" + kindName(kind) + ")");
    }
    switch (kind) {
      case WRITE -> {
        Write w = proto.getWrite();
        String path = path(seq, "write", w.getPath(), false);
        long position = w.getPosition();
        if (position < 0) {
          throw new MalformedChangeException(
              seq, "write position " + Long.toUnsignedString(position) + " is too large");
        }
        ByteBuffer data =
            payload == null ? ByteBuffer.allocate(0) : payload.slice().asReadOnlyBuffer();
        if (position + data.remaining() < 0) {
          throw new MalformedChangeException(
              seq,
              "write of " + data.remaining() + " bytes at position " + position + " overflows");
        }
        return new FileChange.Write(path, position, data);
      }
      case WRITE_FILE -> {
        WriteFile w = proto.getWriteFile();
        String path = path(seq, "write file", w.getPath(), false);
        long position = w.getPosition();
        ByteBuffer data =
            payload == null ? ByteBuffer.allocate(0) : payload.slice().asReadOnlyBuffer();
        if (position < 0 || position + data.remaining() < 0) {
          throw new MalformedChangeException(
              seq, "write file of " + data.remaining() + " bytes at position " + Long.toUnsignedString(position)
                  + " overflows");
        }
        if (w.getCreate() && position != 0) {
          throw new MalformedChangeException(seq, "write file creates the file but writes at position " + position);
        }
        if (w.hasSize() && w.getSize() < 0) {
          throw new MalformedChangeException(
              seq, "write file size " + Long.toUnsignedString(w.getSize()) + " is too large");
        }
        if (w.hasMode() && (w.getMode() & ~MAX_MODE) != 0) {
          throw new MalformedChangeException(seq, "permission mode 0"
              + Long.toOctalString(Integer.toUnsignedLong(w.getMode())) + " is outside 0..0777");
        }
        List<FileChange.WriteFile.Piece> pieces = pieces(seq, w, data.remaining());
        return new FileChange.WriteFile(path, position, data, w.getCreate(), w.hasSize() ? w.getSize() : -1,
            w.hasMode() ? w.getMode() : -1, w.hasLastModifiedNanos() ? fromNanos(w.getLastModifiedNanos()) : null,
            pieces);
      }
      case TRUNCATE -> {
        Truncate t = proto.getTruncate();
        String path = path(seq, "truncate", t.getPath(), false);
        if (t.getSize() < 0) {
          throw new MalformedChangeException(
              seq, "truncate size " + Long.toUnsignedString(t.getSize()) + " is too large");
        }
        return new FileChange.Truncate(path, t.getSize());
      }
      case CREATE_FILE -> {
        CreateFile c = proto.getCreateFile();
        return new FileChange.CreateFile(path(seq, "create file", c.getPath(), false), c.getTruncate());
      }
      case MAKE_DIRECTORY -> {
        return new FileChange.MakeDirectory(
            path(seq, "make directory", proto.getMakeDirectory().getPath(), false));
      }
      case DELETE -> {
        return new FileChange.Delete(path(seq, "delete", proto.getDelete().getPath(), false));
      }
      case MOVE -> {
        Move m = proto.getMove();
        return new FileChange.Move(
            path(seq, "move source", m.getSource(), false),
            path(seq, "move target", m.getTarget(), false),
            m.getReplaceExisting(),
            m.getAtomic(),
            m.getReplay());
      }
      case COPY -> {
        Copy c = proto.getCopy();
        return new FileChange.Copy(
            path(seq, "copy source", c.getSource(), false),
            path(seq, "copy target", c.getTarget(), false),
            c.getReplaceExisting(),
            c.getCopyAttributes());
      }
      case CREATE_SYMBOLIC_LINK -> {
        CreateSymbolicLink l = proto.getCreateSymbolicLink();
        String path = path(seq, "symbolic link", l.getPath(), false);
        return new FileChange.CreateSymbolicLink(path, linkTarget(seq, l.getTarget()));
      }
      case CREATE_LINK -> {
        CreateLink l = proto.getCreateLink();
        return new FileChange.CreateLink(
            path(seq, "link", l.getPath(), false),
            path(seq, "link existing", l.getExisting(), false));
      }
      case SET_TIMES -> {
        SetTimes t = proto.getSetTimes();
        return new FileChange.SetTimes(
            path(seq, "set times", t.getPath(), true),
            t.hasLastModifiedNanos() ? fromNanos(t.getLastModifiedNanos()) : null,
            t.hasLastAccessNanos() ? fromNanos(t.getLastAccessNanos()) : null,
            t.hasCreationNanos() ? fromNanos(t.getCreationNanos()) : null);
      }
      case SET_PERMISSIONS -> {
        SetPermissions p = proto.getSetPermissions();
        String path = path(seq, "set permissions", p.getPath(), true);
        int mode = p.getMode();
        if ((mode & ~MAX_MODE) != 0) {
          throw new MalformedChangeException(
              seq,
              "permission mode 0" + Long.toOctalString(Integer.toUnsignedLong(mode))
                  + " is outside 0..0777");
        }
        return new FileChange.SetPermissions(path, toPermissions(mode));
      }
      case SET_OWNER -> {
        SetOwner o = proto.getSetOwner();
        return new FileChange.SetOwner(
            path(seq, "set owner", o.getPath(), true),
            name(seq, "owner", o.getOwner()),
            name(seq, "group", o.getGroup()));
      }
      case FORCE -> {
        Force f = proto.getForce();
        return new FileChange.Force(path(seq, "force", f.getPath(), true), f.getMetadata(), f.getOrderOnly());
      }
      case OP_NOT_SET -> throw new MalformedChangeException(
          seq, "no operation set (unknown or missing kind of change)");
      default -> throw new MalformedChangeException(seq, "unsupported kind of change " + kind);
    }
  }

  /** The POSIX mode bits (0..0777) of a permission set. */
  public static int toMode(Set<PosixFilePermission> permissions) {
    int mode = 0;
    for (PosixFilePermission p : permissions) {
      mode |= 1 << (8 - p.ordinal());
    }
    return mode;
  }

  /** The permission set of POSIX mode bits; bits above 0777 must be clear. */
  public static Set<PosixFilePermission> toPermissions(int mode) {
    checkArgument((mode & ~MAX_MODE) == 0, "mode 0%s is outside 0..0777", Integer.toOctalString(mode));
    Set<PosixFilePermission> permissions = EnumSet.noneOf(PosixFilePermission.class);
    for (PosixFilePermission p : PERMISSIONS) {
      if ((mode & (1 << (8 - p.ordinal()))) != 0) {
        permissions.add(p);
      }
    }
    return permissions;
  }

  private static long toNanos(FileTime time) {
    // Saturates at about the years 1678 and 2262, which is as far as a long of nanoseconds goes.
    return time.to(TimeUnit.NANOSECONDS);
  }

  private static FileTime fromNanos(long nanos) {
    return FileTime.from(nanos, TimeUnit.NANOSECONDS);
  }

  private static String path(long seq, String what, String path, boolean rootAllowed)
      throws MalformedChangeException {
    String problem = ChangePaths.problem(path);
    if (problem != null) {
      throw new MalformedChangeException(seq, what + ": " + problem);
    }
    if (path.isEmpty() && !rootAllowed) {
      // Only attribute changes and Force may name the root directory itself.
      throw new MalformedChangeException(seq, what + ": the root directory is not allowed here");
    }
    return path;
  }

  private static String linkTarget(long seq, String target) throws MalformedChangeException {
    if (target.isEmpty()) {
      throw new MalformedChangeException(seq, "symbolic link target is empty");
    }
    if (target.length() > ChangePaths.MAX_LENGTH) {
      throw new MalformedChangeException(
          seq, "symbolic link target longer than " + ChangePaths.MAX_LENGTH + " characters");
    }
    if (target.indexOf('\0') >= 0) {
      throw new MalformedChangeException(
          seq, "NUL character in symbolic link target '" + ChangePaths.printable(target) + "'");
    }
    return target;
  }

  private static String name(long seq, String what, String name) throws MalformedChangeException {
    if (name.isEmpty()) {
      return null; // unchanged
    }
    if (name.length() > 256 || name.indexOf('\0') >= 0) {
      throw new MalformedChangeException(
          seq, "bad " + what + " name '" + ChangePaths.printable(name) + "'");
    }
    return name;
  }

  private static String kindName(Change.OpCase kind) {
    return kind == Change.OpCase.OP_NOT_SET ? "unknown" : kind.name().toLowerCase();
  }

  /** A write file's scattered pieces, checked against its payload and its other fields. */
  private static List<FileChange.WriteFile.Piece> pieces(long seq, WriteFile w, int payloadLength)
      throws MalformedChangeException {
    if (w.getPiecesCount() == 0) {
      return List.of();
    }
    if (w.getCreate() || w.getPosition() != 0) {
      throw new MalformedChangeException(seq, "write file of scattered pieces also creates the file or names"
          + " a position");
    }
    List<FileChange.WriteFile.Piece> pieces = new ArrayList<>(w.getPiecesCount());
    long total = 0;
    for (WriteFile.Piece p : w.getPiecesList()) {
      long position = p.getPosition();
      long length = Integer.toUnsignedLong(p.getLength());
      if (length == 0 || length > payloadLength) {
        throw new MalformedChangeException(seq, "write file piece of " + length + " bytes in a payload of "
            + payloadLength);
      }
      if (position < 0 || position + length < 0) {
        throw new MalformedChangeException(seq, "write file piece of " + length + " bytes at position "
            + Long.toUnsignedString(position) + " overflows");
      }
      total += length;
      if (total > payloadLength) {
        break;
      }
      pieces.add(new FileChange.WriteFile.Piece(position, (int) length));
    }
    if (total != payloadLength) {
      throw new MalformedChangeException(seq, "write file pieces of " + total + " bytes for a payload of "
          + payloadLength);
    }
    return pieces;
  }
}
