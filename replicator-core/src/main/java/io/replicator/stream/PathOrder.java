package io.replicator.stream;

import java.util.Comparator;

/**
 * The order in which both nodes walk a tree: pre-order, the names of a directory sorted as strings.
 * On change paths that is the string order with '/' below every other character, so a directory
 * comes right before everything under it and a subtree is one interval of the order.
 */
final class PathOrder {
  static final Comparator<String> COMPARATOR = PathOrder::compare;

  private PathOrder() {}

  static int compare(String a, String b) {
    int n = Math.min(a.length(), b.length());
    for (int i = 0; i < n; i++) {
      char x = a.charAt(i);
      char y = b.charAt(i);
      if (x != y) {
        return (x == '/' ? 0 : x + 1) - (y == '/' ? 0 : y + 1);
      }
    }
    return a.length() - b.length();
  }

  /** The paths of {@code paths} that are not under another one of them, in this order. */
  static java.util.List<String> minimalRoots(java.util.Collection<String> paths) {
    java.util.TreeSet<String> sorted = new java.util.TreeSet<>(COMPARATOR);
    sorted.addAll(paths);
    java.util.List<String> out = new java.util.ArrayList<>();
    String last = null;
    for (String p : sorted) {
      if (last != null && within(p, last)) {
        continue; // a subtree is one interval of the order: its root came just before
      }
      out.add(p);
      last = p;
    }
    return out;
  }

  /** True when {@code path} is {@code ancestor} or under it ("" is the root, above everything). */
  static boolean within(String path, String ancestor) {
    return ancestor.isEmpty() || path.equals(ancestor)
        || (path.length() > ancestor.length() && path.startsWith(ancestor) && path.charAt(ancestor.length()) == '/');
  }
}
