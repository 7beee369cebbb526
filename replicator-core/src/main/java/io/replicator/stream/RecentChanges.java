package io.replicator.stream;

import io.replicator.change.FileChange;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The sequence numbers of the changes made while a comparison with the peer runs, by path: what
 * tells a comparison whether the peer's entry (read after changes up to some number were applied)
 * and the local state (read now, under the path's lock) show the same moment. A change to a path
 * or to one of its ancestors numbered after the entry was read makes the comparison inconclusive.
 *
 * <p>Only recent numbers are kept: once the peer's entries show it applied everything up to some
 * number, the records at or below it can no longer matter to entries read later, and are dropped
 * when there are many; a comparison against an entry read before the dropped ones is inconclusive.
 */
final class RecentChanges {
  private static final int PRUNE_ABOVE = 4096;

  /** Changes to an entry itself: data, times, permissions, owner. */
  private final Map<String, Long> entries = new ConcurrentHashMap<>();
  /** Changes of what a name holds (created, deleted, renamed): they concern everything under it too. */
  private final Map<String, Long> names = new ConcurrentHashMap<>();
  private volatile long prunedUpTo;

  /** A change numbered {@code seq}, told while its locks are still held. */
  void numbered(long seq, FileChange change) {
    if (change instanceof FileChange.Force) {
      return; // durability changes nothing the comparison sees
    }
    if (change instanceof FileChange.Move m) {
      names.merge(m.source(), seq, Math::max);
      names.merge(m.target(), seq, Math::max);
    } else if (change instanceof FileChange.Copy c) {
      names.merge(c.target(), seq, Math::max);
    } else if (change.isNamespaceChange()) {
      names.merge(change.path(), seq, Math::max);
    } else {
      entries.merge(change.path(), seq, Math::max);
    }
  }

  /**
   * True when a comparison of {@code path} against the peer's state read after every change up to
   * {@code appliedBefore} was applied can be trusted: no change to the path, and none to what an
   * ancestor's name holds, was numbered after it.
   */
  boolean settled(String path, long appliedBefore) {
    if (appliedBefore < prunedUpTo) {
      return false;
    }
    Long own = entries.get(path);
    if (own != null && own > appliedBefore) {
      return false;
    }
    if (names.isEmpty()) {
      return true;
    }
    String p = path;
    while (true) {
      Long s = names.get(p);
      if (s != null && s > appliedBefore) {
        return false;
      }
      if (p.isEmpty()) {
        return true;
      }
      int slash = p.lastIndexOf('/');
      p = slash < 0 ? "" : p.substring(0, slash);
    }
  }

  /** The peer's latest entry was read after every change up to {@code appliedBefore}: older records may go. */
  void peerApplied(long appliedBefore) {
    if (entries.size() + names.size() <= PRUNE_ABOVE) {
      return;
    }
    // raised before anything is dropped, so a comparison never trusts a record that was removed
    if (appliedBefore > prunedUpTo) {
      prunedUpTo = appliedBefore;
    }
    long upTo = prunedUpTo;
    entries.values().removeIf(s -> s <= upTo);
    names.values().removeIf(s -> s <= upTo);
  }
}
