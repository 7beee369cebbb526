package io.replicator;

import java.io.IOException;
import java.net.URI;
import java.util.Map;

/** Entry point of the library. Placeholder: the real builder API is wired later. */
public final class Replicator {

  private Replicator() {}

  /** Opens a replicated file system from a {@code replica} URI and its environment. */
  public static ReplicatedFileSystem openFromUri(URI uri, Map<String, ?> env) throws IOException {
    throw new UnsupportedOperationException("wired later");
  }
}
