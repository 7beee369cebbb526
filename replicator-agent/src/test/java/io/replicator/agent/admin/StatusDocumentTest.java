package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The status document is valid JSON with the supplied values, whatever characters the names hold. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class StatusDocumentTest {

  @Test
  void rendersEveryFieldOfAnInSyncPrimary() {
    Map<String, Object> json = MiniJson.object(StatusDocument.of("alpha", Statuses.primaryInSync()).toJson());

    assertThat(json).containsEntry("node", "alpha")
        .containsEntry("role", "primary")
        .containsEntry("state", "PRIMARY")
        .containsEntry("mode", "SYNC")
        .containsEntry("inSync", true)
        .containsEntry("problem", null)
        .containsEntry("generation", "000000001234abcd")
        .containsEntry("dirtyBytes", 0L)
        .containsEntry("lastSequence", 42L)
        .containsEntry("resync", null)
        .containsEntry("lastFailover", null)
        .containsEntry("extra", Map.of());
    assertThat(json.get("peer")).isEqualTo(Map.of("address", "10.0.0.2:7788", "connected", true, "outOfDate", false));
  }

  @Test
  void rendersResyncProgressFailoverAndExtraFields() {
    StatusDocument doc = StatusDocument.of("beta", Statuses.syncSource(250, 1000, 750))
        .withLastFailover(new StatusDocument.Failover(Instant.parse("2025-01-02T03:04:05Z"),
            Optional.of("alpha"), Optional.of("beta"), "peer lost"))
        .with("application", Map.of("running", true))
        .with("checks", List.of("tcp:8080", "process"))
        .with("missing", null)
        .with("ratio", 0.5);

    Map<String, Object> json = MiniJson.object(doc.toJson());

    assertThat(json).containsEntry("generation", "fedcba9876543210")
        .containsEntry("inSync", false)
        .containsEntry("problem", "peer out of date")
        .containsEntry("dirtyBytes", 750L);
    assertThat(json.get("resync")).isEqualTo(Map.of("bytesDone", 250L, "bytesTotal", 1000L,
        "bytesPerSecond", 1_000_000L, "etaSeconds", 7L, "filesDone", 25L, "filesTotal", 100L, "percent", 25.0));
    assertThat(json.get("inFlight")).isEqualTo(Map.of("changes", 3L, "bytes", 12288L));
    assertThat(json.get("lastFailover")).isEqualTo(Map.of("at", "2025-01-02T03:04:05Z",
        "from", "alpha", "to", "beta", "reason", "peer lost"));
    Map<String, Object> extra = new LinkedHashMap<>();
    extra.put("application", Map.of("running", true));
    extra.put("checks", List.of("tcp:8080", "process"));
    extra.put("missing", null);
    extra.put("ratio", 0.5);
    assertThat(json.get("extra")).isEqualTo(extra);
  }

  @Test
  void escapesQuotesBackslashesNewlinesAndControlCharacters() {
    String node = "no\"de\\with\nnew\r\tline\u0000\u0001\u001f\u007f\u2028end";
    String problem = "split brain: \"alpha\" says\nprimary\b\f";
    ReplicationStatus status = new ReplicationStatus(NodeState.WAIT, ReplicationMode.ASYNC, Optional.empty(),
        false, true, Optional.of(problem), 0, 0, 0, 0, 0, 0, Optional.empty());
    StatusDocument doc = StatusDocument.of(node, status).with("key \"quoted\"\n", "value\u0002");

    String text = doc.toJson();
    Map<String, Object> json = MiniJson.object(text);

    assertThat(text).doesNotContain("\n").doesNotContain("\u0000").contains("\\u0000").contains("\\u2028");
    assertThat(json).containsEntry("node", node).containsEntry("problem", problem).containsEntry("role", "none");
    assertThat(json.get("extra")).isEqualTo(Map.of("key \"quoted\"\n", "value\u0002"));
    @SuppressWarnings("unchecked")
    Map<String, Object> peer = (Map<String, Object>) json.get("peer");
    assertThat(peer).containsEntry("address", null).containsEntry("connected", false);
  }

  @Test
  void nonFiniteNumbersAndLoneSurrogatesStayValidJson() {
    String lone = "a\ud800b";
    StatusDocument doc = StatusDocument.of("n", Statuses.primaryInSync())
        .with("nan", Double.NaN)
        .with("lone", lone)
        .with("emoji", "\ud83d\ude00")
        .with("array", new Object[] {1, "two", null})
        .with("state", NodeState.SECONDARY);

    Map<String, Object> json = MiniJson.object(doc.toJson());

    @SuppressWarnings("unchecked")
    Map<String, Object> extra = (Map<String, Object>) json.get("extra");
    assertThat(extra).containsEntry("nan", null).containsEntry("lone", lone)
        .containsEntry("emoji", "\ud83d\ude00").containsEntry("state", "SECONDARY");
    assertThat(extra.get("array")).isEqualTo(Arrays.asList(1L, "two", null));
  }
}
