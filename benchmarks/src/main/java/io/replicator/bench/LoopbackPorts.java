package io.replicator.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;

/** Loopback ports for peers that must be absent: connecting to them is refused at once. */
final class LoopbackPorts {
  private LoopbackPorts() {}

  /** A port on 127.0.0.1 that was free a moment ago and has nothing listening now. */
  static int unused() {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
