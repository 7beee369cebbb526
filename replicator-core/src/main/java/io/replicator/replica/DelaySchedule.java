package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.util.OptionalLong;

/**
 * When a delayed follower may apply the oldest change of its {@link DelayLog}: a pure function of the
 * clock, the delay and the operator's controls (pause, apply-until), so the applier loop holds no
 * policy of its own. Entries are applied in log order, so a HOLD or WAIT for the oldest holds all later.
 */
final class DelaySchedule {
  private DelaySchedule() {}

  enum Action {
    /** Apply the entry now. */
    APPLY,
    /** Not yet due: ask again at {@link Decision#untilMillis()}. */
    WAIT,
    /** Paused, or the apply-until point is reached: do not apply until the operator changes the controls. */
    HOLD
  }

  /** What to do; {@code untilMillis} is the time the entry becomes due for WAIT, and 0 otherwise. */
  record Decision(Action action, long untilMillis) {
    static final Decision APPLY = new Decision(Action.APPLY, 0);
    static final Decision HOLD = new Decision(Action.HOLD, 0);

    static Decision waitUntil(long millis) {
      return new Decision(Action.WAIT, millis);
    }
  }

  /**
   * Decides for the entry received at {@code receivedMillis}, by the first rule that matches:
   *
   * <ol>
   *   <li>paused: {@link Action#HOLD}, whatever else is set;
   *   <li>an apply-until point {@code T} is set: an entry received strictly before {@code T} is
   *       {@link Action#APPLY}ed at once, without waiting for the delay (the operator chose the point
   *       to roll the copy forward to, typically just before a destructive change); an entry received
   *       at or after {@code T} is {@link Action#HOLD}. Callers should refuse a {@code T} in the
   *       future, which would drop the delay for every change received until then;
   *   <li>otherwise the entry is due at {@code receivedMillis + delayMillis} (saturating): {@link
   *       Action#APPLY} when {@code nowMillis} has reached it, else {@link Action#WAIT} until then. A
   *       receive time ahead of the clock (the clock stepped back) waits too: applying early is the
   *       one mistake a delayed copy must not make.
   * </ol>
   *
   * @param delayMillis the configured delay, not negative (0 applies everything at once)
   * @param applyUntilMillis the operator's apply-until point, or empty for none
   */
  static Decision decide(long nowMillis, long delayMillis, boolean paused, OptionalLong applyUntilMillis,
      long receivedMillis) {
    checkArgument(delayMillis >= 0, "negative delay %s", delayMillis);
    checkNotNull(applyUntilMillis, "applyUntilMillis");
    if (paused) {
      return Decision.HOLD;
    }
    if (applyUntilMillis.isPresent()) {
      return receivedMillis < applyUntilMillis.getAsLong() ? Decision.APPLY : Decision.HOLD;
    }
    long due = saturatedAdd(receivedMillis, delayMillis);
    return nowMillis >= due ? Decision.APPLY : Decision.waitUntil(due);
  }

  private static long saturatedAdd(long a, long b) {
    long sum = a + b;
    // b is not negative, so only an overflow past MAX_VALUE can happen
    return sum < a ? Long.MAX_VALUE : sum;
  }
}
