package io.replicator.fs;

import static java.nio.file.StandardOpenOption.APPEND;
import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.CREATE_NEW;
import static java.nio.file.StandardOpenOption.DELETE_ON_CLOSE;
import static java.nio.file.StandardOpenOption.DSYNC;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.SYNC;
import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;

import com.google.common.collect.ImmutableSet;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The options of one open, normalised once into an immutable value (after jimfs's {@code
 * Options}): what the wrapper acts on, with the defaults filled in, and what the delegate is asked
 * for. Invalid combinations fail here, with the exceptions the JDK gives.
 *
 * @param read the channel may be read
 * @param write the channel may be written
 * @param append writes land at the end
 * @param createNew the open creates the file and fails when it exists
 * @param create the open creates the file when it is missing
 * @param truncate the open empties an existing file
 * @param deleteOnClose the wrapper deletes the file (replicated) when the channel closes
 * @param sync every write is forced with its metadata
 * @param dsync every write is forced (its data)
 * @param noFollow a symbolic link at the path is not followed
 * @param delegate what the delegate file system is asked for: the options without {@code
 *     DELETE_ON_CLOSE}, which the wrapper does itself so that the delete is replicated
 */
record OpenOptions(
    boolean read,
    boolean write,
    boolean append,
    boolean createNew,
    boolean create,
    boolean truncate,
    boolean deleteOnClose,
    boolean sync,
    boolean dsync,
    boolean noFollow,
    Set<OpenOption> delegate) {

  /** The options of {@code newByteChannel}, {@code newFileChannel} and {@code newAsynchronousFileChannel}. */
  static OpenOptions forChannel(Set<? extends OpenOption> options) {
    boolean append = options.contains(APPEND);
    boolean write = append || options.contains(WRITE);
    if (append && options.contains(READ)) {
      throw new IllegalArgumentException("READ + APPEND not allowed");
    }
    if (append && options.contains(TRUNCATE_EXISTING)) {
      throw new IllegalArgumentException("APPEND + TRUNCATE_EXISTING not allowed");
    }
    boolean createNew = write && options.contains(CREATE_NEW);
    Set<OpenOption> delegate = new LinkedHashSet<>(options);
    delegate.remove(DELETE_ON_CLOSE);
    return new OpenOptions(
        options.contains(READ) || !write,
        write,
        append,
        createNew,
        write && !createNew && options.contains(CREATE),
        write && !append && options.contains(TRUNCATE_EXISTING),
        options.contains(DELETE_ON_CLOSE),
        options.contains(SYNC),
        options.contains(DSYNC),
        options.contains(LinkOption.NOFOLLOW_LINKS),
        ImmutableSet.copyOf(delegate));
  }

  /**
   * The options of {@code newOutputStream}: none means {@code CREATE, TRUNCATE_EXISTING}; {@code
   * WRITE} is always added and {@code READ} refused.
   */
  static OpenOptions forOutputStream(OpenOption... options) {
    Set<OpenOption> opts = new LinkedHashSet<>();
    if (options.length == 0) {
      opts.add(CREATE);
      opts.add(TRUNCATE_EXISTING);
    } else {
      for (OpenOption option : options) {
        if (option == READ) {
          throw new IllegalArgumentException("READ not allowed");
        }
        opts.add(option);
      }
    }
    opts.add(WRITE);
    return forChannel(opts);
  }

  /**
   * The options of {@code newInputStream}; {@code APPEND} and {@code WRITE} are refused. Null when
   * they only read (the stream then reads the delegate directly): anything else, such as
   * {@code DELETE_ON_CLOSE}, changes the tree and needs a replicating channel.
   */
  static OpenOptions forInputStream(OpenOption... options) {
    boolean plain = true;
    for (OpenOption option : options) {
      if (option == APPEND || option == WRITE) {
        throw new UnsupportedOperationException("'" + option + "' not allowed");
      }
      if (option != READ && option != LinkOption.NOFOLLOW_LINKS) {
        plain = false;
      }
    }
    if (plain) {
      return null;
    }
    Set<OpenOption> opts = new LinkedHashSet<>(Arrays.asList(options));
    opts.add(READ);
    return forChannel(opts);
  }

  /** Writes are forced: with their metadata ({@code SYNC}) or their data only ({@code DSYNC}). */
  boolean forcesWrites() {
    return sync || dsync;
  }
}
