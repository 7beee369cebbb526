package io.replicator.fs;

import java.io.IOException;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A {@link DirectoryStream} over a delegate's stream: entries come back as wrapper paths and the
 * metadata directory is skipped at the root. When the delegate's stream is secure, {@link
 * WrappedSecureDirectoryStream} adds its relative operations, replicated.
 */
class WrappedDirectoryStream implements DirectoryStream<Path> {

  final WrappedFileSystem fs;
  final WrappedPath directory;
  private final DirectoryStream<Path> delegate;
  private final DirectoryStream.Filter<? super Path> filter;
  private final boolean atRoot;

  WrappedDirectoryStream(
      WrappedFileSystem fs,
      WrappedPath directory,
      DirectoryStream<Path> delegate,
      DirectoryStream.Filter<? super Path> filter) {
    this.fs = fs;
    this.directory = directory;
    this.delegate = delegate;
    this.filter = filter;
    this.atRoot = directory.changePath().isEmpty();
  }

  @Override
  public Iterator<Path> iterator() {
    Iterator<Path> entries = delegate.iterator();
    return new Iterator<>() {
      private Path next;

      @Override
      public boolean hasNext() {
        while (next == null && entries.hasNext()) {
          String name = entries.next().getFileName().toString();
          if (atRoot && name.equals(WrappedFileSystem.METADATA_DIRECTORY)) {
            continue;
          }
          Path entry = directory.resolve(name);
          try {
            if (filter.accept(entry)) {
              next = entry;
            }
          } catch (IOException e) {
            throw new DirectoryIteratorException(e);
          }
        }
        return next != null;
      }

      @Override
      public Path next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        Path result = next;
        next = null;
        return result;
      }
    };
  }

  @Override
  public void close() throws IOException {
    try {
      delegate.close();
    } finally {
      fs.unregister(this);
    }
  }
}
