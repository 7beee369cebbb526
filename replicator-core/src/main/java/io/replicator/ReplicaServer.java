package io.replicator;

import java.io.Closeable;
import java.net.InetSocketAddress;

/**
 * The secondary side: receives a primary's changes, applies them under its root, and
 * acknowledges them. Obtain one from {@link Replicator#replica(java.nio.file.Path)}.
 */
public interface ReplicaServer extends Closeable {

  /** The address the server is bound to (the real port when it was asked to listen on port 0). */
  InetSocketAddress localAddress();

  /** A snapshot of the replica's state. */
  ReplicationStatus status();

  /**
   * What the replica's metadata says now: whether its data may be promoted (no resync into it
   * unfinished), whether it still holds changes the primary lacks, and its generation. Cheap: it
   * reads no disk.
   */
  LocalData localData();

  /** The delayed follower's controls when this server is one ({@link Replicator.ReplicaBuilder#delayed}). */
  default java.util.Optional<DelayedFollower> delayed() {
    return java.util.Optional.empty();
  }

  /** Stops accepting, closes connections and files; idempotent. */
  @Override
  void close();
}
