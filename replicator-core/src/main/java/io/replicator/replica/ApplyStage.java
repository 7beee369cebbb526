package io.replicator.replica;

import io.replicator.change.FileChange;
import java.io.IOException;
import java.time.Duration;

/**
 * Where a replica session hands the changes it receives: the {@link ChangeApplier} of a secondary
 * or a follower, or the {@link DelayIntake} of a delayed follower, which only logs them. "Applied"
 * is what the session acknowledges: written to the tree, or durable in the spill log.
 */
interface ApplyStage extends AutoCloseable {

  /** Hands over the next change without blocking; false when the budget is spent (stop reading). */
  boolean offer(long seq, FileChange change, Runnable release, boolean mayApplyHere) throws IOException;

  /** Runs {@code step} after every change handed over before it, on a thread that may block. */
  void control(ChangeApplier.ControlStep step) throws IOException;

  /** Every change up to this seq is applied. */
  long appliedSeq();

  /** What to acknowledge now; see {@link ChangeApplier#takeAcknowledgement}. */
  ChangeApplier.Acknowledgement takeAcknowledgement(int maxRanges);

  /** Bytes received and not yet applied. */
  long queuedBytes();

  /** The failure that stopped this stage, or null. */
  IOException failure();

  /** Whether the primary is resyncing this copy (namespace mismatches are then skipped). */
  void resyncTarget(boolean on);

  /**
   * Makes everything applied so far durable: called at a resync's end, before the copy calls
   * itself consistent, since a resync's changes are not forced one by one.
   */
  void makeAppliedDurable() throws IOException;

  /** Waits until everything handed over is applied (or failed); false on timeout. */
  boolean awaitIdle(Duration timeout) throws InterruptedException;

  /** Waits until {@code seq} is applied; false on timeout. */
  boolean awaitApplied(long seq, Duration timeout) throws InterruptedException;

  @Override
  void close();
}
