package io.replicator.change;

/**
 * Rules for the relative paths that changes carry: '/'-separated, no leading or trailing '/',
 * no empty, "." or ".." element, no NUL, at most {@link #MAX_LENGTH} UTF-16 units. The empty
 * string is the root directory. The replica checks every received path with {@link #check}.
 */
public final class ChangePaths {

  /** Longest path accepted on the wire (Linux PATH_MAX). */
  public static final int MAX_LENGTH = 4096;

  private ChangePaths() {}

  /**
   * Returns {@code path} when it is a valid change path, and throws otherwise.
   *
   * @throws IllegalArgumentException with the reason, naming the path
   */
  public static String check(String path) {
    String reason = problem(path);
    if (reason != null) {
      throw new IllegalArgumentException(reason);
    }
    return path;
  }

  /** Returns why {@code path} is not a valid change path, or null when it is. */
  public static String problem(String path) {
    if (path == null) {
      return "path is missing";
    }
    if (path.isEmpty()) {
      return null;
    }
    if (path.length() > MAX_LENGTH) {
      return "path longer than " + MAX_LENGTH + " characters";
    }
    if (path.charAt(0) == '/') {
      return "absolute path '" + printable(path) + "'";
    }
    int start = 0;
    for (int i = 0; i <= path.length(); i++) {
      if (i == path.length() || path.charAt(i) == '/') {
        String element = path.substring(start, i);
        if (element.isEmpty()) {
          return "empty element in path '" + printable(path) + "'";
        }
        if (element.equals(".") || element.equals("..")) {
          return "'" + element + "' in path '" + printable(path) + "'";
        }
        start = i + 1;
      } else {
        char c = path.charAt(i);
        if (c == 0) {
          return "NUL character in path '" + printable(path) + "'";
        }
      }
    }
    return null;
  }

  /** The path with control characters escaped, cut to 200 characters, for log lines. */
  public static String printable(String path) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < path.length() && b.length() < 200; i++) {
      char c = path.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        b.append(String.format("\\x%02x", (int) c));
      } else {
        b.append(c);
      }
    }
    if (b.length() >= 200) {
      b.append("...");
    }
    return b.toString();
  }
}
