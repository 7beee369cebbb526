package io.replicator.fs;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The change protocol, written once: under the locks that order a change, the sink is told
 * before the local change is made ({@link #before}), the local change is made, and what took
 * effect is submitted ({@link #submit}); once the locks are released, {@link Made#await} waits
 * for the replication. {@link WrappedFileSystem#change} takes and releases the locks around a
 * {@link Step}; every way of changing the tree goes through it.
 */
final class LockedChange {
  private final ChangeSink sink;
  private List<ChangeSink.Completion> completions;

  LockedChange(ChangeSink sink) {
    this.sink = sink;
  }

  /** Before the local change: the sink may wait (a block policy) or record; throwing refuses it. */
  void before(FileChange change) throws IOException {
    sink.beforeLocalChange(change);
  }

  /** After the local change took effect: numbers and queues it; its replication is waited for later. */
  void submit(FileChange change) throws IOException {
    ChangeSink.Completion c = sink.submit(change);
    if (c != ChangeSink.Completion.DONE) {
      if (completions == null) {
        completions = new ArrayList<>(2);
      }
      completions.add(c);
    }
  }

  /** What the step made: its result and the completions to wait for. */
  <T> Made<T> made(T value) {
    return new Made<>(value, completions == null ? List.of() : completions);
  }

  /** The part of a change made under its locks. */
  @FunctionalInterface
  interface Step<T> {
    /**
     * @param changePath the path the change is about, as read under the locks
     */
    T run(String changePath, LockedChange change) throws IOException;
  }

  /** How a caller waits for one completion (a channel waits interruptibly, closing on interrupt). */
  @FunctionalInterface
  interface Awaiter {
    void await(ChangeSink.Completion completion) throws IOException;
  }

  /** A change made under its locks and submitted, its replication not yet waited for. */
  static final class Made<T> {
    private final T value;
    private final List<ChangeSink.Completion> completions;

    private Made(T value, List<ChangeSink.Completion> completions) {
      this.value = value;
      this.completions = completions;
    }

    T value() {
      return value;
    }

    /** One completion for all of it, to wait for later (an open's, awaited by the channel). */
    ChangeSink.Completion completion() {
      if (completions.isEmpty()) {
        return ChangeSink.Completion.DONE;
      }
      return () -> {
        for (ChangeSink.Completion c : completions) {
          c.await();
        }
      };
    }

    /** Waits until the replication mode is satisfied for every change submitted; returns the result. */
    T await() throws IOException {
      return await(ChangeSink.Completion::await);
    }

    T await(Awaiter awaiter) throws IOException {
      for (ChangeSink.Completion c : completions) {
        awaiter.await(c);
      }
      return value;
    }
  }
}
