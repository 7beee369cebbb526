package io.replicator.change;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.nio.ByteBuffer;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Set;

/**
 * One mutating operation on the replicated tree, as the primary made it and the replica must
 * repeat it. Paths are {@linkplain ChangePaths relative change paths}: '/'-separated, relative
 * to the root, normalised; the empty string is the root directory itself.
 *
 * <p>Namespace changes (create or remove a name) are ordered against everything; data changes
 * are ordered only against changes to the same path, which lets the replica apply different
 * files in parallel.
 */
public sealed interface FileChange {

  /** The path this change is about (for a two-path change, the one it creates or changes). */
  String path();

  /** True when this change adds, removes or renames a name and so orders against all others. */
  default boolean isNamespaceChange() {
    return false;
  }

  /** The bytes this change carries (the frame's payload), or null when it carries none. */
  default ByteBuffer payload() {
    return null;
  }

  /** How many bytes {@link #payload()} holds. */
  default int payloadLength() {
    return 0;
  }

  /** Bytes written at a position. {@code data} is a read-only view of exactly the bytes written. */
  record Write(String path, long position, ByteBuffer data) implements FileChange {
    public Write {
      checkNotNull(path, "path");
      checkArgument(position >= 0, "negative position %s", position);
      checkNotNull(data, "data");
    }

    public int length() {
      return data.remaining();
    }

    @Override
    public ByteBuffer payload() {
      return data;
    }

    @Override
    public int payloadLength() {
      return data.remaining();
    }
  }

  /**
   * Resync's write of a regular file, applied in order with the file's other data changes: created
   * or emptied first when {@code create} (then {@code position} is 0), {@code data} written at
   * {@code position}, cut to {@code size} when it is not negative, then given {@code mode} (POSIX
   * bits, when not negative) and {@code lastModified} (when not null). One change carries a small
   * file whole, with its attributes, where the application's way takes four.
   *
   * <p>With {@code pieces}, {@code data} is the file's scattered dirty blocks: cut into the pieces'
   * lengths in order, each written at its own position ({@code position} is then 0 and
   * {@code create} false). Many small runs of one file then cost the peer one change, not one each.
   */
  record WriteFile(String path, long position, ByteBuffer data, boolean create, long size, int mode,
      FileTime lastModified, List<Piece> pieces) implements FileChange {
    public WriteFile {
      checkNotNull(path, "path");
      checkArgument(position >= 0, "negative position %s", position);
      checkArgument(!create || position == 0, "a created file is written from position 0, not %s", position);
      checkNotNull(data, "data");
      checkArgument(mode <= 0777, "mode 0%s is outside 0..0777", Integer.toOctalString(mode));
      pieces = List.copyOf(pieces);
      if (!pieces.isEmpty()) {
        checkArgument(!create && position == 0, "scattered pieces neither create a file nor start at a position");
        long total = 0;
        for (Piece p : pieces) {
          total += p.length();
        }
        checkArgument(total == data.remaining(), "pieces of %s bytes for a payload of %s", total, data.remaining());
      }
    }

    /** One contiguous write: {@code data} at {@code position}. */
    public WriteFile(String path, long position, ByteBuffer data, boolean create, long size, int mode,
        FileTime lastModified) {
      this(path, position, data, create, size, mode, lastModified, List.of());
    }

    /** The ranges this change writes: its pieces, or {@code data} at {@code position}. */
    public List<Piece> ranges() {
      return pieces.isEmpty() ? List.of(new Piece(position, data.remaining())) : pieces;
    }

    @Override
    public ByteBuffer payload() {
      return data;
    }

    @Override
    public int payloadLength() {
      return data.remaining();
    }

    /** {@code length} bytes of the payload, written at {@code position}. */
    public record Piece(long position, int length) {
      public Piece {
        checkArgument(position >= 0, "negative position %s", position);
        checkArgument(length >= 0, "negative length %s", length);
        checkArgument(position + length >= 0, "%s bytes at position %s overflow", length, position);
      }
    }
  }

  /** The file was cut to {@code size} bytes. */
  record Truncate(String path, long size) implements FileChange {
    public Truncate {
      checkNotNull(path, "path");
      checkArgument(size >= 0, "negative size %s", size);
    }
  }

  /** A regular file was created, or opened with truncation; {@code truncate} empties it. */
  record CreateFile(String path, boolean truncate) implements FileChange {
    public CreateFile {
      checkNotNull(path, "path");
    }
  }

  /** A directory was created. */
  record MakeDirectory(String path) implements FileChange {
    public MakeDirectory {
      checkNotNull(path, "path");
    }

    @Override
    public boolean isNamespaceChange() {
      return true;
    }
  }

  /** A file, an empty directory or a symbolic link (not followed) was deleted. */
  record Delete(String path) implements FileChange {
    public Delete {
      checkNotNull(path, "path");
    }

    @Override
    public boolean isNamespaceChange() {
      return true;
    }
  }

  /** {@code source} was renamed to {@code target}. */
  record Move(String source, String target, boolean replaceExisting, boolean atomic, boolean replay)
      implements FileChange {
    public Move {
      checkNotNull(source, "source");
      checkNotNull(target, "target");
    }

    /** A rename the application made. */
    public Move(String source, String target, boolean replaceExisting, boolean atomic) {
      this(source, target, replaceExisting, atomic, false);
    }

    @Override
    public String path() {
      return target;
    }

    @Override
    public boolean isNamespaceChange() {
      return true;
    }
  }

  /** {@code source} was copied to {@code target} inside the replicated tree. */
  record Copy(String source, String target, boolean replaceExisting, boolean copyAttributes)
      implements FileChange {
    public Copy {
      checkNotNull(source, "source");
      checkNotNull(target, "target");
    }

    @Override
    public String path() {
      return target;
    }

    @Override
    public boolean isNamespaceChange() {
      return true;
    }
  }

  /** A symbolic link at {@code path} pointing to {@code target} (stored as given, never resolved). */
  record CreateSymbolicLink(String path, String target) implements FileChange {
    public CreateSymbolicLink {
      checkNotNull(path, "path");
      checkNotNull(target, "target");
    }

    @Override
    public boolean isNamespaceChange() {
      return true;
    }
  }

  /** A hard link at {@code path} to the existing file {@code existing}. */
  record CreateLink(String path, String existing) implements FileChange {
    public CreateLink {
      checkNotNull(path, "path");
      checkNotNull(existing, "existing");
    }

    @Override
    public boolean isNamespaceChange() {
      return true;
    }
  }

  /** File times changed; a null time was left unchanged. */
  record SetTimes(String path, FileTime lastModified, FileTime lastAccess, FileTime creation)
      implements FileChange {
    public SetTimes {
      checkNotNull(path, "path");
    }
  }

  /** POSIX permissions were set. */
  record SetPermissions(String path, Set<PosixFilePermission> permissions) implements FileChange {
    public SetPermissions {
      checkNotNull(path, "path");
      permissions = Set.copyOf(permissions);
    }
  }

  /** Owner and/or group were set, by name; a null name was left unchanged. */
  record SetOwner(String path, String owner, String group) implements FileChange {
    public SetOwner {
      checkNotNull(path, "path");
    }
  }

  /**
   * Durability barrier: every earlier change is applied on the replica, then {@code path} (a file
   * or a directory) is made durable there, its metadata too when {@code metadata} is set. With
   * {@code orderOnly}, nothing is made durable: it is applied once every earlier change is.
   */
  record Force(String path, boolean metadata, boolean orderOnly) implements FileChange {
    public Force {
      checkNotNull(path, "path");
    }

    /** A durability barrier for {@code path}. */
    public Force(String path, boolean metadata) {
      this(path, metadata, false);
    }

    /** A barrier of order only: applied once every change before it is applied. */
    public static Force barrier() {
      return new Force("", false, true);
    }
  }
}
