package io.replicator.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class LoopbackPortsTest {

  @Test
  void portsForProcessesStartedLaterAreNeverOnesAnOutgoingConnectionCouldTake() throws Exception {
    int[] range = LoopbackPorts.ephemeralRange();
    assertThat(range[0]).as("the range as the kernel states it, read whole").isGreaterThan(1_023)
        .isLessThanOrEqualTo(range[1]);
    Set<Integer> seen = new HashSet<>();
    for (int i = 0; i < 50; i++) {
      int port = LoopbackPorts.reserve();
      assertThat(port < range[0] || port > range[1]).as("port %s outside %s-%s", port, range[0], range[1]).isTrue();
      assertThat(seen.add(port)).as("handed out twice: %s", port).isTrue();
      try (ServerSocket s = new ServerSocket()) {
        s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1);
      }
    }
  }
}
