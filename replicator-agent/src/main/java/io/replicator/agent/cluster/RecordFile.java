package io.replicator.agent.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One small protobuf record in one file, replaced atomically: written to a temporary file,
 * forced, renamed over the old one, and the directory forced, so a crash leaves either the old
 * record or the new one, never a torn one. Used for the agent's role record and the witness's
 * record, which change only on role changes.
 */
final class RecordFile<T extends Message> {
  private static final Logger log = LoggerFactory.getLogger(RecordFile.class);

  private final Path file;
  private final Parser<T> parser;
  private final T empty;

  RecordFile(Path file, Parser<T> parser, T empty) {
    this.file = file;
    this.parser = parser;
    this.empty = empty;
  }

  /** The record on disk; the empty record when there is none or it cannot be read (said in the log). */
  T read() {
    try {
      return parser.parseFrom(Files.readAllBytes(file));
    } catch (NoSuchFileException e) {
      return empty;
    } catch (InvalidProtocolBufferException e) {
      log.error("{} is damaged ({}); starting from an empty record", file, e.getMessage());
      return empty;
    } catch (IOException e) {
      log.error("cannot read {} ({}); starting from an empty record", file, e.getMessage());
      return empty;
    }
  }

  /** Replaces the record durably; throws when the disk refuses, so no decision rests on an unwritten record. */
  void write(T record) {
    try {
      Files.createDirectories(file.getParent());
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        ByteBuffer b = ByteBuffer.wrap(record.toByteArray());
        while (b.hasRemaining()) {
          ch.write(b);
        }
        ch.force(true);
      }
      try {
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
      }
      try (FileChannel dir = FileChannel.open(file.getParent(), StandardOpenOption.READ)) {
        dir.force(true);
      } catch (IOException e) {
        // some file systems cannot force a directory; the rename is still atomic
        log.debug("cannot force directory {}: {}", file.getParent(), e.toString());
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  Path file() {
    return file;
  }
}
