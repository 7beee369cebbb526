package io.replicator.bench;

import java.io.IOException;
import java.io.UncheckedIOException;

/** Loopback ports for peers that are absent or bind later: connecting to them is refused until then. */
final class LoopbackPorts {
  private LoopbackPorts() {}

  /** A port on 127.0.0.1 with nothing listening now, outside the range outgoing connections use. */
  static int unused() {
    try {
      return io.replicator.cluster.LoopbackPorts.reserve();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
