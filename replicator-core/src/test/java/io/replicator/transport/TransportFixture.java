package io.replicator.transport;

import io.replicator.proto.GenerationIds;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;

/**
 * Base of the loopback tests: starts servers, clients and raw sockets, and closes all of them
 * after each test, newest first.
 */
abstract class TransportFixture {
  private final Deque<Closeable> resources = new ArrayDeque<>();

  /** The server's listener and the connections its acceptor accepted. */
  final RecordingListener serverListener = new RecordingListener();
  final List<PeerConnection> accepted = new CopyOnWriteArrayList<>();

  <T extends Closeable> T closeLater(T resource) {
    resources.push(resource);
    return resource;
  }

  @AfterEach
  void closeAll() throws IOException {
    IOException first = null;
    while (!resources.isEmpty()) {
      try {
        resources.pop().close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  /** A server that accepts every peer and records what arrives. */
  TransportServer server(TransportSettings settings) throws IOException {
    return server(settings, candidate -> {
      accepted.add(candidate);
      return PeerAcceptor.Decision.accept(serverListener, GenerationIds.newBuilder().setCurrent(42).build());
    });
  }

  TransportServer server(TransportSettings settings, PeerAcceptor acceptor) throws IOException {
    return closeLater(TransportServer.start(Wire.loopback(), settings, acceptor, 1));
  }

  TransportClient client(TransportSettings settings) {
    return closeLater(new TransportClient(settings));
  }

  RawPeer raw(InetSocketAddress address) throws IOException {
    return closeLater(new RawPeer(address));
  }

  static <T> T result(CompletableFuture<T> future) throws Exception {
    try {
      return future.get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception cause) {
        throw cause;
      }
      throw e;
    } catch (TimeoutException e) {
      throw new AssertionError("future did not complete", e);
    }
  }

  /** Connects a well-behaved client and checks that the handshake completes. */
  PeerConnection connect(TransportServer server, String nodeId, RecordingListener listener) throws Exception {
    return result(client(Wire.settings(nodeId)).connect(server.localAddress(), null, listener));
  }
}
