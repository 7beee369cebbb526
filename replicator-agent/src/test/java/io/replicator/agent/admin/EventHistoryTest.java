package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.proto.Event;
import io.replicator.proto.EventKind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The event history an operator reads after the fact: kept across restarts, bounded, and robust to a crash mid-append. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class EventHistoryTest {
  @TempDir Path dir;
  private final Clock clock = Clock.fixed(Instant.parse("2026-12-02T10:15:30.250Z"), ZoneOffset.UTC);

  @Test
  void theHistorySurvivesAnAgentRestartWithTimesAndReasons() {
    Path file = dir.resolve("meta").resolve(EventHistory.FILE_NAME);
    EventHistory first = EventHistory.open(file, "alpha", 10, clock);
    List<Event> heard = new ArrayList<>();
    first.onRecord(heard::add);
    first.record(EventKind.FAILOVER, "PRIMARY", "failover: peer lost (automatic failover, no witness)");
    first.record(EventKind.REFUSED, "PRIMARY", "swap refused (UNAUTHORIZED): no admin token");
    assertThat(heard).extracting(Event::getKind).containsExactly(EventKind.FAILOVER, EventKind.REFUSED);

    EventHistory again = EventHistory.open(file, "alpha", 10, clock);
    assertThat(again.list().getEventsList()).extracting(Event::getKind, Event::getRole, Event::getReason, Event::getNode)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple(EventKind.FAILOVER, "PRIMARY",
                "failover: peer lost (automatic failover, no witness)", "alpha"),
            org.assertj.core.groups.Tuple.tuple(EventKind.REFUSED, "PRIMARY", "swap refused (UNAUTHORIZED): no admin token", "alpha"));
    assertThat(again.toJson()).contains("\"at\":\"2026-12-02T10:15:30.250Z\"").contains("\"kind\":\"FAILOVER\"")
        .contains("\"reason\":\"failover: peer lost (automatic failover, no witness)\"");
  }

  @Test
  void theHistoryAndItsFileStayBounded() throws IOException {
    Path file = dir.resolve(EventHistory.FILE_NAME);
    EventHistory h = EventHistory.open(file, "alpha", 5, clock);
    for (int i = 0; i < 23; i++) {
      h.record(EventKind.ROLE_CHANGE, "SECONDARY", "change " + i);
    }
    assertThat(h.list().getEventsList()).extracting(Event::getReason)
        .containsExactly("change 18", "change 19", "change 20", "change 21", "change 22");
    assertThat(h.list().getDropped()).isEqualTo(18);
    long fileSizeAfter23 = Files.size(file);
    for (int i = 23; i < 200; i++) {
      h.record(EventKind.ROLE_CHANGE, "SECONDARY", "change " + i);
    }
    assertThat(Files.size(file)).as("never more than twice the capacity on disk").isLessThanOrEqualTo(2 * fileSizeAfter23);
    assertThat(EventHistory.open(file, "alpha", 5, clock).list().getEventsList()).extracting(Event::getReason)
        .containsExactly("change 195", "change 196", "change 197", "change 198", "change 199");
  }

  @Test
  void aRecordTornByACrashIsDroppedAndNewRecordsAreReadAfterIt() throws IOException {
    Path file = dir.resolve(EventHistory.FILE_NAME);
    EventHistory h = EventHistory.open(file, "alpha", 10, clock);
    h.record(EventKind.SWAP, "SECONDARY", "kept");
    h.record(EventKind.SWAP, "PRIMARY", "torn by the crash");
    byte[] whole = Files.readAllBytes(file);
    Files.write(file, java.util.Arrays.copyOf(whole, whole.length - 5));

    EventHistory after = EventHistory.open(file, "alpha", 10, clock);
    after.record(EventKind.AGENT_START, "WAIT", "agent started");
    assertThat(EventHistory.open(file, "alpha", 10, clock).list().getEventsList()).extracting(Event::getReason)
        .containsExactly("kept", "agent started");
  }

  @Test
  void garbageInTheFileLosesTheHistoryNotTheAgent() throws IOException {
    Path file = dir.resolve(EventHistory.FILE_NAME);
    Files.write(file, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f, 1, 2, 3},
        StandardOpenOption.CREATE);
    EventHistory h = EventHistory.open(file, "alpha", 10, clock);
    assertThat(h.list().getEventsList()).isEmpty();
    h.record(EventKind.AGENT_START, "WAIT", "agent started");
    assertThat(EventHistory.open(file, "alpha", 10, clock).list().getEventsCount()).isEqualTo(1);
  }
}
