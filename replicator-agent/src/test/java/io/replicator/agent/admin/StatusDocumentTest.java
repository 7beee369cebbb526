package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.Descriptors;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.Timestamp;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.proto.StatusDocument;
import io.replicator.proto.VerifyFindings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The status document is a contract with operators' scripts: its JSON names never change, what a
 * script reads is what the agent meant, and a document with a bad value is refused, not read as 0.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class StatusDocumentTest {

  /** A document with every field set, as an agent with a witness writes it during a resync and a verify. */
  private static StatusDocument everything() {
    StatusDocument.Builder doc = StatusDocuments.of("beta", Statuses.syncSource(250, 1000, 750))
        .setLastFailover(StatusDocuments.failover(Instant.parse("2025-01-02T03:04:05Z"), Optional.of("alpha"),
            Optional.of("beta"), "failover: peer lost"));
    doc.getExtraBuilder()
        .setCluster("orders").setEpoch(7).setAgentRole(StatusDocument.State.PRIMARY)
        .setPeerNode(StatusDocument.PeerNode.newBuilder().setName("alpha").setState(StatusDocument.State.SECONDARY)
            .setReachable(true).setLastHeardMillisAgo(120).setGeneration("00000000deadbeef").setConsistent(false)
            .setRefused("resync running"))
        .setWitness(StatusDocument.Witness.newBuilder().setAddress("10.0.0.3:7401").setReachable(true)
            .setPrimary("beta").addOutdated("alpha").setAloneGranted(true).setFenced(false))
        .setApplication(StatusDocument.Application.newBuilder().setStartScript("/srv/app/start").setRegistered(true)
            .setRestarts(1))
        .setVerify(StatusDocument.Verify.newBuilder().setRunning(true).setResult("verify: identical")
            .setFilesDone(3).setFilesTotal(9).setBytesDone(4096).setBytesTotal(16384).setBytesPerSecond(8192)
            .setEtaSeconds(2).setFindings(VerifyFindings.newBuilder().setPathsCompared(3).setBytesCompared(4096)
                .setBlocksDiffering(1).setPathsDiffering(1).addExamples("orders/a.log")))
        .setFailover(StatusDocument.FailoverFigures.newBuilder().setDetectionMillis(1500).setPromotionMillis(300));
    return doc.build();
  }

  @Test
  void everyFieldKeepsTheNameScriptsReadItBy() throws Exception {
    String text = AdminJson.print(everything());

    assertThat(names(text)).containsExactlyInAnyOrder(
        "node", "role", "state", "mode", "inSync", "problem", "generation", "dirtyBytes", "lastSequence",
        "appliedSequence",
        "peer", "peer.address", "peer.connected", "peer.outOfDate",
        "inFlight", "inFlight.changes", "inFlight.bytes",
        "resync", "resync.bytesDone", "resync.bytesTotal", "resync.bytesPerSecond", "resync.etaSeconds",
        "resync.filesDone", "resync.filesTotal", "resync.percent",
        "lastFailover", "lastFailover.at", "lastFailover.from", "lastFailover.to", "lastFailover.reason",
        "extra", "extra.cluster", "extra.epoch", "extra.agentRole",
        "extra.peerNode", "extra.peerNode.name", "extra.peerNode.state", "extra.peerNode.reachable",
        "extra.peerNode.lastHeardMillisAgo", "extra.peerNode.generation", "extra.peerNode.consistent",
        "extra.peerNode.refused",
        "extra.witness", "extra.witness.address", "extra.witness.reachable", "extra.witness.primary",
        "extra.witness.outdated", "extra.witness.aloneGranted", "extra.witness.fenced",
        "extra.application", "extra.application.startScript", "extra.application.registered",
        "extra.application.restarts",
        "extra.verify", "extra.verify.running", "extra.verify.result", "extra.verify.filesDone",
        "extra.verify.filesTotal", "extra.verify.bytesDone", "extra.verify.bytesTotal",
        "extra.verify.bytesPerSecond", "extra.verify.etaSeconds", "extra.verify.findings",
        "extra.verify.findings.pathsCompared", "extra.verify.findings.bytesCompared",
        "extra.verify.findings.blocksDiffering", "extra.verify.findings.pathsDiffering",
        "extra.verify.findings.examples",
        "extra.failover", "extra.failover.detectionMillis", "extra.failover.promotionMillis", "followers");
    // the spellings scripts compare against; 64-bit integers are strings in the proto3 JSON mapping
    assertThat(text).startsWith("{\"node\":\"beta\",\"role\":\"primary\",\"state\":\"SYNC_SOURCE\",\"mode\":\"SYNC\",")
        .contains("\"generation\":\"fedcba9876543210\"", "\"dirtyBytes\":\"750\"", "\"percent\":25.0",
            "\"etaSeconds\":\"7\"", "\"at\":\"2025-01-02T03:04:05Z\"", "\"agentRole\":\"PRIMARY\"",
            "\"outdated\":[\"alpha\"]", "\"inSync\":false")
        .doesNotContain("\n");
  }

  @Test
  void whatANodeDoesNotHaveIsLeftOutAndZerosArePrinted() throws Exception {
    ReplicationStatus starting = new ReplicationStatus(NodeState.WAIT, ReplicationMode.ASYNC, Optional.empty(),
        false, false, Optional.empty(), 0, 0, 0, 0, 0, 0, Optional.empty());

    String text = AdminJson.print(StatusDocuments.of("alpha", starting));

    assertThat(names(text)).containsExactlyInAnyOrder("node", "role", "state", "mode", "inSync", "generation",
        "dirtyBytes", "lastSequence", "appliedSequence", "peer", "peer.connected", "peer.outOfDate", "inFlight",
        "inFlight.changes", "inFlight.bytes", "followers");
    assertThat(text).contains("\"role\":\"none\"", "\"dirtyBytes\":\"0\"", "\"generation\":\"0000000000000000\"");
  }

  @Test
  void aPrintedDocumentReadsBackAsTheSameDocument() throws Exception {
    String awkward = "no\"de\\with\nnew\r\tline\u0000\u001f\u007f\u2028<end>";
    StatusDocument doc = everything().toBuilder().setNode(awkward).setProblem("split brain: \"alpha\"\nsays\b\f")
        .build();

    String text = AdminJson.print(doc);

    assertThat(text).doesNotContain("\n").doesNotContain("\u0000").doesNotContain("\u2028");
    assertThat(Statuses.parse(text)).isEqualTo(doc);
    assertThat(AdminJson.parse(text, StatusDocument.newBuilder()).build()).isEqualTo(doc);
  }

  @Test
  void aBadValueIsRefusedWithAMessageNeverReadAsZero() {
    Map<String, String> bad = Map.of(
        "{\"node\":\"alpha\",\"dirtyBytes\":\"lots\"}", "lots",
        "{\"node\":\"alpha\",\"dirtyBytes\":-1}", "-1",
        "{\"node\":\"alpha\",\"inSync\":\"yes\"}", "yes",
        "{\"node\":\"alpha\",\"resync\":{\"bytesDone\":1.5}}", "1.5",
        "{\"node\":\"alpha\",\"state\":\"HALF_PRIMARY\"}", "HALF_PRIMARY");
    bad.forEach((json, value) -> assertThatThrownBy(() -> Statuses.parse(json)).as(json)
        .isInstanceOf(InvalidProtocolBufferException.class).hasMessageContaining(value));
    bad.keySet().stream().filter(json -> !json.contains("HALF_PRIMARY")).forEach(json ->
        assertThatThrownBy(() -> AdminJson.parse(json, StatusDocument.newBuilder())).as(json)
            .isInstanceOf(InvalidProtocolBufferException.class));
    assertThatThrownBy(() -> AdminJson.parse("not json", StatusDocument.newBuilder()))
        .isInstanceOf(InvalidProtocolBufferException.class);
  }

  @Test
  void everyFieldIsDocumentedForScripts() throws Exception {
    // Surefire runs in the module directory; the table is in the README's section on the CLI.
    String readme = Files.readString(Path.of("..", "README.md"));
    Set<String> fields = new TreeSet<>();
    fields("", StatusDocument.getDescriptor(), fields);

    assertThat(fields).hasSizeGreaterThan(60).allSatisfy(field ->
        assertThat(readme).as("README.md documents %s", field).contains("| `" + field + "` |"));
  }

  private static void fields(String prefix, Descriptors.Descriptor message, Set<String> into) {
    for (Descriptors.FieldDescriptor field : message.getFields()) {
      into.add(prefix + field.getJsonName());
      if (field.getJavaType() == Descriptors.FieldDescriptor.JavaType.MESSAGE
          && !field.getMessageType().equals(Timestamp.getDescriptor())
          && !field.getMessageType().equals(com.google.protobuf.Duration.getDescriptor())) {
        fields(prefix + field.getJsonName() + ".", field.getMessageType(), into);
      }
    }
  }

  /** Every member name in the document, as a dotted path. */
  private static Set<String> names(String json) throws InvalidProtocolBufferException {
    Struct.Builder root = Struct.newBuilder();
    JsonFormat.parser().merge(json, root);
    Set<String> names = new TreeSet<>();
    collect("", root.build(), names);
    return names;
  }

  private static void collect(String prefix, Struct struct, Set<String> names) {
    for (Map.Entry<String, Value> e : struct.getFieldsMap().entrySet()) {
      names.add(prefix + e.getKey());
      if (e.getValue().hasStructValue()) {
        collect(prefix + e.getKey() + ".", e.getValue().getStructValue(), names);
      }
    }
  }
}
