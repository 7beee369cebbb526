package io.replicator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The demo as an operator runs it: it verifies itself and says so; bad arguments are refused clearly. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DemoCommandTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    return ReplicatorCommand.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)).execute(args);
  }

  @Test
  void smallDemoVerifiesTheReplicaAndPasses() {
    int code = run("demo", "--threads", "3", "--ops", "300", "--latency-samples", "100", "--throughput-mib", "8");
    assertThat(code).as(out + "\n" + err).isZero();
    assertThat(out.toString())
        .contains("replica tree equals primary tree byte for byte")
        .containsPattern("acknowledged writes found on the replica when they returned: ([\\d,]+) of \\1")
        .contains("HA cycle PASSED")
        .contains("Result: PASS");
  }

  @Test
  void unknownOptionIsAUsageError() {
    assertThat(run("demo", "--threadz", "3")).isEqualTo(ReplicatorCommand.EXIT_USAGE);
    assertThat(err.toString()).contains("--threadz").contains("--help");
  }

  @Test
  void outOfRangeValueIsAUsageError() {
    assertThat(run("demo", "--threads", "0")).isEqualTo(ReplicatorCommand.EXIT_USAGE);
    assertThat(err.toString()).contains("--threads must be within 1..64");
  }

  @Test
  void badModeNamesTheChoices() {
    assertThat(run("demo", "--mode", "FAST")).isEqualTo(ReplicatorCommand.EXIT_USAGE);
    assertThat(err.toString()).contains("FAST").contains("SYNC");
  }

  @Test
  void missingCommandIsAUsageError() {
    assertThat(run()).isEqualTo(ReplicatorCommand.EXIT_USAGE);
    assertThat(err.toString()).contains("missing command");
  }
}
