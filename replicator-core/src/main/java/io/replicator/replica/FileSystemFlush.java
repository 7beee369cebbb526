package io.replicator.replica;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes everything written to the file system under a directory durable with one call: Linux's
 * {@code syncfs(2)}, or {@code sync(2)} elsewhere. A resync writes thousands of files and forces
 * none of them; one flush at its end costs what one journal commit costs, where an fsync per file
 * costs one each.
 */
final class FileSystemFlush {
  private static final Logger log = LoggerFactory.getLogger(FileSystemFlush.class);
  private static final boolean LINUX = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT)
      .startsWith("linux");

  private FileSystemFlush() {}

  /** Returns once everything written so far to {@code directory}'s file system is on its disk. */
  static void flush(Path directory) throws IOException {
    LibC libc = LibCHolder.LIBC;
    if (libc == null) {
      flushByCommand(directory);
      return;
    }
    if (!LINUX) {
      libc.sync();
      return;
    }
    int fd;
    try {
      fd = libc.open(directory.toString(), 0 /* O_RDONLY */);
    } catch (LastErrorException e) {
      throw new IOException("cannot open " + directory + " to flush its file system: errno " + e.getErrorCode());
    }
    try {
      libc.syncfs(fd);
    } catch (LastErrorException e) {
      throw new IOException("syncfs of " + directory + " failed: errno " + e.getErrorCode());
    } finally {
      try {
        libc.close(fd);
      } catch (LastErrorException e) {
        log.debug("close after syncfs of {} failed: errno {}", directory, e.getErrorCode());
      }
    }
  }

  /** Without the native library (say, a temp directory mounted noexec): the {@code sync} command. */
  private static void flushByCommand(Path directory) throws IOException {
    List<String> command = LINUX ? List.of("sync", "-f", directory.toString()) : List.of("sync");
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    try {
      byte[] out = p.getInputStream().readAllBytes();
      int code = p.waitFor();
      if (code != 0) {
        throw new IOException(String.join(" ", command) + " failed with exit code " + code + ": "
            + new String(out, StandardCharsets.UTF_8).strip());
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while flushing " + directory);
    }
  }

  /** The C library's calls this needs, bound through JNA. */
  interface LibC extends Library {
    int open(String path, int flags) throws LastErrorException;

    int syncfs(int fd) throws LastErrorException;

    int close(int fd) throws LastErrorException;

    void sync();
  }

  /** Loaded on first use; null when the native library cannot be loaded here. */
  private static final class LibCHolder {
    static final LibC LIBC = load();

    private static LibC load() {
      try {
        return Native.load("c", LibC.class);
      } catch (LinkageError | RuntimeException e) {
        log.warn("native C library unavailable ({}); file systems are flushed with the sync command", e.toString());
        return null;
      }
    }
  }
}
