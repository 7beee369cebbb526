package io.replicator.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The fault proxy does what each fault says, so torture runs inject what they claim to. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TcpProxyTest {
  ServerSocket echo;
  Thread echoThread;
  TcpProxy proxy;

  @BeforeEach
  void start() throws IOException {
    echo = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    echoThread = new Thread(() -> {
      while (!echo.isClosed()) {
        try {
          Socket s = echo.accept();
          Thread t = new Thread(() -> {
            try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
              in.transferTo(out);
            } catch (IOException e) {
              // closed
            }
          });
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return;
        }
      }
    });
    echoThread.setDaemon(true);
    echoThread.start();
    proxy = new TcpProxy(new InetSocketAddress(InetAddress.getLoopbackAddress(), echo.getLocalPort()));
  }

  @AfterEach
  void stop() throws Exception {
    proxy.close();
    echo.close();
    echoThread.join(5000);
  }

  private Socket connect() throws IOException {
    Socket s = new Socket();
    s.connect(proxy.address(), 2000);
    s.setSoTimeout(3000);
    return s;
  }

  private static byte[] roundTrip(Socket s, int size) throws IOException {
    byte[] sent = new byte[size];
    for (int i = 0; i < size; i++) {
      sent[i] = (byte) i;
    }
    s.getOutputStream().write(sent);
    s.getOutputStream().flush();
    return s.getInputStream().readNBytes(size);
  }

  @Test
  void forwardsAndCountsBothDirections() throws IOException {
    try (Socket s = connect()) {
      assertThat(roundTrip(s, 1000)).hasSize(1000);
    }
    assertThat(proxy.upstreamBytes()).isEqualTo(1000);
    assertThat(proxy.downstreamBytes()).isEqualTo(1000);
  }

  @Test
  void delayAndJitterHoldEachChunk() throws IOException {
    proxy.delay(100);
    proxy.jitter(50);
    try (Socket s = connect()) {
      long t0 = System.nanoTime();
      assertThat(roundTrip(s, 10)).hasSize(10);
      // one chunk each way, each held for at least the delay
      assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isGreaterThanOrEqualTo(200);
    }
  }

  @Test
  void bandwidthCapSlowsABulkTransfer() throws IOException {
    proxy.bandwidth(200_000);
    try (Socket s = connect()) {
      s.setSoTimeout(10_000);
      long t0 = System.nanoTime();
      assertThat(roundTrip(s, 100_000)).hasSize(100_000);
      // 100 kB at 200 kB/s is at least half a second
      assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isGreaterThanOrEqualTo(450);
    }
  }

  @Test
  void partitionKeepsTheConnectionOpenButSilent() throws IOException {
    try (Socket s = connect()) {
      roundTrip(s, 10);
      proxy.partition(true);
      assertThatThrownBy(() -> roundTrip(s, 10)).isInstanceOf(SocketTimeoutException.class);
      assertThat(s.isClosed()).isFalse();
      // held, not lost: once healed the bytes arrive, as TCP would deliver them
      proxy.partition(false);
      assertThat(s.getInputStream().readNBytes(10)).hasSize(10);
    }
  }

  @Test
  void oneWayPartitionDropsOnlyOneDirection() throws IOException {
    try (Socket s = connect()) {
      roundTrip(s, 10);
      proxy.dropDownstream(true);
      long before = proxy.upstreamBytes();
      assertThatThrownBy(() -> roundTrip(s, 10)).isInstanceOf(SocketTimeoutException.class);
      // the bytes still reached the target: only the answers were lost
      assertThat(proxy.upstreamBytes()).isEqualTo(before + 10);
    }
  }

  @Test
  void halfOpenAcceptsButNeverAnswers() throws IOException {
    proxy.halfOpen(true);
    try (Socket s = connect()) {
      assertThatThrownBy(() -> roundTrip(s, 10)).isInstanceOf(SocketTimeoutException.class);
      assertThat(proxy.upstreamBytes()).isZero();
    }
    proxy.heal();
    try (Socket s = connect()) {
      assertThat(roundTrip(s, 10)).hasSize(10);
    }
  }

  @Test
  void cutClosesAndRefuseKeepsNewConnectionsOut() throws IOException {
    Socket s = connect();
    roundTrip(s, 10);
    proxy.refuse(true);
    // the cut connection reads end of stream (or a reset) instead of hanging
    try (s) {
      s.getOutputStream().write(1);
      assertThat(s.getInputStream().read()).isEqualTo(-1);
    } catch (IOException reset) {
      // also a closed link
    }
    try (Socket refused = connect()) {
      assertThat(refused.getInputStream().read()).isEqualTo(-1);
    } catch (IOException reset) {
      // also refused
    }
    proxy.heal();
    try (Socket again = connect()) {
      assertThat(roundTrip(again, 10)).hasSize(10);
    }
  }
}
