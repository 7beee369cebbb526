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
import io.replicator.transport.TransportSettings;
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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Brings a returning peer up to date while the application keeps writing.
 *
 * <h2>How</h2>
 * <ol>
 *   <li><b>Go live</b>, under the exclusive namespace lock for a moment: the stream goes live on
 *       the connection, so every later application change is sent after this point; the renames
 *       the peer missed are replayed there (so renamed data need not travel again), and the dirty
 *       bitmap is read.
 *   <li><b>One pass</b> over the dirty paths (the whole tree, for a full resync), with no lock
 *       held across the network: the peer streams its manifest in batches, walked in {@link
 *       PathOrder} while it keeps applying changes, and the primary walks its own tree in the same
 *       order and reconciles each path as the entries arrive, under that path's lock: extra entries
 *       are deleted, missing ones created (a small file travels whole, with its mode and time, as
 *       one change), and files on both sides compared by 128-bit block checksums so that only
 *       differing blocks travel. Pacing credit is taken before a file's lock, never while holding it.
 *   <li><b>Dirty blocks</b> of other files are sent directly, their bits cleared as the peer
 *       acknowledges them. Whatever is read under a path's lock and sent before it is released is
 *       ordered with the application's writes to that path, so the later one wins on both sides.
 *   <li><b>More passes</b> over what the application renamed, deleted or copied meanwhile, and over
 *       paths whose comparison a rename spoiled (the peer's entry was read before it: {@link
 *       RecentChanges}). The last pass fetches the manifest before it takes the exclusive lock and,
 *       holding it, asks again only for what changed in between, so the resync always ends.
 *   <li><b>Done</b>: once the peer acknowledged everything, both sides share a generation again.
 * </ol>
 * A dropped link stops the resync; bits not yet acknowledged stay set, so the next connection
 * resumes where this one stopped. Memory follows the depth of the tree and what is in flight, not
 * its size: no per-file state is kept beyond the entries being compared.
 */
final class ResyncSource {
  private static final Logger log = LoggerFactory.getLogger(ResyncSource.class);
  /** Blocks read and sent as one write (1 MiB at the default block size). */
  private static final int RUN_BLOCKS = 256;
  /** Passes without the exclusive lock before the last one. */
  private static final int MAX_PASSES = 4;
  /** Entries the last pass fetches ahead of taking the lock; a larger remainder streams under it. */
  private static final int FINAL_PREFETCH = 100_000;

  private final ResyncLink link;
  private final ResyncCoordinator coordinator;
  private final PeerConnection conn;
  private final boolean full;
  private final SyncState peerState;
  private final ResyncRate rate;
  private final ManifestChannel manifest;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final RecentChanges renames = new RecentChanges();
  /** Paths to reconcile again: touched by the application's namespace changes, or compared too early. */
  private final Set<String> again = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private final TreeProgress progress = new TreeProgress();
  private final AtomicLong bytesSent = new AtomicLong();
  private final long startNanos = System.nanoTime();
  private Completion last = Completion.DONE;
  private LocalTree tree;
  private Path root;
  private int blockSize;
  private Thread counting;

  ResyncSource(ResyncLink link, ResyncCoordinator coordinator, PeerConnection conn, boolean full,
      SyncState peerState, ResyncRate rate) {
    this.link = link;
    this.coordinator = coordinator;
    this.conn = conn;
    this.full = full;
    this.peerState = peerState;
    this.rate = rate;
    this.manifest = new ManifestChannel(link, conn);
  }

  // ------------------------------------------------------------------ called by the stream

  /**
   * An application change numbered {@code seq} while the resync runs, told while its locks are
   * held: a rename, delete or copy may move data the resync has not reached, or make an entry of
   * the peer's manifest read before it stale.
   */
  void touched(long seq, FileChange change) {
    if (!change.isNamespaceChange()) {
      return;
    }
    renames.numbered(seq, change);
    if (change instanceof FileChange.Move m) {
      again.add(m.source());
      again.add(m.target());
    } else if (change instanceof FileChange.Copy c) {
      again.add(c.target());
    } else {
      again.add(change.path());
    }
  }

  ManifestChannel manifestChannel() {
    return manifest;
  }

  /** Completes when the resync ended: normally, or exceptionally with why it stopped. */
  CompletableFuture<Void> done() {
    return done;
  }

  ReplicationStatus.ResyncProgress progress() {
    TreeProgress.Reading r = progress.read();
    return new ReplicationStatus.ResyncProgress(r.bytesDone(), r.bytesTotal(), r.bytesPerSecond(), r.etaSeconds(),
        r.filesDone(), r.filesTotal());
  }

  // ------------------------------------------------------------------ the resync

  void run() {
    try {
      tree = link.awaitTree();
      root = tree.delegateRoot();
      PrimaryTracking tracking = link.tracking();
      DirtyBitmap bitmap = tracking.bitmap();
      blockSize = bitmap.blockSize();
      addPeerHotExtents(bitmap);
      DirtyBitmap.Snapshot[] snapshot = new DirtyBitmap.Snapshot[1];
      tree.underNamespaceLock(() -> {
        link.goLive(conn);
        snapshot[0] = bitmap.snapshot();
        link.sendControl(conn, Envelope.newBuilder().setResyncStart(ResyncStart.newBuilder()
            .setFull(full).setBytesTotal(snapshot[0].dirtyBytes())).build());
        if (!full) {
          // before any application change can follow: the peer's copy is still what they were made on
          for (DirtyBitmap.Rename r : snapshot[0].renames()) {
            submit(new FileChange.Move(r.source(), r.target(), r.replaceExisting(), false, true), null);
          }
        }
        return null;
      });
      List<String> roots = full ? List.of("") : PathOrder.minimalRoots(snapshot[0].paths());
      startCounting(roots, snapshot[0]);
      log.info("{} resync to {} started: {} dirty path(s), {} rename(s) replayed, {} dirty byte(s) in {} file(s)",
          full ? "full" : "incremental", conn.remoteNodeId(), snapshot[0].paths().size(),
          full ? 0 : snapshot[0].renames().size(), snapshot[0].dirtyBytes(), snapshot[0].files().size());
      pass(roots);
      sendDirtyBlocks(snapshot[0], roots, tracking);
      for (int n = 2; n <= MAX_PASSES && !again.isEmpty(); n++) {
        pass(PathOrder.minimalRoots(drainAgain()));
      }
      if (!again.isEmpty()) {
        lastPass();
      }
      last.await();
      stopCounting();
      coordinator.completed(conn);
      done.complete(null);
      log.info("resync to {} done: {} entries and {} byte(s) examined, {} byte(s) sent, in {} ms ({} ms of cpu on"
              + " this thread)", conn.remoteNodeId(), progress.filesDone.get(), progress.bytesDone.get(),
          bytesSent.get(), (System.nanoTime() - startNanos) / 1_000_000,
          java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime() / 1_000_000);
    } catch (ManifestChannel.LinkLostException e) {
      stopCounting();
      done.completeExceptionally(e);
      link.settleFirstAttempt();
      log.warn("resync to {} interrupted ({}); it resumes on the next connection", conn.remoteNodeId(),
          e.getMessage());
    } catch (InterruptedException e) {
      stopCounting();
      Thread.currentThread().interrupt();
      done.completeExceptionally(e);
      conn.close(Goodbye.Code.SHUTDOWN, "resync interrupted");
    } catch (IOException | RuntimeException e) {
      stopCounting();
      done.completeExceptionally(e);
      link.settleFirstAttempt();
      log.error("resync to {} failed", conn.remoteNodeId(), e);
      conn.close(Goodbye.Code.APPLY_FAILED, "resync failed on the primary: " + e);
    }
  }

  /** Totals for the progress: the entries and bytes under the roots, counted aside, plus the dirty blocks. */
  private void startCounting(List<String> roots, DirtyBitmap.Snapshot snapshot) {
    progress.filesTotal.addAndGet(snapshot.files().size());
    progress.bytesTotal.addAndGet(snapshot.dirtyBytes());
    counting = TreeCount.start(root, roots, progress);
  }

  private void stopCounting() {
    if (counting != null) {
      counting.interrupt();
    }
  }

  /** After the peer crashed as primary, its hot extents may hold data this node never had. */
  private void addPeerHotExtents(DirtyBitmap bitmap) {
    for (HotExtent h : peerState.getHotExtentsList()) {
      Path local = LocalPaths.resolve(root, h.getPath());
      if (h.getExtentSize() > 0 && Files.isRegularFile(local, LinkOption.NOFOLLOW_LINKS)) {
        bitmap.markExtent(h.getPath(), h.getExtent(), h.getExtentSize());
      } else {
        bitmap.markPath(h.getPath());
      }
    }
  }

  private List<String> drainAgain() {
    List<String> out = new ArrayList<>();
    for (String p : List.copyOf(again)) {
      again.remove(p);
      out.add(p);
    }
    return out;
  }

  // ------------------------------------------------------------------ passes

  /** Reconciles {@code roots} against the peer's manifest as it streams in; no lock across the network. */
  private void pass(List<String> roots) throws IOException {
    if (roots.isEmpty()) {
      return;
    }
    for (List<String> batch : ManifestChannel.batches(roots)) {
      Merge merge = new Merge(new LocalWalk(root, batch));
      manifest.request(new ManifestChannel.Request(batch, true, true, blockSize), merge::peer);
      merge.finish();
    }
  }

  /**
   * The last pass, which must end however busy the application is: the manifest of what is left is
   * fetched first, then, holding the exclusive lock (no change can be made meanwhile), it is
   * reconciled, and what the application changed between the fetch and the lock is asked for again.
   */
  private void lastPass() throws IOException {
    List<String> roots = PathOrder.minimalRoots(drainAgain());
    List<ManifestEntry> fetched = new ArrayList<>();
    boolean[] overflow = new boolean[1];
    for (List<String> batch : ManifestChannel.batches(roots)) {
      manifest.request(new ManifestChannel.Request(batch, true, true, blockSize), e -> {
        if (fetched.size() < FINAL_PREFETCH) {
          fetched.add(e);
        } else {
          overflow[0] = true;
        }
      });
    }
    tree.underNamespaceLock(() -> {
      exclusive = true; // the application waits for this lock: pacing would only make it wait longer
      if (overflow[0]) {
        pass(roots); // too large to hold: streamed under the lock
      } else {
        // the entries of all batches, in order: one merge over all the roots
        Merge merge = new Merge(new LocalWalk(root, roots));
        for (ManifestEntry e : fetched) {
          merge.peer(e);
        }
        merge.finish();
      }
      // only what changed between the fetch and the lock (nothing can change now)
      pass(PathOrder.minimalRoots(drainAgain()));
      exclusive = false;
      return null;
    });
    exclusive = false;
    if (!again.isEmpty()) {
      log.warn("resync to {}: {} path(s) left after the last pass, e.g. {}", conn.remoteNodeId(), again.size(),
          again.iterator().next());
      again.clear();
    }
  }

  /** The local walk and the peer's entries, matched by path in walk order, each pair reconciled. */
  private final class Merge {
    private final LocalWalk walk;
    /** The next local path not yet matched, or null at the end of the walk. */
    private String local;
    /** The peer's directories above the current entry (with when each was listed). */
    private final Deque<ManifestEntry> peerDirectories = new ArrayDeque<>();
    /** Directories only the peer has, deleted once everything under them is (post-order). */
    private final Deque<ExtraDirectory> extra = new ArrayDeque<>();
    /** A subtree of the peer's left for a later pass. */
    private String skipPeerUnder;
    /** The file whose further slices of checksums are arriving, or null. */
    private FileCompare current;

    Merge(LocalWalk walk) throws IOException {
      this.walk = walk;
      this.local = walk.next();
    }

    void peer(ManifestEntry e) throws IOException {
      renames.peerApplied(e.getAppliedBefore());
      if (e.getFirstBlock() > 0) {
        if (current != null && current.path.equals(e.getPath())) {
          current.slice(e);
        }
        return;
      }
      if (current != null) {
        current.finish();
        current = null;
      }
      String p = e.getPath();
      if (skipPeerUnder != null && PathOrder.within(p, skipPeerUnder)) {
        return;
      }
      skipPeerUnder = null;
      while (!peerDirectories.isEmpty() && !PathOrder.within(p, peerDirectories.peek().getPath())) {
        peerDirectories.pop();
      }
      while (!extra.isEmpty() && !PathOrder.within(p, extra.peek().path)) {
        finishExtra(extra.pop());
      }
      if (!extra.isEmpty()) {
        underExtra(e);
        return;
      }
      while (local != null && PathOrder.compare(local, p) < 0) {
        onlyHere(local);
        local = walk.next();
      }
      boolean walked = p.equals(local);
      boolean descend = reconcile(e);
      if (walked) {
        if (descend) {
          walk.descend();
        }
        local = walk.next();
      }
    }

    void finish() throws IOException {
      if (current != null) {
        current.finish();
        current = null;
      }
      while (!extra.isEmpty()) {
        finishExtra(extra.pop());
      }
      while (local != null) {
        onlyHere(local);
        local = walk.next();
      }
    }

    /**
     * One path the peer listed. Returns whether the local walk goes on under it (a directory here
     * whose entries are reconciled one by one).
     */
    private boolean reconcile(ManifestEntry e) throws IOException {
      String p = e.getPath();
      boolean peerHas = e.getKind() != ManifestEntry.Kind.MISSING;
      if (e.getKind() != ManifestEntry.Kind.FILE && e.getKind() != ManifestEntry.Kind.DIRECTORY) {
        credit(SMALL_FILE_CREDIT); // a file may take its place: credit before the lock
      }
      boolean[] descend = {true};
      underLock(p, () -> {
        if (!renames.settled(p, e.getAppliedBefore())) {
          // a rename since the peer read this: its entry may describe another file
          again.add(p);
          descend[0] = false;
          if (peerHas && e.getKind() == ManifestEntry.Kind.DIRECTORY) {
            skipPeerUnder = p;
          }
          return;
        }
        LocalWalk.Entry mine = LocalWalk.read(root, p);
        progress.filesDone.incrementAndGet();
        if (!peerHas) {
          if (mine != null) {
            create(mine, e.getAppliedBefore());
            descend[0] = mine.kind() == ManifestEntry.Kind.DIRECTORY;
          } else {
            descend[0] = false;
          }
          return;
        }
        if (mine == null) {
          descend[0] = false;
          removeOnPeer(e);
          return;
        }
        if (mine.kind() != e.getKind()) {
          if (e.getKind() == ManifestEntry.Kind.DIRECTORY) {
            // its subtree goes first; the local entry is created once it has
            extra.push(new ExtraDirectory(p, e.getAppliedBefore(), true));
            descend[0] = false;
            return;
          }
          submit(new FileChange.Delete(p), null);
          create(mine, e.getAppliedBefore());
          descend[0] = mine.kind() == ManifestEntry.Kind.DIRECTORY;
          return;
        }
        descend[0] = mine.kind() == ManifestEntry.Kind.DIRECTORY;
        switch (mine.kind()) {
          case DIRECTORY -> {
            if (mine.mode() >= 0 && mine.mode() != e.getMode()) {
              submit(new FileChange.SetPermissions(p, ChangeProtos.toPermissions(mine.mode())), null);
            }
            peerDirectories.push(e);
          }
          case SYMBOLIC_LINK -> {
            if (!mine.linkTarget().equals(e.getLinkTarget())) {
              submit(new FileChange.Delete(p), null);
              submit(new FileChange.CreateSymbolicLink(p, mine.linkTarget()), null);
            }
          }
          case FILE -> current = new FileCompare(p, e, mine);
          default -> {
            // sockets, devices, fifos: not replicated
          }
        }
      });
      if (current != null && current.path.equals(p) && current.pending == e) {
        // the first slice, outside the attribute lock: its runs take the lock one at a time
        current.pending = null;
        current.slice(e);
        if (e.getLast()) {
          current.finish();
          current = null;
        }
      }
      return descend[0];
    }

    /** A local path the peer did not list: judged by when the peer listed its nearest directory. */
    private void onlyHere(String p) throws IOException {
      ManifestEntry listed = null;
      for (ManifestEntry d : peerDirectories) {
        if (PathOrder.within(p, d.getPath())) {
          listed = d;
          break;
        }
      }
      long basis = listed == null ? -1 : listed.getAppliedBefore();
      credit(SMALL_FILE_CREDIT); // it may travel whole: credit before the lock
      boolean[] descend = {false};
      underLock(p, () -> {
        if (basis < 0 || !renames.settled(p, basis)) {
          again.add(p);
          return;
        }
        LocalWalk.Entry mine = LocalWalk.read(root, p);
        if (mine != null) {
          progress.filesDone.incrementAndGet();
          create(mine, basis);
          descend[0] = mine.kind() == ManifestEntry.Kind.DIRECTORY;
        }
      });
      if (descend[0]) {
        walk.descend();
      }
    }

    /** An entry of the peer's under a directory only it has: files go now, directories after their content. */
    private void underExtra(ManifestEntry e) throws IOException {
      ExtraDirectory parent = extra.peek();
      if (e.getKind() == ManifestEntry.Kind.DIRECTORY) {
        extra.push(new ExtraDirectory(e.getPath(), e.getAppliedBefore(), false));
        return;
      }
      if (e.getKind() == ManifestEntry.Kind.MISSING) {
        return;
      }
      String p = e.getPath();
      underLock(p, () -> {
        if (!renames.settled(p, e.getAppliedBefore()) || LocalWalk.read(root, p) != null) {
          // changed since the peer read it: the directory stays for a later pass
          again.add(p);
          parent.kept = true;
          return;
        }
        submit(new FileChange.Delete(p), null);
      });
    }

    /** Everything under a directory only the peer had is gone: the directory goes too. */
    private void finishExtra(ExtraDirectory d) throws IOException {
      if (d.kept) {
        if (!extra.isEmpty()) {
          extra.peek().kept = true;
        }
        again.add(d.path);
        return;
      }
      underLock(d.path, () -> {
        if (!renames.settled(d.path, d.appliedBefore)) {
          again.add(d.path);
          if (!extra.isEmpty()) {
            extra.peek().kept = true;
          }
          return;
        }
        LocalWalk.Entry mine = LocalWalk.read(root, d.path);
        if (mine != null && mine.kind() == ManifestEntry.Kind.DIRECTORY) {
          // a directory here as well, after all: reconcile it again with a fresh listing
          again.add(d.path);
          return;
        }
        submit(new FileChange.Delete(d.path), null);
        if (mine != null && d.recreate) {
          create(mine, d.appliedBefore);
        }
      });
    }

    /** The peer has {@code e} and this node has nothing there: delete it (a directory after its content). */
    private void removeOnPeer(ManifestEntry e) throws IOException {
      if (e.getKind() == ManifestEntry.Kind.DIRECTORY) {
        extra.push(new ExtraDirectory(e.getPath(), e.getAppliedBefore(), false));
      } else {
        submit(new FileChange.Delete(e.getPath()), null);
      }
    }
  }

  /** A directory only the peer has, to delete once its content is. */
  private static final class ExtraDirectory {
    final String path;
    final long appliedBefore;
    /** A local entry of another kind takes its place once it is gone. */
    final boolean recreate;
    /** Something under it stays for a later pass: the directory stays too. */
    boolean kept;

    ExtraDirectory(String path, long appliedBefore, boolean recreate) {
      this.path = path;
      this.appliedBefore = appliedBefore;
      this.recreate = recreate;
    }
  }

  // ------------------------------------------------------------------ creating

  /** Credit taken before a lock under which a small file may be sent whole (a larger one waits for more). */
  private static final int SMALL_FILE_CREDIT = 64 * 1024;

  /**
   * Creates {@code mine} on the peer, which has nothing at its path (judged against the peer's state
   * after change {@code basis}); called under the path's lock. A file larger than the credit taken
   * before the lock is sent once more credit is taken, after the lock.
   */
  private void create(LocalWalk.Entry mine, long basis) throws IOException {
    String p = mine.path();
    if (mine.kind() == ManifestEntry.Kind.FILE && mine.size() > SMALL_FILE_CREDIT) {
      pendingLarge.add(new Large(p, basis));
      return;
    }
    switch (mine.kind()) {
      case DIRECTORY -> {
        submit(new FileChange.MakeDirectory(p), null);
        if (mine.mode() >= 0) {
          submit(new FileChange.SetPermissions(p, ChangeProtos.toPermissions(mine.mode())), null);
        }
      }
      case SYMBOLIC_LINK -> submit(new FileChange.CreateSymbolicLink(p, mine.linkTarget()), null);
      case FILE -> sendWhole(mine);
      default -> {
        // sockets, devices, fifos: not replicated
      }
    }
  }

  /** A file too large for the credit taken before its lock, sent after it. */
  private record Large(String path, long basis) {}

  private final List<Large> pendingLarge = new ArrayList<>();

  /** Sends the large files found under a lock: credit for their first part first, then the lock again. */
  private void sendLarge() throws IOException {
    while (!pendingLarge.isEmpty()) {
      List<Large> large = List.copyOf(pendingLarge);
      pendingLarge.clear();
      for (Large l : large) {
        Path local = LocalPaths.resolve(root, l.path());
        long size;
        try {
          size = Files.size(local);
        } catch (NoSuchFileException e) {
          continue; // gone meanwhile: its delete went to the peer in order
        }
        credit(Math.min(TransportSettings.MAX_PAYLOAD, size));
        tree.underFileLock(l.path(), () -> {
          if (!renames.settled(l.path(), l.basis())) {
            again.add(l.path());
            return null;
          }
          LocalWalk.Entry mine = LocalWalk.read(root, l.path());
          if (mine != null && mine.kind() == ManifestEntry.Kind.FILE) {
            sendWhole(mine);
          } else if (mine != null) {
            again.add(l.path()); // no longer a file: reconciled afresh
          }
          return null;
        });
      }
    }
  }

  /**
   * Sends a file the peer lacks: a small one (up to one payload) as one change that creates it and
   * gives it its mode and time; a larger one as its first part, then runs of writes (each read
   * under the lock, with pacing credit taken before), then its size, mode and time. The first
   * part is sent under the caller's lock.
   */
  private void sendWhole(LocalWalk.Entry mine) throws IOException {
    String p = mine.path();
    Path local = LocalPaths.resolve(root, p);
    byte[] chunk = buffer((int) Math.min(TransportSettings.MAX_PAYLOAD, Math.max(0, mine.size())));
    int n;
    long size;
    FileTime modified;
    try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      n = readFully(ch, chunk, 0, (int) Math.min(chunk.length, Math.max(0, mine.size())));
      // read under the caller's lock: no write through the file system changed it since mine was read
      size = n < mine.size() ? ch.size() : mine.size();
      // read under the lock the caller holds, so no write through the file system moved it since
      modified = mine.modified();
    } catch (NoSuchFileException e) {
      return; // deleted meanwhile (under another name now): its change was sent in order
    }
    progress.bytesDone.addAndGet(n);
    boolean whole = n == size;
    // the buffer is copied into the frame as the change is submitted: it can be reused at once
    submit(new FileChange.WriteFile(p, 0, ByteBuffer.wrap(chunk, 0, n).asReadOnlyBuffer(), true,
        whole ? size : -1, mine.mode(), whole ? modified : null), null);
    bytesSent.addAndGet(n);
    if (whole) {
      return;
    }
    // the rest after the caller's lock is released: resumed by sendRest
    pendingRest.add(new Rest(p, n));
  }

  private record Rest(String path, long from) {}

  private byte[] buffer = new byte[64 * 1024];
  /** One run of blocks read, compared or sent at a time (this resync runs on one thread). */
  private byte[] runBuffer;
  private final byte[] sum = new byte[BlockChecksums.SIZE];

  private byte[] runBuffer() {
    if (runBuffer == null) {
      runBuffer = new byte[RUN_BLOCKS * blockSize];
    }
    return runBuffer;
  }

  /** A reusable buffer of at least {@code size} bytes (changes copy what they carry when submitted). */
  private byte[] buffer(int size) {
    if (buffer.length < size) {
      buffer = new byte[Math.max(size, buffer.length * 2)];
    }
    return buffer;
  }

  /** Large files whose first part was sent under a lock that could not be held for the rest. */
  private final List<Rest> pendingRest = new ArrayList<>();

  /** Sends what {@link #sendWhole} left of large files, a run per hold of the file's lock. */
  private void sendRest() throws IOException {
    if (pendingRest.isEmpty()) {
      return;
    }
    List<Rest> rest = List.copyOf(pendingRest);
    pendingRest.clear();
    byte[] chunk = runBuffer();
    for (Rest r : rest) {
      Path local = LocalPaths.resolve(root, r.path());
      for (long position = r.from(); ; position += chunk.length) {
        long at = position;
        credit(chunk.length);
        boolean more = tree.underFileLock(r.path(), () -> {
          int n;
          try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            n = readFully(ch, chunk, at);
            if (n < chunk.length) {
              // the end: the rest of it, then its size, mode and time, in the same hold of the lock
              if (n > 0) {
                writeRun(r.path(), at, chunk, 0, n, null);
              }
              finishFile(r.path(), local, ch.size(), true);
              return false;
            }
          } catch (NoSuchFileException e) {
            return false; // deleted meanwhile: the delete was sent in order
          }
          writeRun(r.path(), at, chunk, 0, n, null);
          return true;
        });
        if (!more) {
          break;
        }
      }
    }
  }

  /** Sets size, mode and time of a file whose data was sent; under its lock. */
  private void finishFile(String p, Path local, long size, boolean timeToo) throws IOException {
    BasicFileAttributes a;
    int mode;
    try {
      a = Files.readAttributes(local, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      LocalWalk.Entry now = LocalWalk.read(root, p);
      mode = now == null ? -1 : now.mode();
    } catch (NoSuchFileException e) {
      return;
    }
    submit(new FileChange.WriteFile(p, 0, ByteBuffer.allocate(0), false, size, mode,
        timeToo ? a.lastModifiedTime() : null), null);
  }

  // ------------------------------------------------------------------ comparing a file

  /** A file on both sides, compared slice by slice as the peer's checksums arrive. */
  private final class FileCompare {
    final String path;
    final Path local;
    final ManifestEntry first;
    /** The first slice, compared once the attribute lock is released. */
    ManifestEntry pending;
    private long peerBlocks;
    private boolean sent;
    private boolean gone;

    FileCompare(String path, ManifestEntry first, LocalWalk.Entry mine) {
      this.path = path;
      this.local = LocalPaths.resolve(root, path);
      this.first = first;
      this.pending = first;
    }

    /** Compares one slice of the peer's checksums with this file, a run of blocks per hold of the lock. */
    void slice(ManifestEntry e) throws IOException {
      if (gone) {
        return;
      }
      byte[] sums = e.getBlockHashes().toByteArray();
      int count = sums.length / BlockChecksums.SIZE;
      peerBlocks = e.getFirstBlock() + count;
      byte[] chunk = runBuffer();
      for (int from = 0; from < count && !gone; from += RUN_BLOCKS) {
        int offset = from;
        int n = Math.min(RUN_BLOCKS, count - from);
        long firstBlock = e.getFirstBlock() + from;
        credit((long) n * blockSize);
        underLock(path, () -> compareRun(sums, offset, n, firstBlock, chunk));
      }
    }

    private void compareRun(byte[] sums, int offset, int n, long firstBlock, byte[] chunk) throws IOException {
      int read;
      long start = firstBlock * blockSize;
      try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        read = readFully(ch, chunk, start, n * blockSize);
      } catch (NoSuchFileException ex) {
        gone = true; // deleted or renamed meanwhile: its change was sent in order, and is reconciled again
        return;
      }
      progress.bytesDone.addAndGet(read);
      int blocks = (read + blockSize - 1) / blockSize;
      int runStart = -1;
      for (int b = 0; b <= blocks; b++) {
        boolean differs = false;
        if (b < blocks) {
          int len = Math.min(blockSize, read - b * blockSize);
          BlockChecksums.hash(chunk, b * blockSize, len, sum, 0);
          int at = (offset + b) * BlockChecksums.SIZE;
          differs = !Arrays.equals(sum, 0, BlockChecksums.SIZE, sums, at, at + BlockChecksums.SIZE);
        }
        if (differs && runStart < 0) {
          runStart = b;
        } else if (!differs && runStart >= 0) {
          int from = runStart * blockSize;
          int to = Math.min(read, b * blockSize);
          writeRun(path, start + from, chunk, from, to - from, null);
          sent = true;
          runStart = -1;
        }
      }
    }

    /** After the last slice: what this file has beyond the peer's blocks, then size, mode and time. */
    void finish() throws IOException {
      if (gone) {
        return;
      }
      byte[] chunk = runBuffer();
      for (long block = peerBlocks; ; block += RUN_BLOCKS) {
        long start = block * blockSize;
        long beyond;
        try {
          beyond = Files.size(local) - start;
        } catch (NoSuchFileException e) {
          return;
        }
        if (beyond > 0) {
          credit(Math.min(beyond, chunk.length)); // only for bytes that may travel
        }
        boolean more = tree.underFileLock(path, () -> {
          int n;
          long size;
          try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            n = readFully(ch, chunk, start);
            size = ch.size();
          } catch (NoSuchFileException e) {
            return false;
          }
          if (n > 0) {
            progress.bytesDone.addAndGet(n);
            writeRun(path, start, chunk, 0, n, null);
            sent = true;
          }
          if (n == chunk.length) {
            return true;
          }
          // the end: size (when the peer's is larger), mode and time, in this hold of the lock
          LocalWalk.Entry now = LocalWalk.read(root, path);
          if (now == null) {
            return false;
          }
          boolean cut = first.getSize() > size;
          boolean mode = now.mode() >= 0 && now.mode() != first.getMode();
          boolean time = sent || cut || now.modified().to(java.util.concurrent.TimeUnit.NANOSECONDS)
              != first.getLastModifiedNanos();
          if (cut || mode || time) {
            submit(new FileChange.WriteFile(path, 0, ByteBuffer.allocate(0), false, cut ? size : -1,
                mode ? now.mode() : -1, time ? now.modified() : null), null);
          }
          return false;
        });
        if (!more) {
          return;
        }
      }
    }
  }

  // ------------------------------------------------------------------ dirty blocks

  /**
   * Sends the dirty blocks of files the passes did not cover: runs of consecutive blocks, batched
   * so that one change carries up to {@link #RUN_BLOCKS} blocks of a file however scattered they
   * are; the file's last batch carries its time.
   */
  private void sendDirtyBlocks(DirtyBitmap.Snapshot snapshot, List<String> roots, PrimaryTracking tracking)
      throws IOException {
    sendRest();
    byte[] chunk = runBuffer();
    for (String p : snapshot.files()) {
      if (covered(p, roots)) {
        continue;
      }
      Path local = LocalPaths.resolve(root, p);
      DirtyRuns runs = new DirtyRuns(snapshot.blocks(p), RUN_BLOCKS);
      while (runs.hasNext()) {
        List<DirtyRuns.Run> batch = runs.next();
        sendRuns(p, local, batch, chunk, tracking, !runs.hasNext());
      }
      progress.filesDone.incrementAndGet();
    }
  }

  private static boolean covered(String path, List<String> roots) {
    for (String r : roots) {
      if (PathOrder.within(path, r)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Runs of dirty blocks of one file, read and sent under the file's lock as one change (scattered
   * pieces when there are several); the file's last batch also sets its time. Reading stops at the
   * file's end: what lies beyond was cut by a truncate that went through the stream.
   */
  private void sendRuns(String p, Path local, List<DirtyRuns.Run> runs, byte[] chunk, PrimaryTracking tracking,
      boolean lastBatch) throws IOException {
    long want = runs.stream().mapToLong(DirtyRuns.Run::blocks).sum() * blockSize;
    credit(want);
    long firstPosition = runs.get(0).first() * blockSize;
    tree.underFileLock(p, () -> {
      List<FileChange.WriteFile.Piece> pieces = new ArrayList<>(runs.size());
      int n = 0;
      FileTime modified = null;
      try (FileChannel ch = FileChannel.open(local, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        for (DirtyRuns.Run r : runs) {
          long start = r.first() * blockSize;
          int length = (int) (r.blocks() * blockSize);
          int got = readFully(ch, chunk, n, start, length);
          if (got > 0) {
            pieces.add(new FileChange.WriteFile.Piece(start, got));
            n += got;
          }
          if (got < length) {
            break; // the file ends here, and so later runs are beyond its end
          }
        }
        if (lastBatch) {
          modified = Files.getLastModifiedTime(local, LinkOption.NOFOLLOW_LINKS);
        }
      } catch (NoSuchFileException e) {
        n = 0; // deleted while the resync ran: the delete went through the stream
        pieces.clear();
      }
      progress.bytesDone.addAndGet(want);
      Runnable clear = () -> {
        for (DirtyRuns.Run r : runs) {
          for (long b = r.first(); b <= r.last(); b++) {
            tracking.blockResynced(p, b);
          }
        }
      };
      if (n > 0 || modified != null) {
        // one change: the blocks, and the time the writes moved; a single piece as a plain write
        ByteBuffer data = ByteBuffer.wrap(chunk, 0, n).asReadOnlyBuffer();
        FileChange change = pieces.size() > 1
            ? new FileChange.WriteFile(p, 0, data, false, -1, -1, modified, pieces)
            : new FileChange.WriteFile(p, pieces.isEmpty() ? firstPosition : pieces.get(0).position(), data, false,
                -1, -1, modified);
        submit(change, clear);
        bytesSent.addAndGet(n);
      } else {
        clear.run(); // beyond the end: the truncate was sent, nothing to copy
      }
      return null;
    });
  }

  // ------------------------------------------------------------------ plumbing

  private static int readFully(FileChannel ch, byte[] into, long position) throws IOException {
    return readFully(ch, into, position, into.length);
  }

  private static int readFully(FileChannel ch, byte[] into, long position, int length) throws IOException {
    return readFully(ch, into, 0, position, length);
  }

  /** Reads up to {@code length} bytes at {@code position} into {@code into} from {@code offset}; fewer at the end. */
  private static int readFully(FileChannel ch, byte[] into, int offset, long position, int length)
      throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(into, offset, length);
    while (buf.hasRemaining()) {
      int r = ch.read(buf, position + buf.position() - offset);
      if (r < 0) {
        break;
      }
    }
    return buf.position() - offset;
  }

  /** Sends bytes already read under the path's lock (credit was taken before it). */
  private void writeRun(String p, long position, byte[] data, int offset, int length, Runnable onApplied)
      throws IOException {
    submit(new FileChange.Write(p, position, ByteBuffer.wrap(data, offset, length).asReadOnlyBuffer()), onApplied);
    bytesSent.addAndGet(length);
  }

  private void submit(FileChange change, Runnable onApplied) throws IOException {
    changesInFlight.incrementAndGet();
    Completion c = link.submitResync(conn, change, () -> {
      if (onApplied != null) {
        onApplied.run();
      }
      if (changesInFlight.decrementAndGet() <= MAX_CHANGES_IN_FLIGHT / 2) {
        Thread w = waiter;
        if (w != null) {
          java.util.concurrent.locks.LockSupport.unpark(w);
        }
      }
    });
    if (c == null) {
      throw new ManifestChannel.LinkLostException(manifest.lostReason());
    }
    last = c;
  }

  /**
   * Resync changes sent and not yet applied by the peer are kept under a bound, waited for before a
   * path's lock is taken: creating a small file costs the peer far more than its bytes say, and the
   * application's changes are applied (and acknowledged) after whatever is ahead of them.
   */
  static final int MAX_CHANGES_IN_FLIGHT = 256;

  private final java.util.concurrent.atomic.AtomicInteger changesInFlight = new java.util.concurrent.atomic.AtomicInteger();
  private volatile Thread waiter;
  /** Set while this thread holds the exclusive lock: nothing of the application's can wait behind it then. */
  private boolean exclusive;

  /** Pacing before a lock: room for more resync changes, then (for {@code bytes}) room in the budget. */
  private void credit(long bytes) throws IOException {
    if (exclusive) {
      return;
    }
    pace();
    rate.acquire(bytes);
  }

  private void pace() throws IOException {
    if (exclusive || changesInFlight.get() < MAX_CHANGES_IN_FLIGHT) {
      return;
    }
    waiter = Thread.currentThread();
    try {
      while (changesInFlight.get() >= MAX_CHANGES_IN_FLIGHT) {
        if (!conn.isActive()) {
          throw new ManifestChannel.LinkLostException(manifest.lostReason());
        }
        java.util.concurrent.locks.LockSupport.parkNanos(this, 50_000_000L);
        if (Thread.interrupted()) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("interrupted while pacing the resync");
        }
      }
    } finally {
      waiter = null;
    }
  }

  @FunctionalInterface
  private interface Locked {
    void run() throws IOException;
  }

  private void underLock(String path, Locked action) throws IOException {
    pace();
    tree.underFileLock(path, () -> {
      action.run();
      return null;
    });
    if (!pendingLarge.isEmpty()) {
      sendLarge(); // larger files found under the lock: credit first, then the lock again
    }
    if (!pendingRest.isEmpty()) {
      sendRest(); // a large file's first part went under the lock; the rest goes now, a run at a time
    }
  }
}
