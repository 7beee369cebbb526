package io.replicator.replica;

import io.replicator.change.ChangePaths;
import java.io.IOException;

/**
 * The replica refused a change path: it is malformed, names the metadata directory, or would
 * reach outside the replica root (through a symbolic link, for instance). Nothing was changed.
 */
public final class PathRefusedException extends IOException {

  private static final long serialVersionUID = 1L;

  private final String path;

  PathRefusedException(String path, String reason) {
    super("refused path '" + ChangePaths.printable(path) + "': " + reason);
    this.path = path;
  }

  /** The change path as received (unescaped). */
  public String path() {
    return path;
  }
}
