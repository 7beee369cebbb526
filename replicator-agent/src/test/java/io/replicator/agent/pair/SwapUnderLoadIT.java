package io.replicator.agent.pair;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Swap there and back, then demote, while the application writes: nothing acknowledged is lost. */
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class SwapUnderLoadIT {
  @TempDir Path dir;
  PairProcesses pair;

  @AfterEach
  void tearDown() {
    if (pair != null) {
      pair.close();
    }
  }

  @Test
  void swapThereAndBackUnderLoadLosesNothing() throws Exception {
    pair = new PairProcesses(dir, false, "100ms", "1s");
    pair.startAgent("alpha");
    pair.startAgent("beta");
    pair.awaitOrDump("alpha or beta primary and writing", Duration.ofSeconds(40), () ->
        PairProcesses.NODES.stream().anyMatch(n -> pair.agentRole(n).equals("PRIMARY") && pair.inSync(n)
            && pair.ackCount(n) > 20));
    String p = pair.agentRole("alpha").equals("PRIMARY") ? "alpha" : "beta";
    String s = p.equals("alpha") ? "beta" : "alpha";
    for (String[] roles : new String[][] {{p, s}, {s, p}}) {
      String from = roles[0];
      String to = roles[1];
      long t0 = System.nanoTime();
      HttpResponse<String> r = pair.op(from, "swap");
      assertThat(r.statusCode()).as(r.body() + pair.logs()).isEqualTo(200);
      long acks = pair.ackCount(to);
      pair.awaitOrDump(to + " primary and writing", Duration.ofSeconds(30),
          () -> pair.agentRole(to).equals("PRIMARY") && pair.ackCount(to) > acks + 20 && pair.inSync(to));
      System.out.printf("swap %s -> %s: %d ms until the application wrote on %s%n", from, to,
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), to);
      assertThat(pair.missingOn(to).cardinality()).isZero();
    }
    // demoting the primary stops its application, which closes with the peer holding everything;
    // the peer then takes over (a demoted node yields in the election), and nothing is missing
    pair.awaitOrDump("in sync", Duration.ofSeconds(20), () -> pair.inSync(p));
    HttpResponse<String> demote = pair.op(p, "demote");
    assertThat(demote.statusCode()).as(demote.body()).isEqualTo(200);
    long acks = pair.ackCount(s);
    pair.awaitOrDump(s + " primary after the demote, writing and in sync", Duration.ofSeconds(40),
        () -> pair.agentRole(p).equals("SECONDARY") && pair.agentRole(s).equals("PRIMARY")
            && pair.ackCount(s) > acks + 20 && pair.inSync(s));
    assertThat(pair.missingOn(p).cardinality()).isZero();
    assertThat(pair.missingOn(s).cardinality()).isZero();
  }
}
