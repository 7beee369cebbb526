package io.replicator.stream;

import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.VerifyReport;
import io.replicator.change.FileChange;
import io.replicator.fs.ChangeSink;
import io.replicator.fs.LocalTree;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The primary's changes fanned out to the pair's secondary and to every follower, each over its own
 * {@link ReplicationStream} with its own generations and dirty bitmap (DRBD 9's per-peer bitmaps).
 *
 * <h2>Who a write waits for</h2>
 * A write waits for the secondary as its mode says, then for every SYNC or MEMORY follower; an
 * ASYNC follower (a DELAYED one is ASYNC to the primary) is never waited for, not even by a force,
 * and a full window drops it to its bitmap. A lost follower never holds writes: its stream goes on
 * alone and marks what the follower misses, whatever the pair's peer-loss policy.
 *
 * <h2>Fan-out</h2>
 * The primary sends each change once per copy. Relaying through the secondary would spare the
 * primary's uplink but put the secondary's latency in front of every follower and make a
 * secondary failure a follower outage; with two or three followers the primary's added cost per
 * follower is measured in the bench instead.
 */
public final class ReplicaStreams implements ChangeSink {
  private final ReplicationStream pair;
  private final Map<String, ReplicationStream> followers;
  private final List<ReplicationStream> waitedFor;
  /** The copy marks while there are followers, else null (a pair alone needs none). */
  private final CopyMarks marks;

  /** A follower stream and its name, for {@link #of}. */
  public record Follower(String name, ReplicationStream stream) {
    public Follower {
      checkNotNull(name, "name");
      checkNotNull(stream, "stream");
    }
  }

  private ReplicaStreams(ReplicationStream pair, List<Follower> followers) {
    this.pair = checkNotNull(pair, "pair");
    Map<String, ReplicationStream> byName = new LinkedHashMap<>();
    List<ReplicationStream> wait = new ArrayList<>();
    for (Follower f : followers) {
      if (byName.putIfAbsent(f.name(), f.stream()) != null) {
        throw new IllegalArgumentException("two followers are named '" + f.name() + "'");
      }
      if (f.stream().mode() != ReplicationMode.ASYNC) {
        wait.add(f.stream());
      }
    }
    this.followers = Collections.unmodifiableMap(byName);
    this.waitedFor = List.copyOf(wait);
    this.marks = followers.isEmpty() ? null : new CopyMarks(pair, followers);
  }

  /** The pair's stream with {@code followers} (any number, none included). */
  public static ReplicaStreams of(ReplicationStream pair, List<Follower> followers) {
    return new ReplicaStreams(pair, followers);
  }

  /** Hands the primary's tree to every stream: resyncs read through it. */
  public void attach(LocalTree tree) {
    pair.attach(tree);
    followers.values().forEach(f -> f.attach(tree));
  }

  @Override
  public void beforeLocalChange(FileChange change) throws IOException {
    // the pair first: its policy may refuse the change, and then no follower marks it
    pair.beforeLocalChange(change);
    for (ReplicationStream f : followers.values()) {
      f.beforeLocalChange(change);
    }
  }

  @Override
  public Completion submit(FileChange change) throws IOException {
    if (followers.isEmpty()) {
      return pair.submit(change);
    }
    long stamp = marks.enter();
    try {
      return submitToAll(change);
    } finally {
      marks.exit(stamp);
    }
  }

  private Completion submitToAll(FileChange change) throws IOException {
    // the change exists locally: every follower gets it even when the pair's policy fails the write
    Completion first = Completion.DONE;
    IOException pairFailure = null;
    try {
      first = pair.submit(change);
    } catch (IOException e) {
      pairFailure = e;
    }
    Completion[] rest = new Completion[followers.size()];
    int i = 0;
    for (ReplicationStream f : followers.values()) {
      // every copy is numbered under the same per-file lock, so each sees one file's changes in order
      rest[i++] = f.submit(change);
    }
    if (pairFailure != null) {
      throw pairFailure;
    }
    if (waitedFor.isEmpty()) {
      return first;
    }
    Completion pairDone = first;
    return () -> {
      pairDone.await();
      for (Completion c : rest) {
        c.await();
      }
    };
  }

  @Override
  public ReplicationStatus status() {
    return pair.status();
  }

  @Override
  public Map<String, ReplicationStatus> followers() {
    Map<String, ReplicationStatus> out = new LinkedHashMap<>();
    followers.forEach((name, stream) -> out.put(name, stream.status()));
    return out;
  }

  @Override
  public VerifyReport verify() throws IOException {
    return pair.verify();
  }

  @Override
  public void resync() throws IOException {
    pair.resync();
  }

  /** Lets the role decision gate writes; followers are not gated, they never hold writes. */
  public void gate(boolean aloneAllowed, String suspendedReason) {
    pair.gate(aloneAllowed, suspendedReason);
  }

  /** Closes the followers' streams, then the pair's (whose close hook reports the hand-over). */
  @Override
  public void close() throws IOException {
    if (marks != null) {
      // a clean hand-over (a swap) ends with where every copy stands: two marks after the drain,
      // the second confirming the first, so the next primary continues the followers from there
      pair.drain();
      followers.values().forEach(ReplicationStream::drain);
      marks.emit();
      marks.emit();
      marks.close();
    }
    IOException first = null;
    for (ReplicationStream f : followers.values()) {
      try {
        f.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    pair.close();
    if (first != null) {
      throw first;
    }
  }
}
