package io.replicator.fs;

import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.Watchable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The delegate file system's {@link WatchService}, handing out keys whose watchable and event
 * contexts are wrapper paths; events about the metadata directory are dropped.
 */
final class WrappedWatchService implements WatchService {

  private final WrappedFileSystem fs;
  private final WatchService delegate;
  private final Map<WatchKey, Key> keys = new ConcurrentHashMap<>();

  WrappedWatchService(WrappedFileSystem fs, WatchService delegate) {
    this.fs = fs;
    this.delegate = delegate;
  }

  WrappedFileSystem fileSystem() {
    return fs;
  }

  WatchService delegate() {
    return delegate;
  }

  WatchKey wrap(WatchKey delegateKey, WrappedPath watchable) {
    return keys.computeIfAbsent(delegateKey, k -> new Key(k, watchable));
  }

  private WatchKey wrapped(WatchKey delegateKey) {
    if (delegateKey == null) {
      return null;
    }
    Key key = keys.get(delegateKey);
    // A key of a path registered elsewhere cannot occur: every key came through wrap().
    return key != null ? key : delegateKey;
  }

  @Override
  public WatchKey poll() {
    return wrapped(delegate.poll());
  }

  @Override
  public WatchKey poll(long timeout, TimeUnit unit) throws InterruptedException {
    return wrapped(delegate.poll(timeout, unit));
  }

  @Override
  public WatchKey take() throws InterruptedException {
    return wrapped(delegate.take());
  }

  @Override
  public void close() throws IOException {
    try {
      delegate.close();
    } finally {
      keys.clear();
      fs.unregister(this);
    }
  }

  /** A key re-wrapping its watchable and its events' contexts. */
  private final class Key implements WatchKey {
    private final WatchKey delegate;
    private final WrappedPath watchable;

    Key(WatchKey delegate, WrappedPath watchable) {
      this.delegate = delegate;
      this.watchable = watchable;
    }

    @Override
    public boolean isValid() {
      return delegate.isValid();
    }

    @Override
    public List<WatchEvent<?>> pollEvents() {
      boolean atRoot = watchable.changePath().isEmpty();
      List<WatchEvent<?>> events = new ArrayList<>();
      for (WatchEvent<?> event : delegate.pollEvents()) {
        Object context = event.context();
        if (context instanceof Path) {
          WrappedPath name = fs.fromDelegateRelative((Path) context);
          if (atRoot
              && name.getNameCount() > 0
              && name.names().get(0).equals(WrappedFileSystem.METADATA_DIRECTORY)) {
            continue;
          }
          events.add(new Event<>(event, name));
        } else {
          events.add(event);
        }
      }
      return events;
    }

    @Override
    public boolean reset() {
      return delegate.reset();
    }

    @Override
    public void cancel() {
      delegate.cancel();
      keys.remove(delegate);
    }

    @Override
    public Watchable watchable() {
      return watchable;
    }
  }

  /** An event whose context is a wrapper path. */
  private static final class Event<T> implements WatchEvent<T> {
    private final WatchEvent<?> delegate;
    private final Path context;

    Event(WatchEvent<?> delegate, Path context) {
      this.delegate = delegate;
      this.context = context;
    }

    @SuppressWarnings("unchecked")
    @Override
    public Kind<T> kind() {
      return (Kind<T>) delegate.kind();
    }

    @Override
    public int count() {
      return delegate.count();
    }

    @SuppressWarnings("unchecked")
    @Override
    public T context() {
      return (T) context;
    }

    @Override
    public String toString() {
      return kind().name() + " " + context;
    }
  }
}
