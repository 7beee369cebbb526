package io.replicator.testing;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP proxy on loopback that tests steer to inject network faults: {@link #cut()} drops every
 * connection, {@link #partition(boolean)} accepts but forwards nothing (a half-open link), and
 * {@link #delay(long)} holds every chunk for a while. It also counts the bytes that crossed it in
 * each direction, so tests can measure the wire rather than trust the code under test.
 */
public final class TcpProxy implements Closeable {
  private final ServerSocket server;
  private final InetSocketAddress target;
  private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;
  private final AtomicLong upstreamBytes = new AtomicLong();
  private final AtomicLong downstreamBytes = new AtomicLong();
  private volatile boolean partitioned;
  private volatile boolean refusing;
  private volatile long delayMillis;
  private volatile boolean closed;

  public TcpProxy(InetSocketAddress target) throws IOException {
    this.target = target;
    this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    this.acceptor = new Thread(this::acceptLoop, "tcp-proxy-accept-" + server.getLocalPort());
    acceptor.setDaemon(true);
    acceptor.start();
  }

  public InetSocketAddress address() {
    return new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort());
  }

  /** Closes every proxied connection now; new ones are still accepted unless refusing. */
  public void cut() {
    for (Socket s : sockets) {
      closeQuietly(s);
    }
    sockets.clear();
  }

  /** While on, new connections are closed at once (the peer looks down). */
  public void refuse(boolean on) {
    refusing = on;
    if (on) {
      cut();
    }
  }

  /** While on, bytes are swallowed in both directions: connections stay open but silent. */
  public void partition(boolean on) {
    partitioned = on;
  }

  /** Holds each chunk for this long before forwarding it. */
  public void delay(long millis) {
    delayMillis = millis;
  }

  /** Bytes sent from the client side to the target (the primary's stream). */
  public long upstreamBytes() {
    return upstreamBytes.get();
  }

  public long downstreamBytes() {
    return downstreamBytes.get();
  }

  public int openConnections() {
    return sockets.size() / 2;
  }

  private void acceptLoop() {
    while (!closed) {
      Socket client;
      try {
        client = server.accept();
      } catch (IOException e) {
        return;
      }
      if (refusing) {
        closeQuietly(client);
        continue;
      }
      Socket upstream = new Socket();
      try {
        // without it, Nagle and delayed acks add ~40 ms to every small acknowledgement
        client.setTcpNoDelay(true);
        upstream.setTcpNoDelay(true);
        upstream.connect(target, 2000);
      } catch (IOException e) {
        closeQuietly(client);
        closeQuietly(upstream);
        continue;
      }
      sockets.add(client);
      sockets.add(upstream);
      pump(client, upstream, upstreamBytes, "up");
      pump(upstream, client, downstreamBytes, "down");
    }
  }

  private void pump(Socket from, Socket to, AtomicLong counter, String name) {
    Thread t = new Thread(() -> {
      byte[] buf = new byte[64 * 1024];
      try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
        int n;
        while ((n = in.read(buf)) >= 0) {
          long d = delayMillis;
          if (d > 0) {
            Thread.sleep(d); // the injected fault itself, not a wait for a condition
          }
          if (partitioned) {
            continue;
          }
          out.write(buf, 0, n);
          out.flush();
          counter.addAndGet(n);
        }
      } catch (IOException | InterruptedException e) {
        // the other side or cut() closed the link
      } finally {
        closeQuietly(from);
        closeQuietly(to);
        sockets.remove(from);
        sockets.remove(to);
      }
    }, "tcp-proxy-" + name + "-" + server.getLocalPort());
    t.setDaemon(true);
    t.start();
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing
    }
  }

  @Override
  public void close() {
    closed = true;
    try {
      server.close();
    } catch (IOException ignored) {
      // closing
    }
    cut();
    try {
      acceptor.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

}
