package io.replicator.cluster;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Loopback ports for processes started later that will bind them (the demo's agents, a pair of
 * agents under test). A port the kernel hands out for {@code bind(0)} comes from its ephemeral
 * range, the same range it takes source ports from for outgoing connections: between closing the
 * probe and the child's bind, any connection on the machine may take it, and the child then fails
 * with "address already in use". These ports come from below that range, where the kernel never
 * assigns one by itself, and no port is handed out twice by one process.
 */
public final class LoopbackPorts {
  /** Below this, ports belong to well-known services. */
  private static final int LOWEST = 10_000;
  private static final Path EPHEMERAL_RANGE = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
  private static final Set<Integer> handedOut = new HashSet<>();

  private LoopbackPorts() {}

  /** A port on 127.0.0.1, free now, outside the kernel's ephemeral range, not handed out before. */
  public static synchronized int reserve() throws IOException {
    int highest = ephemeralLow() - 1;
    if (highest - LOWEST < 1_000) {
      // A machine with an unusual range: fall back to asking the kernel.
      try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
        handedOut.add(s.getLocalPort());
        return s.getLocalPort();
      }
    }
    for (int attempt = 0; attempt < 1_000; attempt++) {
      int port = ThreadLocalRandom.current().nextInt(LOWEST, highest + 1);
      if (handedOut.contains(port)) {
        continue;
      }
      try (ServerSocket s = new ServerSocket()) {
        s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1);
      } catch (IOException inUse) {
        continue;
      }
      handedOut.add(port);
      return port;
    }
    throw new IOException("no free loopback port between " + LOWEST + " and " + highest);
  }

  /** The first port of the kernel's ephemeral range (32768 where it cannot be read). */
  private static int ephemeralLow() {
    try {
      String[] range = Files.readString(EPHEMERAL_RANGE).trim().split("\\s+");
      return Integer.parseInt(range[0]);
    } catch (IOException | RuntimeException e) {
      return 32_768;
    }
  }
}
