package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.replicator.replica.DelaySchedule.Action;
import io.replicator.replica.DelaySchedule.Decision;
import java.util.OptionalLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class DelayScheduleTest {
  private static final long HOUR = 3_600_000;
  private static final long NOW = 1_700_000_000_000L;
  private static final OptionalLong NONE = OptionalLong.empty();

  static Stream<Arguments> rules() {
    return Stream.of(
        // case, now, delay, paused, apply-until, received, expected action, expected until
        Arguments.of("older than the delay: apply", NOW, HOUR, false, NONE, NOW - HOUR - 1, Action.APPLY, 0L),
        Arguments.of("exactly as old as the delay: apply", NOW, HOUR, false, NONE, NOW - HOUR, Action.APPLY, 0L),
        Arguments.of("younger than the delay: wait until it is due", NOW, HOUR, false, NONE, NOW - 1000,
            Action.WAIT, NOW - 1000 + HOUR),
        Arguments.of("just received: wait a whole delay", NOW, HOUR, false, NONE, NOW, Action.WAIT, NOW + HOUR),
        Arguments.of("no delay: apply at once", NOW, 0L, false, NONE, NOW, Action.APPLY, 0L),
        Arguments.of("received ahead of a clock that stepped back: wait", NOW, 0L, false, NONE, NOW + 5,
            Action.WAIT, NOW + 5),
        Arguments.of("paused: hold even a due entry", NOW, HOUR, true, NONE, NOW - 2 * HOUR, Action.HOLD, 0L),
        Arguments.of("paused beats apply-until", NOW, HOUR, true, OptionalLong.of(NOW), NOW - 2 * HOUR,
            Action.HOLD, 0L),
        Arguments.of("apply-until: an entry before the point applies without the delay", NOW, HOUR, false,
            OptionalLong.of(NOW - 60_000), NOW - 60_001, Action.APPLY, 0L),
        Arguments.of("apply-until: the entry at the point holds (strictly before)", NOW, HOUR, false,
            OptionalLong.of(NOW - 60_000), NOW - 60_000, Action.HOLD, 0L),
        Arguments.of("apply-until: an entry after the point holds, however old", NOW, HOUR, false,
            OptionalLong.of(NOW - 3 * HOUR), NOW - 2 * HOUR, Action.HOLD, 0L),
        Arguments.of("a huge delay saturates instead of overflowing", NOW, Long.MAX_VALUE, false, NONE, NOW,
            Action.WAIT, Long.MAX_VALUE));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("rules")
  void decides(String name, long now, long delay, boolean paused, OptionalLong until, long received,
      Action action, long untilMillis) {
    Decision d = DelaySchedule.decide(now, delay, paused, until, received);
    assertThat(d.action()).isEqualTo(action);
    assertThat(d.untilMillis()).isEqualTo(untilMillis);
  }

  @Test
  void a_negative_delay_is_refused() {
    assertThatThrownBy(() -> DelaySchedule.decide(NOW, -1, false, NONE, NOW))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
