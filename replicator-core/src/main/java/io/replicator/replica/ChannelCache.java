package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A bounded LRU of open write channels keyed by change path, so a stream of writes to one file
 * opens it once. Each apply worker owns one (a path always maps to the same worker), so a
 * channel is never closed under the thread writing through it; the lock only covers barriers
 * and close, which look into every worker's cache while the workers are idle.
 */
final class ChannelCache {

  private static final Logger log = LoggerFactory.getLogger(ChannelCache.class);

  private final int capacity;
  private final LinkedHashMap<String, FileChannel> channels;

  ChannelCache(int capacity) {
    checkArgument(capacity > 0, "capacity must be positive: %s", capacity);
    this.capacity = capacity;
    this.channels = new LinkedHashMap<>(16, 0.75f, true);
  }

  /** The open channel for a change path, or null. */
  synchronized FileChannel get(String path) {
    FileChannel channel = channels.get(path);
    if (channel != null && !channel.isOpen()) {
      // Closed behind our back (an interrupt): forget it so the caller reopens.
      channels.remove(path);
      return null;
    }
    return channel;
  }

  /** Caches a freshly opened channel, closing the least recently used one beyond capacity. */
  synchronized void put(String path, FileChannel channel) {
    FileChannel previous = channels.put(path, channel);
    if (previous != null && previous != channel) {
      closeQuietly(path, previous);
    }
    if (channels.size() > capacity) {
      Iterator<Map.Entry<String, FileChannel>> eldest = channels.entrySet().iterator();
      Map.Entry<String, FileChannel> entry = eldest.next();
      eldest.remove();
      closeQuietly(entry.getKey(), entry.getValue());
    }
  }

  /** Closes and forgets the channels whose change path matches. */
  synchronized int evictIf(Predicate<String> matches) {
    List<String> evicted = new ArrayList<>();
    for (Iterator<Map.Entry<String, FileChannel>> it = channels.entrySet().iterator();
        it.hasNext(); ) {
      Map.Entry<String, FileChannel> entry = it.next();
      if (matches.test(entry.getKey())) {
        it.remove();
        closeQuietly(entry.getKey(), entry.getValue());
        evicted.add(entry.getKey());
      }
    }
    return evicted.size();
  }

  synchronized int size() {
    return channels.size();
  }

  /** Closes every channel; the cache stays usable. */
  synchronized void closeAll() {
    evictIf(path -> true);
  }

  private static void closeQuietly(String path, FileChannel channel) {
    try {
      channel.close();
    } catch (IOException e) {
      // Data already reached the kernel with each write; a close error loses nothing we rely on.
      log.warn("closing the cached channel of '{}' failed", path, e);
    }
  }
}
