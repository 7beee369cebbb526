package io.replicator.stream;

import io.replicator.ReplicationStatus;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.change.LocalPaths;
import io.replicator.fs.ChangeSink.Completion;
import io.replicator.fs.LocalTree;
import io.replicator.meta.BlockChecksums;
import io.replicator.meta.DirtyBitmap;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.HotExtent;
import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ResyncStart;
import io.replicator.proto.SyncState;
import io.replicator.transport.PeerConnection;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PrimitiveIterator;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Brings a returning peer up to date while the application keeps writing.
 *
 * <h2>How</h2>
 * <ol>
 *   <li><b>Namespace</b>, under the exclusive namespace lock (the application waits briefly): the
 *       stream goes live on the connection, so every later application change is sent after this
 *       step; the peer lists the dirty paths (everything, for a full resync) without checksums;
 *       extra entries are deleted, missing ones created, links and permissions fixed.
 *   <li><b>Data</b>, under each file's own lock for one run of blocks at a time (the application
 *       keeps writing): files new on the peer are sent whole; files on both sides are compared by
 *       128-bit block checksums and only differing blocks travel; dirty blocks of other files are
 *       sent directly, their bits cleared as the peer acknowledges them. A block is read and sent
 *       under the lock that orders the application's writes to it, so whichever is later in the
 *       stream carries the latest bytes.
 *   <li><b>More passes</b> for paths the application renamed, deleted or created meanwhile, the
 *       last one wholly under the exclusive lock, so the resync always ends.
 *   <li><b>Done</b>: once the peer acknowledged everything, both sides share a generation again.
 * </ol>
 * A dropped link stops the resync; bits not yet acknowledged stay set, so the next connection
 * resumes where this one stopped.
 */
final class ResyncSource {
  private static final Logger log = LoggerFactory.getLogger(ResyncSource.class);
  /** Blocks read and sent as one write (1 MiB at the default block size). */
  private static final int RUN_BLOCKS = 256;
  private static final long COMPARE_BATCH_BYTES = 1L << 30;
  private static final int COMPARE_BATCH_FILES = 256;
  private static final int MAX_PASSES = 5;

  private final ResyncLink stream;
  private final ResyncCoordinator coordinator;
  private final PeerConnection conn;
  private final boolean full;
  private final SyncState peerState;
  private final ResyncRate rate;
  private final Set<String> touched = ConcurrentHashMap.newKeySet();
  private final ManifestChannel manifest;
  private final java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
  private Completion last = Completion.DONE;
  private final long startNanos = System.nanoTime();
  private final AtomicLong bytesTotal = new AtomicLong();
  private final AtomicLong bytesDone = new AtomicLong();
  private final AtomicLong bytesSent = new AtomicLong();
  private int blockSize;

  ResyncSource(ResyncLink stream, ResyncCoordinator coordinator, PeerConnection conn, boolean full,
      SyncState peerState, ResyncRate rate) {
    this.stream = stream;
    this.coordinator = coordinator;
    this.conn = conn;
    this.full = full;
    this.peerState = peerState;
    this.rate = rate;
    this.manifest = new ManifestChannel(stream, conn);
  }

  /** What one namespace step found to do next. */
  private static final class Scope {
    final Set<String> roots = new TreeSet<>();
    final List<String> wholeFiles = new ArrayList<>();
    final List<String> compareFiles = new ArrayList<>();
  }

  private record Local(ManifestEntry.Kind kind, long size, String linkTarget, int mode, FileTime modified) {}

  // ------------------------------------------------------------------ called by the stream

  /** An application change made during the resync that may move data the resync has not reached. */
  void touched(FileChange change) {
    if (change instanceof FileChange.Move m) {
      touched.add(m.source());
      touched.add(m.target());
    } else {
      touched.add(change.path());
    }
  }

  ManifestChannel manifestChannel() {
    return manifest;
  }

  /** Completes when the resync ended: normally, or exceptionally with why it stopped. */
  java.util.concurrent.CompletableFuture<Void> done() {
    return done;
  }

  ReplicationStatus.ResyncProgress progress() {
    long done = bytesDone.get();
    long total = Math.max(done, bytesTotal.get());
    double seconds = Math.max(1e-3, (System.nanoTime() - startNanos) / 1e9);
    long perSecond = (long) (done / seconds);
    long eta = perSecond > 0 ? (total - done) / perSecond : -1;
    return new ReplicationStatus.ResyncProgress(done, total, perSecond, eta);
  }

  // ------------------------------------------------------------------ the resync

  void run() {
    try {
      LocalTree tree = stream.awaitTree();
      PrimaryTracking tracking = stream.tracking();
      DirtyBitmap bitmap = tracking.bitmap();
      blockSize = bitmap.blockSize();
      addPeerHotExtents(tree.delegateRoot(), bitmap);
      Scope first = new Scope();
      DirtyBitmap.Snapshot[] snapshot = new DirtyBitmap.Snapshot[1];
      tree.underNamespaceLock(() -> {
        stream.goLive(conn);
        snapshot[0] = bitmap.snapshot();
        bytesTotal.set(snapshot[0].dirtyBytes());
        stream.sendControl(conn, Envelope.newBuilder().setResyncStart(ResyncStart.newBuilder()
            .setFull(full).setBytesTotal(snapshot[0].dirtyBytes())).build());
        Set<String> roots = full ? Set.of("") : minimalRoots(snapshot[0].paths());
        reconcileNamespace(tree, roots, first);
        return null;
      });
      log.info("{} resync to {} started: {} dirty path(s), {} dirty byte(s) in {} file(s)",
          full ? "full" : "incremental", conn.remoteNodeId(), snapshot[0].paths().size(),
          snapshot[0].dirtyBytes(), snapshot[0].files().size());
      reconcileData(tree, first);
      sendDirtyBlocks(tree, snapshot[0], first.roots, tracking);
      for (int pass = 2; !touched.isEmpty(); pass++) {
        Set<String> roots = minimalRoots(drainTouched());
        Scope again = new Scope();
        if (pass >= MAX_PASSES) {
          // the application keeps renaming: finish with it held off, so the resync ends
          tree.underNamespaceLock(() -> {
            reconcileNamespace(tree, roots, again);
            reconcileData(tree, again);
            touched.clear();
            return null;
          });
          break;
        }
        tree.underNamespaceLock(() -> {
          reconcileNamespace(tree, roots, again);
          return null;
        });
        reconcileData(tree, again);
      }
      last.await();
      coordinator.completed(conn);
      done.complete(null);
      log.info("resync to {} done: {} byte(s) examined, {} sent, in {} ms", conn.remoteNodeId(),
          bytesDone.get(), bytesSent.get(), (System.nanoTime() - startNanos) / 1_000_000);
    } catch (ManifestChannel.LinkLostException e) {
      done.completeExceptionally(e);
      stream.settleFirstAttempt();
      log.warn("resync to {} interrupted ({}); it resumes on the next connection", conn.remoteNodeId(),
          e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      done.completeExceptionally(e);
      conn.close(Goodbye.Code.SHUTDOWN, "resync interrupted");
    } catch (IOException | RuntimeException e) {
      done.completeExceptionally(e);
      stream.settleFirstAttempt();
      log.error("resync to {} failed", conn.remoteNodeId(), e);
      conn.close(Goodbye.Code.APPLY_FAILED, "resync failed on the primary: " + e);
    }
  }

  /** After the peer crashed as primary, its hot extents may hold data this node never had. */
  private void addPeerHotExtents(Path root, DirtyBitmap bitmap) {
    for (HotExtent h : peerState.getHotExtentsList()) {
      Path local = LocalPaths.resolve(root, h.getPath());
      if (h.getExtentSize() > 0 && Files.isRegularFile(local, LinkOption.NOFOLLOW_LINKS)) {
        bitmap.markExtent(h.getPath(), h.getExtent(), h.getExtentSize());
      } else {
        bitmap.markPath(h.getPath());
      }
    }
  }

  private Set<String> drainTouched() {
    Set<String> out = new TreeSet<>();
    for (String p : List.copyOf(touched)) {
      touched.remove(p);
      out.add(p);
    }
    return out;
  }

  /** The paths that are not under another path of the set. */
  static Set<String> minimalRoots(Collection<String> paths) {
    TreeSet<String> sorted = new TreeSet<>(paths);
    Set<String> out = new TreeSet<>();
    String lastRoot = null;
    for (String p : sorted) {
      if (p.isEmpty()) {
        return Set.of("");
      }
      if (lastRoot != null && p.startsWith(lastRoot + "/")) {
        continue;
      }
      out.add(p);
      lastRoot = p;
    }
    return out;
  }

  private static boolean covered(String path, Set<String> roots) {
    for (String r : roots) {
      if (r.isEmpty() || path.equals(r) || path.startsWith(r + "/")) {
        return true;
      }
    }
    return false;
  }

  // ------------------------------------------------------------------ namespace

  private void reconcileNamespace(LocalTree tree, Set<String> roots, Scope scope) throws IOException {
    if (roots.isEmpty()) {
      return;
    }
    scope.roots.addAll(roots);
    Map<String, ManifestEntry> target = new HashMap<>();
    manifest.request(new ManifestChannel.Request(PathOrder.minimalRoots(roots), false, true, blockSize), entry -> {
      if (entry.getKind() != ManifestEntry.Kind.MISSING) {
        target.putIfAbsent(entry.getPath(), entry);
      }
    });
    TreeMap<String, Local> source = new TreeMap<>();
    for (String r : roots) {
      walkLocal(tree.delegateRoot(), r, source);
    }
    // deletions first, children before parents (a child's path sorts after its parent's)
    List<String> gone = new ArrayList<>();
    for (Map.Entry<String, ManifestEntry> e : target.entrySet()) {
      Local l = source.get(e.getKey());
      if (!e.getKey().isEmpty() && (l == null || l.kind() != e.getValue().getKind())) {
        gone.add(e.getKey());
      }
    }
    gone.sort(java.util.Comparator.reverseOrder());
    for (String p : gone) {
      submit(new FileChange.Delete(p), null);
      target.remove(p);
    }
    for (Map.Entry<String, Local> e : source.entrySet()) {
      String p = e.getKey();
      Local l = e.getValue();
      ManifestEntry t = target.get(p);
      switch (l.kind()) {
        case DIRECTORY -> {
          if (t == null && !p.isEmpty()) {
            submit(new FileChange.MakeDirectory(p), null);
          }
          setMode(p, l, t);
        }
        case SYMBOLIC_LINK -> {
          if (t == null || !t.getLinkTarget().equals(l.linkTarget())) {
            if (t != null) {
              submit(new FileChange.Delete(p), null);
            }
            submit(new FileChange.CreateSymbolicLink(p, l.linkTarget()), null);
          }
        }
        case FILE -> {
          if (t == null) {
            submit(new FileChange.CreateFile(p, true), null);
            scope.wholeFiles.add(p);
          } else {
            if (t.getSize() > l.size()) {
              submit(new FileChange.Truncate(p, l.size()), null);
            }
            scope.compareFiles.add(p);
          }
          bytesTotal.addAndGet(l.size());
          setMode(p, l, t);
        }
        default -> {
          // sockets, devices, fifos: not replicated
        }
      }
    }
  }

  private void setMode(String p, Local l, ManifestEntry t) throws IOException {
    if (l.mode() >= 0 && (t == null || t.getMode() != l.mode())) {
      submit(new FileChange.SetPermissions(p, ChangeProtos.toPermissions(l.mode())), null);
    }
  }

  private void walkLocal(Path root, String changePath, Map<String, Local> out) throws IOException {
    Path p = LocalPaths.resolve(root, changePath);
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      return;
    }
    int mode = -1;
    if (!a.isSymbolicLink()) {
      try {
        mode = ChangeProtos.toMode(Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
            .permissions());
      } catch (UnsupportedOperationException e) {
        // not POSIX: permissions are not compared
      }
    }
    if (a.isSymbolicLink()) {
      out.put(changePath, new Local(ManifestEntry.Kind.SYMBOLIC_LINK, 0, LocalPaths.linkTarget(root, p), -1,
          a.lastModifiedTime()));
    } else if (a.isDirectory()) {
      out.put(changePath, new Local(ManifestEntry.Kind.DIRECTORY, 0, "", mode, a.lastModifiedTime()));
      for (String name : LocalPaths.sortedChildren(p, changePath)) {
        walkLocal(root, LocalPaths.child(changePath, name), out);
      }
    } else if (a.isRegularFile()) {
      out.put(changePath, new Local(ManifestEntry.Kind.FILE, a.size(), "", mode, a.lastModifiedTime()));
    } else {
      out.put(changePath, new Local(ManifestEntry.Kind.OTHER, 0, "", -1, a.lastModifiedTime()));
    }
  }

  // ------------------------------------------------------------------ data

  private void reconcileData(LocalTree tree, Scope scope) throws IOException {
    for (String p : scope.wholeFiles) {
      sendFile(tree, p, null);
    }
    List<String> batch = new ArrayList<>();
    long batchBytes = 0;
    for (String p : scope.compareFiles) {
      batch.add(p);
      batchBytes += sizeOf(tree, p);
      if (batch.size() >= COMPARE_BATCH_FILES || batchBytes >= COMPARE_BATCH_BYTES) {
        compareBatch(tree, batch);
        batch.clear();
        batchBytes = 0;
      }
    }
    if (!batch.isEmpty()) {
      compareBatch(tree, batch);
    }
    // times last: the data writes above moved them
    for (String p : scope.wholeFiles) {
      copyTime(tree, p);
    }
    for (String p : scope.compareFiles) {
      copyTime(tree, p);
    }
  }

  private static long sizeOf(LocalTree tree, String p) {
    try {
      return Files.size(LocalPaths.resolve(tree.delegateRoot(), p));
    } catch (IOException e) {
      return 0;
    }
  }

  private void copyTime(LocalTree tree, String p) throws IOException {
    Path local = LocalPaths.resolve(tree.delegateRoot(), p);
    tree.underFileLock(p, () -> {
      try {
        FileTime t = Files.readAttributes(local, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS)
            .lastModifiedTime();
        submit(new FileChange.SetTimes(p, t, null, null), null);
      } catch (NoSuchFileException e) {
        // deleted meanwhile; the delete was sent
      }
      return null;
    });
  }

  private void compareBatch(LocalTree tree, List<String> paths) throws IOException {
    Map<String, ByteArrayOutputStream> sums = new HashMap<>();
    manifest.request(new ManifestChannel.Request(PathOrder.minimalRoots(paths), true, true, blockSize), entry -> {
      if (entry.getKind() == ManifestEntry.Kind.FILE) {
        sums.computeIfAbsent(entry.getPath(), k -> new ByteArrayOutputStream())
            .writeBytes(entry.getBlockHashes().toByteArray());
      }
    });
    for (String p : paths) {
      ByteArrayOutputStream s = sums.remove(p);
      sendFile(tree, p, s == null ? new byte[0] : s.toByteArray());
    }
  }

  /**
   * Sends {@code p} in runs of blocks read under its lock: every block when {@code peerSums} is
   * null, otherwise only the blocks whose checksum differs from the peer's (or that it lacks).
   */
  private void sendFile(LocalTree tree, String p, byte[] peerSums) throws IOException {
    Path local = LocalPaths.resolve(tree.delegateRoot(), p);
    byte[] chunk = new byte[RUN_BLOCKS * blockSize];
    byte[] sum = new byte[BlockChecksums.SIZE];
    long peerBlocks = peerSums == null ? 0 : peerSums.length / BlockChecksums.SIZE;
    for (long firstBlock = 0; ; firstBlock += RUN_BLOCKS) {
      long start = firstBlock * blockSize;
      long fb = firstBlock;
      boolean more = tree.underFileLock(p, () -> {
        int n;
        try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
          n = readFully(ch, chunk, start);
        } catch (NoSuchFileException e) {
          return false; // deleted meanwhile; the delete was sent in order
        }
        if (n <= 0) {
          return false;
        }
        bytesDone.addAndGet(n);
        int blocks = (n + blockSize - 1) / blockSize;
        int runStart = -1;
        for (int b = 0; b <= blocks; b++) {
          boolean differs = false;
          if (b < blocks) {
            long index = fb + b;
            if (peerSums == null || index >= peerBlocks) {
              differs = true;
            } else {
              int len = Math.min(blockSize, n - b * blockSize);
              BlockChecksums.hash(chunk, b * blockSize, len, sum, 0);
              differs = !java.util.Arrays.equals(sum, 0, BlockChecksums.SIZE,
                  peerSums, (int) (index * BlockChecksums.SIZE), (int) (index * BlockChecksums.SIZE) + BlockChecksums.SIZE);
            }
          }
          if (differs && runStart < 0) {
            runStart = b;
          } else if (!differs && runStart >= 0) {
            int from = runStart * blockSize;
            int to = Math.min(n, b * blockSize);
            writeRun(p, start + from, chunk, from, to - from, null);
            runStart = -1;
          }
        }
        return n == chunk.length;
      });
      if (!more) {
        return;
      }
    }
  }

  private static int readFully(FileChannel ch, byte[] into, long position) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(into);
    while (buf.hasRemaining()) {
      int r = ch.read(buf, position + buf.position());
      if (r < 0) {
        break;
      }
    }
    return buf.position();
  }

  private void writeRun(String p, long position, byte[] data, int offset, int length, Runnable onApplied)
      throws IOException {
    rate.acquire(length);
    submit(new FileChange.Write(p, position, ByteBuffer.wrap(data, offset, length).asReadOnlyBuffer()), onApplied);
    bytesSent.addAndGet(length);
  }

  /** Sends the dirty blocks of files whose entries did not need reconciling, in runs. */
  private void sendDirtyBlocks(LocalTree tree, DirtyBitmap.Snapshot snapshot, Set<String> roots,
      PrimaryTracking tracking) throws IOException {
    byte[] chunk = new byte[RUN_BLOCKS * blockSize];
    for (String p : snapshot.files()) {
      if (covered(p, roots)) {
        continue;
      }
      Path local = LocalPaths.resolve(tree.delegateRoot(), p);
      PrimitiveIterator.OfLong it = snapshot.blocks(p);
      long runFirst = -1;
      long runLast = -1;
      while (true) {
        long b = it.hasNext() ? it.nextLong() : -1;
        if (runFirst >= 0 && (b < 0 || b != runLast + 1 || b - runFirst >= RUN_BLOCKS)) {
          sendRun(tree, p, local, runFirst, runLast, chunk, tracking);
          runFirst = -1;
        }
        if (b < 0) {
          break;
        }
        if (runFirst < 0) {
          runFirst = b;
        }
        runLast = b;
      }
    }
  }

  private void sendRun(LocalTree tree, String p, Path local, long first, long lastBlock, byte[] chunk,
      PrimaryTracking tracking) throws IOException {
    tree.underFileLock(p, () -> {
      long start = first * blockSize;
      int want = (int) ((lastBlock - first + 1) * blockSize);
      int n;
      try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        ByteBuffer buf = ByteBuffer.wrap(chunk, 0, want);
        while (buf.hasRemaining() && ch.read(buf, start + buf.position()) >= 0) {
          // read the run, or up to the end of the file
        }
        n = buf.position();
      } catch (NoSuchFileException e) {
        n = 0; // deleted while the resync ran: the delete went through the stream
      }
      bytesDone.addAndGet(want);
      Runnable clear = () -> {
        for (long b = first; b <= lastBlock; b++) {
          tracking.blockResynced(p, b);
        }
      };
      if (n > 0) {
        writeRun(p, start, chunk, 0, n, clear);
      } else {
        clear.run(); // beyond the end: the truncate was sent, nothing to copy
      }
      return null;
    });
  }

  // ------------------------------------------------------------------ plumbing

  private void submit(FileChange change, Runnable onApplied) throws IOException {
    Completion c = stream.submitResync(conn, change, onApplied);
    if (c == null) {
      throw new ManifestChannel.LinkLostException(manifest.lostReason());
    }
    last = c;
  }
}
