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
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP proxy on loopback that tests steer to inject network faults, each switchable at any time
 * from the test thread:
 *
 * <ul>
 *   <li>{@link #delay(long)} and {@link #jitter(long)}: each chunk is held for the delay plus a
 *       random part of the jitter (order is kept, as TCP would);
 *   <li>{@link #bandwidth(long)}: each direction of each connection is capped to a byte rate;
 *   <li>{@link #partition(boolean)}: nothing gets through in either direction while connections
 *       stay open (a silent link, as with an iptables DROP rule: bytes are held, not lost, and
 *       arrive if the link heals before an end gives up);
 *   <li>{@link #dropUpstream(boolean)} / {@link #dropDownstream(boolean)}: the same in one direction;
 *   <li>{@link #halfOpen(boolean)}: new connections are accepted and then never answered;
 *   <li>{@link #cut()}: every connection is closed now; {@link #refuse(boolean)}: new connections
 *       are closed at once (the peer looks down).
 * </ul>
 *
 * <p>It also counts the bytes that crossed it in each direction, so tests can measure the wire
 * rather than trust the code under test.
 */
public final class TcpProxy implements Closeable {
  private final ServerSocket server;
  private final InetSocketAddress target;
  private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;
  private final AtomicLong upstreamBytes = new AtomicLong();
  private final AtomicLong downstreamBytes = new AtomicLong();
  private volatile boolean dropUpstream;
  private volatile boolean dropDownstream;
  private volatile boolean refusing;
  private volatile boolean halfOpen;
  private volatile long delayMillis;
  private volatile long jitterMillis;
  private volatile long bytesPerSecond;
  private volatile boolean closed;
  private final Object faultsChanged = new Object();

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

  /** Closes every proxied (and every held half-open) connection now; new ones are still accepted unless refusing. */
  public void cut() {
    for (Socket s : sockets) {
      closeQuietly(s);
    }
    sockets.clear();
    faultsChanged();
  }

  /** While on, new connections are closed at once (the peer looks down). */
  public void refuse(boolean on) {
    refusing = on;
    if (on) {
      cut();
    }
  }

  /** While on, nothing gets through in either direction: connections stay open but silent. */
  public void partition(boolean on) {
    dropUpstream = on;
    dropDownstream = on;
    faultsChanged();
  }

  /** While on, nothing gets from the connecting side to the target; the other way still flows. */
  public void dropUpstream(boolean on) {
    dropUpstream = on;
    faultsChanged();
  }

  /** While on, nothing gets from the target back to the connecting side; the other way still flows. */
  public void dropDownstream(boolean on) {
    dropDownstream = on;
    faultsChanged();
  }

  /** While on, new connections are accepted but never connected onwards nor answered. */
  public void halfOpen(boolean on) {
    halfOpen = on;
  }

  /** Holds each chunk for this long before forwarding it. */
  public void delay(long millis) {
    delayMillis = millis;
  }

  /** Adds a random part of up to this long to each chunk's delay. */
  public void jitter(long millis) {
    jitterMillis = millis;
  }

  /** Caps each direction of each connection to this many bytes per second; 0 lifts the cap. */
  public void bandwidth(long bytesPerSecond) {
    this.bytesPerSecond = bytesPerSecond;
  }

  /** Lifts every fault: no delay, jitter, cap, drop, half-open or refusal (connections cut stay cut). */
  public void heal() {
    delayMillis = 0;
    jitterMillis = 0;
    bytesPerSecond = 0;
    dropUpstream = false;
    dropDownstream = false;
    halfOpen = false;
    refusing = false;
    faultsChanged();
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
      if (halfOpen) {
        sockets.add(client);
        swallow(client);
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
      AtomicInteger directionsOpen = new AtomicInteger(2);
      pump(client, upstream, upstreamBytes, true, directionsOpen);
      pump(upstream, client, downstreamBytes, false, directionsOpen);
    }
  }

  /** Reads and discards what a held half-open connection sends, until it or {@link #cut()} closes it. */
  private void swallow(Socket s) {
    Thread t = new Thread(() -> {
      byte[] buf = new byte[16 * 1024];
      try (InputStream in = s.getInputStream()) {
        while (in.read(buf) >= 0) {
          // never answered
        }
      } catch (IOException e) {
        // closed
      } finally {
        closeQuietly(s);
        sockets.remove(s);
      }
    }, "tcp-proxy-held-" + server.getLocalPort());
    t.setDaemon(true);
    t.start();
  }

  /**
   * Forwards one direction. An end of stream is passed on as an end of stream (the other
   * direction goes on, as TCP's half-close allows), and the sockets close once both directions
   * ended: closing a socket whose other direction still has bytes unread would send a reset, which
   * can destroy what the far end has not read yet, something a real link never does.
   */
  private void pump(Socket from, Socket to, AtomicLong counter, boolean up, AtomicInteger directionsOpen) {
    Thread t = new Thread(() -> {
      byte[] buf = new byte[64 * 1024];
      boolean otherDirectionGoesOn = false;
      try {
        InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream();
        while (true) {
          long cap = bytesPerSecond;
          // small chunks under a cap, so the rate is smooth rather than bursts of 64 KiB
          int max = cap > 0 ? (int) Math.max(512, Math.min(buf.length, cap / 20)) : buf.length;
          int n = in.read(buf, 0, max);
          if (n < 0) {
            break;
          }
          long d = delayMillis;
          long j = jitterMillis;
          long hold = d + (j > 0 ? ThreadLocalRandom.current().nextLong(j + 1) : 0);
          holdFor(TimeUnit.MILLISECONDS.toNanos(hold), to);
          // A silent direction holds the bytes and stops reading, as a link that drops packets
          // does to TCP: the sender's buffers fill, and what was held arrives in order once the
          // link heals (unless an end gives up first). Swallowing them instead would cut frames
          // and acknowledgements out of a stream TCP never loses bytes from.
          awaitFlowing(up, to);
          // counted before it is forwarded: the answer to these bytes may come back (and a test
          // read the counter) before this thread runs again
          counter.addAndGet(n);
          out.write(buf, 0, n);
          out.flush();
          cap = bytesPerSecond;
          if (cap > 0) {
            holdFor(n * 1_000_000_000L / cap, to);
          }
        }
        to.shutdownOutput();
        otherDirectionGoesOn = directionsOpen.decrementAndGet() > 0;
      } catch (IOException | InterruptedException e) {
        // the other side or cut() closed the link
      } finally {
        if (!otherDirectionGoesOn) {
          closeQuietly(from);
          closeQuietly(to);
          sockets.remove(from);
          sockets.remove(to);
        }
      }
    }, "tcp-proxy-" + (up ? "up" : "down") + "-" + server.getLocalPort());
    t.setDaemon(true);
    t.start();
  }

  /**
   * Holds a chunk for the injected delay or rate: a wait with a deadline, ended early by a cut or
   * by closing the proxy.
   */
  private void holdFor(long nanos, Socket to) throws InterruptedException {
    long deadline = System.nanoTime() + nanos;
    synchronized (faultsChanged) {
      long left;
      while (!closed && !to.isClosed() && (left = deadline - System.nanoTime()) > 0) {
        TimeUnit.NANOSECONDS.timedWait(faultsChanged, left);
      }
    }
  }

  /** Waits while this direction is silent, until a heal, a cut or the proxy closing. */
  private void awaitFlowing(boolean up, Socket to) throws InterruptedException {
    synchronized (faultsChanged) {
      while ((up ? dropUpstream : dropDownstream) && !closed && !to.isClosed()) {
        faultsChanged.wait();
      }
    }
  }

  /** Wakes the pumps so they see a changed fault, a cut or the close. */
  private void faultsChanged() {
    synchronized (faultsChanged) {
      faultsChanged.notifyAll();
    }
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
