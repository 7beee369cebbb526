package io.replicator.stream;

import io.replicator.proto.Envelope;
import io.replicator.proto.ManifestBatch;
import io.replicator.proto.ManifestCredit;
import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ManifestRequest;
import io.replicator.transport.Frame;
import io.replicator.transport.PeerConnection;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Asks the peer for manifests and hands their entries, batch by batch as they stream in, to one
 * consumer thread. Requests go out in order with the changes sent before them, so the peer reads
 * nothing before it applied those. The peer sends at most {@value #CREDIT} batches ahead of what
 * was consumed (each consumed batch is credited back), so entries are compared while the peer is
 * still walking, and neither side holds more than a few batches of a large tree; the connection
 * itself is never paused, so acknowledgements keep flowing.
 */
final class ManifestChannel {
  /** Batches the peer may send ahead of the consumer. */
  static final int CREDIT = 8;
  private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(120);
  private static final Envelope LINK_LOST = Envelope.getDefaultInstance();

  private final ResyncLink link;
  private final PeerConnection conn;
  private final LinkedBlockingQueue<Envelope> queue = new LinkedBlockingQueue<>();
  private volatile String lostReason;
  private long requestIds;

  ManifestChannel(ResyncLink link, PeerConnection conn) {
    this.link = link;
    this.conn = conn;
  }

  /** Thrown when the connection is gone. */
  static final class LinkLostException extends IOException {
    private static final long serialVersionUID = 1L;

    LinkLostException(String reason) {
      super(reason);
    }
  }

  /** Receives the entries of one manifest, in walk order. */
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
    return true;
  }

  void linkLost(String reason) {
    lostReason = reason;
    queue.add(LINK_LOST);
  }

  /** Bytes of paths per request: the request is one header, at most 64 KiB. */
  private static final int REQUEST_PATH_BYTES = 32 * 1024;

  /** {@code paths} in consecutive groups small enough for one request each. */
  static List<List<String>> batches(List<String> paths) {
    List<List<String>> out = new java.util.ArrayList<>();
    int from = 0;
    int bytes = 0;
    for (int i = 0; i < paths.size(); i++) {
      int size = paths.get(i).length() * 3 + 4; // UTF-8 at worst, and the field's own bytes
      if (i > from && bytes + size > REQUEST_PATH_BYTES) {
        out.add(paths.subList(from, i));
        from = i;
        bytes = 0;
      }
      bytes += size;
    }
    if (from < paths.size()) {
      out.add(paths.subList(from, paths.size()));
    }
    return out;
  }

  /** What to ask for: paths in {@link PathOrder}, none under another ("" for the whole tree). */
  record Request(List<String> paths, boolean withHashes, boolean descend, int blockSize) {}

  /** Requests a manifest and feeds every entry to {@code consumer}, crediting each batch once consumed. */
  void request(Request r, EntryConsumer consumer) throws IOException {
    long id = ++requestIds;
    ManifestRequest.Builder req = ManifestRequest.newBuilder()
        .setRequestId(id).setBlockSize(r.blockSize()).setWithoutHashes(!r.withHashes())
        .setNoDescent(!r.descend()).setCredit(CREDIT);
    if (r.paths().size() == 1 && r.paths().get(0).isEmpty()) {
      req.setAll(true);
    } else {
      req.addAllPaths(r.paths());
    }
    link.sendControl(conn, Envelope.newBuilder().setManifestRequest(req).build());
    boolean finished = false;
    try {
      while (true) {
        Envelope e = take();
        if (e.hasManifestEnd()) {
          if (e.getManifestEnd().getRequestId() != id) {
            throw new IOException("manifest end for request " + e.getManifestEnd().getRequestId() + ", expected " + id);
          }
          finished = true;
          return;
        }
        if (!e.hasManifestBatch()) {
          throw new IOException("unexpected manifest frame " + e.getBodyCase());
        }
        ManifestBatch batch = e.getManifestBatch();
        if (batch.getRequestId() != id) {
          throw new IOException("manifest batch for request " + batch.getRequestId() + ", expected " + id);
        }
        for (ManifestEntry entry : batch.getEntriesList()) {
          consumer.accept(entry);
        }
        credit(id, false);
      }
    } finally {
      if (!finished && lostReason == null) {
        // the consumer gave up: stop the peer, and drop what it still sends of this manifest
        credit(id, true);
        drain(id);
      }
    }
  }

  private Envelope take() throws IOException {
    Envelope e;
    try {
      e = queue.poll(IDLE_NANOS, TimeUnit.NANOSECONDS);
    } catch (InterruptedException ie) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for the peer's manifest");
    }
    if (e == null) {
      throw new IOException("the peer sent no manifest data for " + TimeUnit.NANOSECONDS.toSeconds(IDLE_NANOS) + " s");
    }
    if (e == LINK_LOST) {
      queue.add(LINK_LOST); // whoever asks next learns it too
      throw new LinkLostException(lostReason());
    }
    return e;
  }

  private void credit(long id, boolean cancel) {
    conn.send(Frame.of(Envelope.newBuilder()
        .setManifestCredit(ManifestCredit.newBuilder().setRequestId(id).setBatches(1).setCancel(cancel)).build()));
  }

  private void drain(long id) {
    boolean interrupted = Thread.interrupted();
    try {
      while (true) {
        Envelope e = take();
        if (e.hasManifestEnd() && e.getManifestEnd().getRequestId() == id) {
          return;
        }
      }
    } catch (IOException e) {
      // the link is gone or the peer went silent: nothing more of this manifest will come
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
