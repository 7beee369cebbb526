package io.replicator.stream;

import io.replicator.proto.Envelope;
import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ManifestRequest;
import io.replicator.transport.PeerConnection;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Asks the peer for manifests and hands their entries, as they stream in, to one consumer thread.
 * Requests go out in order with the changes sent before them, so a manifest reflects every one of
 * them. Reading from the peer pauses while too many entries wait, so a large tree never piles up.
 */
final class ManifestChannel {
  private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(120);
  private static final Envelope LINK_LOST = Envelope.getDefaultInstance();

  private final ResyncLink stream;
  private final PeerConnection conn;
  private final LinkedBlockingQueue<Envelope> queue = new LinkedBlockingQueue<>();
  private volatile boolean readPaused;
  private volatile String lostReason;
  private long requestIds;

  ManifestChannel(ResyncLink stream, PeerConnection conn) {
    this.stream = stream;
    this.conn = conn;
  }

  /** Thrown when the connection is gone. */
  static final class LinkLostException extends IOException {
    private static final long serialVersionUID = 1L;

    LinkLostException(String reason) {
      super(reason);
    }
  }

  /** Receives the entries of one manifest. */
  @FunctionalInterface
  interface EntryConsumer {
    void accept(ManifestEntry entry) throws IOException;
  }

  PeerConnection connection() {
    return conn;
  }

  String lostReason() {
    return lostReason != null ? lostReason : "link lost";
  }

  /** Called on the I/O thread with a manifest frame; false when it is not for this channel. */
  boolean onFrame(PeerConnection c, Envelope e) {
    if (c != conn) {
      return false;
    }
    queue.add(e);
    if (queue.size() > 256 && !readPaused) {
      readPaused = true;
      c.setAutoRead(false);
    }
    return true;
  }

  void linkLost(String reason) {
    lostReason = reason;
    queue.add(LINK_LOST);
  }

  /** Requests a manifest of {@code paths} ("" for the whole tree) and feeds every entry to {@code consumer}. */
  void request(Set<String> paths, boolean withHashes, int blockSize, EntryConsumer consumer) throws IOException {
    long id = ++requestIds;
    ManifestRequest.Builder req = ManifestRequest.newBuilder()
        .setRequestId(id).setBlockSize(blockSize).setWithoutHashes(!withHashes);
    if (paths.contains("")) {
      req.setAll(true);
    } else {
      req.addAllPaths(paths);
    }
    stream.sendControl(conn, Envelope.newBuilder().setManifestRequest(req).build());
    while (true) {
      Envelope e;
      try {
        e = queue.poll(IDLE_NANOS, TimeUnit.NANOSECONDS);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while waiting for the peer's manifest");
      }
      if (readPaused && queue.size() < 64) {
        readPaused = false;
        conn.setAutoRead(true);
      }
      if (e == null) {
        throw new IOException("the peer sent no manifest data for " + TimeUnit.NANOSECONDS.toSeconds(IDLE_NANOS) + " s");
      }
      if (e == LINK_LOST) {
        throw new LinkLostException(lostReason());
      }
      if (e.hasManifestEnd()) {
        if (e.getManifestEnd().getRequestId() != id) {
          throw new IOException("manifest end for request " + e.getManifestEnd().getRequestId() + ", expected " + id);
        }
        return;
      }
      ManifestEntry entry = e.getManifestEntry();
      if (entry.getRequestId() != id) {
        throw new IOException("manifest entry for request " + entry.getRequestId() + ", expected " + id);
      }
      consumer.accept(entry);
    }
  }
}
