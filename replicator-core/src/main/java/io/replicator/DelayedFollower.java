package io.replicator;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * The controls of a delayed follower: it receives every change at once into a durable, bounded
 * spill log on its own disk and applies a change only once it is older than the delay, so a
 * mistake (an {@code rm -rf}, a bad migration) can be stopped before it reaches this copy.
 * Pausing and {@link #applyUntil} are durable: a restart does not resume applying.
 */
public interface DelayedFollower {

  /** How old a change must be before it is applied. */
  Duration delay();

  /** Stops applying (changes keep arriving into the log). Durable. */
  void pause() throws IOException;

  /** Applies again as changes age past the delay; clears an {@link #applyUntil} point. Durable. */
  void resume() throws IOException;

  /**
   * Applies every logged change received strictly before {@code before}, whatever the delay, then
   * holds (as paused) so that nothing at or after that point is applied. Durable. Receive times are
   * kept in milliseconds and {@code before} is truncated to its millisecond: a change received in
   * that same millisecond is held (when in doubt, the copy stays before the mistake).
   */
  void applyUntil(Instant before) throws IOException;

  /** Up to {@code limit} logged changes received at or after {@code since}, oldest first. */
  List<LoggedChange> log(Instant since, int limit) throws IOException;

  /** A snapshot of the delay, the backlog and the log's disk use. Cheap. */
  Status status();

  /**
   * One change in the spill log.
   *
   * @param sequence the primary's sequence number of the change
   * @param received when this follower received (and logged) it
   * @param kind what it does: write, truncate, create, mkdir, delete, rename, link, attributes...
   * @param path the path it changes, relative to the root
   * @param target a rename's or link's other path, when it has one
   * @param bytes the data it carries
   * @param applied whether it has been applied to the tree already
   */
  record LoggedChange(long sequence, Instant received, String kind, String path, Optional<String> target,
      long bytes, boolean applied) {}

  /**
   * The delayed follower's state.
   *
   * @param delay how old a change must be before it is applied
   * @param paused applying is stopped (paused, or held at an apply-until point)
   * @param applyUntil the point applying holds before, when one was given
   * @param appliedUpTo when the last applied change was received: the applied tree stands as the
   *     primary's did then; empty when nothing was applied yet
   * @param backlogChanges changes logged and not applied
   * @param backlogBytes data of those changes
   * @param logBytes disk the spill log uses
   * @param logCapacityBytes the most disk it may use
   * @param overflowedAt when the log was last full and this copy fell back to the primary's dirty
   *     bitmap (going back before that point is then impossible); empty when it never was
   */
  record Status(Duration delay, boolean paused, Optional<Instant> applyUntil, Optional<Instant> appliedUpTo,
      long backlogChanges, long backlogBytes, long logBytes, long logCapacityBytes, Optional<Instant> overflowedAt) {}
}
