package io.replicator.cluster;

import java.io.BufferedReader;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
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
    int[] range = ephemeralRange();
    // Below the range when there is room there, else above it.
    int from = range[0] - LOWEST >= 1_000 ? LOWEST : range[1] + 1;
    int to = range[0] - LOWEST >= 1_000 ? range[0] - 1 : 65_535;
    if (to - from < 1_000) {
      throw new IOException("the kernel's ephemeral port range " + range[0] + "-" + range[1]
          + " leaves no room for ports that outgoing connections cannot take");
    }
    for (int attempt = 0; attempt < 1_000; attempt++) {
      int port = ThreadLocalRandom.current().nextInt(from, to + 1);
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
    throw new IOException("no free loopback port between " + from + " and " + to);
  }

  /**
   * The kernel's ephemeral range (Linux's default, 32768-60999, where it cannot be read). A
   * {@code /proc} file reports a size of 0, so it is read line by line, never by its size.
   */
  static int[] ephemeralRange() {
    try (BufferedReader in = Files.newBufferedReader(EPHEMERAL_RANGE, StandardCharsets.US_ASCII)) {
      String line = in.readLine();
      String[] bounds = line == null ? new String[0] : line.trim().split("\\s+");
      int low = Integer.parseInt(bounds[0]);
      int high = Integer.parseInt(bounds[1]);
      if (low >= 1 && low <= high && high <= 65_535) {
        return new int[] {low, high};
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or not readable: assume its default
    }
    return new int[] {32_768, 60_999};
  }
}
