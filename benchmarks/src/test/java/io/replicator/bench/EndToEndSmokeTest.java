package io.replicator.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The comparison harness end to end on tiny sizes: every case runs, the table and the JSON come out. */
class EndToEndSmokeTest {

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void runsEveryCaseOnTinySizes(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("out/result.json");
    BenchOptions options = BenchOptions.parse(new String[] {
        "--quick", "--samples", "50", "--threads", "2", "--thread-seconds", "0.2", "--seq-size", "4m",
        "--files", "50", "--resync-size", "8m", "--failover-timers", "tuned", "--dir", dir.resolve("work").toString(),
        "--json", json.toString()}, dir.resolve("unused.json"));
    ByteArrayOutputStream table = new ByteArrayOutputStream();
    ByteArrayOutputStream progress = new ByteArrayOutputStream();

    int status = new EndToEnd(options, new PrintStream(table, true, StandardCharsets.UTF_8),
        new PrintStream(progress, true, StandardCharsets.UTF_8)).run();

    String out = table.toString(StandardCharsets.UTF_8);
    assertThat(status).isZero();
    assertThat(out).contains("(1) 4 KiB write + force", "(2)", "(3)", "(4)", "(5)", "(6)", "Targets")
        .contains("local", "floor", "SYNC", "MEMORY", "ASYNC", "local, written twice", "incremental resync")
        .contains("p50 / floor", "ops/s / floor", "rate / floor");
    String written = Files.readString(json);
    assertThat(written).contains("\"cases\"", "\"targets\"", "\"ratioTo\"");
    // the temporary trees are gone, only the (empty) parent given by --dir is left
    try (var left = Files.list(dir.resolve("work"))) {
      assertThat(left).isEmpty();
    }
  }

  @Test
  void parsesSizesAndRejectsUnknownOptions() {
    assertThat(BenchOptions.size("--seq-size", "2g")).isEqualTo(2L << 30);
    assertThat(BenchOptions.size("--seq-size", "512m")).isEqualTo(512L << 20);
    assertThat(BenchOptions.size("--seq-size", "4096")).isEqualTo(4096);
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> BenchOptions.parse(new String[] {"--nope", "1"}, Path.of("x")))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
