package io.replicator.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import io.replicator.agent.AgentMain;
import io.replicator.agent.admin.AdminJson;
import io.replicator.agent.sample.LedgerWriter;
import io.replicator.cluster.AdminTokenFile;
import io.replicator.cluster.LoopbackPorts;
import io.replicator.proto.AdminRefusal;
import io.replicator.proto.StatusDocument;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The HA half of {@code replicator demo}: two agent processes on loopback and the ledger writer
 * as their application in SYNC mode, taken through normal operation, {@code kill -9} of the
 * primary's agent and application, failover with a check that every acknowledged record is
 * there, the old primary's return and incremental resync, a swap back, and a verify.
 */
final class HaCycleDemo {
  private final PrintWriter out;
  private final Path work;
  private final String heartbeat;
  private final String peerTimeout;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
  private final Map<String, Node> nodes = new LinkedHashMap<>();

  private static final class Node {
    final String name;
    final Path dir;
    final Path root;
    final Path acks;
    final Path pid;
    final int replication;
    final int agent;
    final int admin;
    Process process;

    Node(String name, Path work) throws IOException {
      this.name = name;
      this.dir = Files.createDirectories(work.resolve(name));
      this.root = Files.createDirectories(dir.resolve("data"));
      this.acks = dir.resolve("acks.log");
      this.pid = dir.resolve("app.pid");
      this.replication = freePort();
      this.agent = freePort();
      this.admin = freePort();
    }
  }

  HaCycleDemo(PrintWriter out, Path work, String heartbeat, String peerTimeout) throws IOException {
    this.out = out;
    this.work = work;
    this.heartbeat = heartbeat;
    this.peerTimeout = peerTimeout;
    for (String n : List.of("alpha", "beta")) {
      nodes.put(n, new Node(n, work));
    }
  }

  /** Runs the cycle; true when nothing acknowledged was lost and the final verify found the trees equal. */
  boolean run() throws Exception {
    writeFiles();
    try {
      out.printf("HA cycle: two agent processes and the ledger writer (SYNC), heartbeat %s, peer timeout %s%n",
          heartbeat, peerTimeout);
      out.printf("  configuration  %s%n", work.resolve("replicator.conf"));
      for (Node n : nodes.values()) {
        start(n);
      }
      String primary = awaitValue(Duration.ofSeconds(60), () -> {
        for (Node n : nodes.values()) {
          StatusDocument s = status(n);
          if (s.getExtra().getAgentRole() == StatusDocument.State.PRIMARY
              && s.getExtra().getApplication().getRegistered() && s.getInSync() && count(n.acks) > 0) {
            return n.name;
          }
        }
        return null;
      }, "a primary with its application writing");
      String secondary = other(primary);
      flush();
      // 1. normal operation
      long a0 = acknowledged().cardinality();
      long t0 = System.nanoTime();
      sleepUntil(Duration.ofSeconds(2));
      long a1 = acknowledged().cardinality();
      out.printf("1. normal operation: %s primary, %s secondary; %,d records acknowledged (%.0f/s, each write+force "
          + "on both disks)%n", primary, secondary, a1, (a1 - a0) / seconds(t0));
      flush();
      // 2. kill -9 of the primary's agent and application
      kill(nodes.get(primary));
      long killed = System.nanoTime();
      out.printf("2. kill -9 of %s's agent and application%n", primary);
      flush();
      // 3. failover
      Node s = nodes.get(secondary);
      awaitTrue(Duration.ofSeconds(30), () -> status(s).getExtra().getAgentRole() == StatusDocument.State.PRIMARY,
          "failover");
      long promoted = System.nanoTime();
      long acksBefore = count(s.acks);
      awaitTrue(Duration.ofSeconds(30), () -> count(s.acks) > acksBefore, "writes on the new primary");
      long writing = System.nanoTime();
      BitSet acked = acknowledged();
      BitSet missing = missingOn(s);
      out.printf("3. failover: %s primary after %d ms (detection %s), application writing after %d ms; "
          + "acknowledged %,d, lost %,d%n", secondary, millis(promoted - killed),
          status(s).getExtra().getFailover().getDetectionMillis() + " ms", millis(writing - killed), acked.cardinality(),
          missing.cardinality());
      flush();
      // 4. the old primary returns and is resynced incrementally
      sleepUntil(Duration.ofSeconds(1));
      long dirty = status(s).getDirtyBytes();
      long dataBytes = treeBytes(s.root.resolve("ledger"));
      start(nodes.get(primary));
      long restarted = System.nanoTime();
      awaitTrue(Duration.ofSeconds(60), () -> status(nodes.get(primary)).getExtra().getAgentRole()
          == StatusDocument.State.SECONDARY && status(s).getInSync(), "resync of the returning node");
      out.printf("4. %s restarted: back as secondary and in sync after %d ms; resync sent the %,d dirty bytes "
          + "tracked while alone, of %,d bytes of data (%.2f%%)%n", primary, millis(System.nanoTime() - restarted),
          dirty, dataBytes, 100.0 * dirty / Math.max(1, dataBytes));
      flush();
      // 5. swap back
      long swapStart = System.nanoTime();
      HttpResponse<String> swap = post(s, "swap");
      // the application reports the peer up to date on its next lease renewal: a swap asked a
      // moment too early is refused with REFUSED and asked again
      long swapDeadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (refusedForNow(swap) && System.nanoTime() < swapDeadline) {
        Thread.sleep(200);
        swap = post(s, "swap");
      }
      if (swap.statusCode() != 200) {
        throw new IOException("swap refused: " + swap.body().strip() + "; agent logs are in " + work);
      }
      Node back = nodes.get(primary);
      long backAcks = count(back.acks);
      awaitTrue(Duration.ofSeconds(60), () -> count(back.acks) > backAcks, "writes after the swap");
      out.printf("5. swap: %s (%d ms until the application wrote on %s); lost %,d%n", swap.body().strip(),
          millis(System.nanoTime() - swapStart), primary, missingOn(back).cardinality());
      flush();
      // 6. verify, with the application still writing
      awaitTrue(Duration.ofSeconds(30), () -> status(back).getInSync(), "in sync before verify");
      post(back, "verify");
      String result = awaitValue(Duration.ofSeconds(120), () -> {
        StatusDocument.Verify v = status(back).getExtra().getVerify();
        if (v.getRunning() || !v.hasResult()) {
          return null;
        }
        return v.hasFindings() ? "verify: " + VerifyCommand.summary(v.getFindings()) : v.getResult();
      }, "verify");
      out.printf("6. verify on %s: %s%n", primary, result);
      out.printf("%n`replicator status` on %s (admin 127.0.0.1:%d):%n", primary, back.admin);
      try {
        out.println(StatusView.render(status(back)).stripTrailing().indent(2).stripTrailing());
      } catch (RuntimeException e) {
        out.println("  (status could not be rendered: " + e.getMessage() + ")");
      }
      BitSet lost = missingOn(back);
      boolean ok = lost.isEmpty() && missing.isEmpty() && swap.statusCode() == 200;
      out.printf("%nHA cycle %s: %,d records acknowledged in all, %,d lost%n", ok ? "PASSED" : "FAILED",
          acknowledged().cardinality(), lost.cardinality() + missing.cardinality());
      return ok;
    } finally {
      for (Node n : nodes.values()) {
        stop(n);
      }
    }
  }

  private void writeFiles() throws IOException {
    StringBuilder c = new StringBuilder("cluster = \"demo\"\nmode = SYNC\nnodes {\n");
    for (Node n : nodes.values()) {
      c.append("  ").append(n.name).append(" {\n    address = \"127.0.0.1:").append(n.replication)
          .append("\"\n    agent-address = \"127.0.0.1:").append(n.agent)
          .append("\"\n    admin = \"127.0.0.1:").append(n.admin)
          .append("\"\n    root = \"").append(n.root).append("\"\n  }\n");
    }
    c.append("}\ntimers { heartbeat = ").append(heartbeat).append(", peer-timeout = ").append(peerTimeout)
        .append(", connect-timeout = 1s }\n");
    c.append("application {\n  start = \"").append(work.resolve("start.sh")).append("\"\n  stop = \"")
        .append(work.resolve("stop.sh")).append("\"\n  script-timeout = 20s\n}\n");
    Files.writeString(work.resolve("replicator.conf"), c.toString());
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String cp = System.getProperty("java.class.path");
    // the scripts find the node's files from the root the agent passes in the environment
    Path start = work.resolve("start.sh");
    Files.writeString(start, "#!/bin/bash\nd=\"$(dirname \"$REPLICATOR_ROOT\")\"\nrm -f \"$d/app.pid\"\n"
        + "nohup '" + java + "' -Xmx128m -cp '" + cp + "' " + LedgerWriter.class.getName()
        + " \"$REPLICATOR_ROOT\" \"$REPLICATOR_ADMIN\" \"$d/acks.log\" \"$d/app.pid\" 2 >>\"$d/app.log\" 2>&1 &\n"
        + "for i in $(seq 100); do [ -s \"$d/app.pid\" ] && exit 0; sleep 0.05; done\nexit 1\n");
    Path stop = work.resolve("stop.sh");
    Files.writeString(stop, "#!/bin/bash\nd=\"$(dirname \"$REPLICATOR_ROOT\")\"\n[ -s \"$d/app.pid\" ] || exit 0\n"
        + "pid=$(cat \"$d/app.pid\")\nkill -TERM \"$pid\" 2>/dev/null || exit 0\n"
        + "for i in $(seq 200); do kill -0 \"$pid\" 2>/dev/null || exit 0; sleep 0.05; done\nkill -KILL \"$pid\"\n");
    for (Path p : List.of(start, stop)) {
      Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  private void start(Node n) throws IOException {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx192m", "-cp", System.getProperty("java.class.path"), AgentMain.class.getName(),
        "--config", work.resolve("replicator.conf").toString(), "--node", n.name));
    ProcessBuilder agent = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(n.dir.resolve("agent.log").toFile()));
    // the demo's agents make their admin tokens in its work directory, not in the home directory
    agent.environment().put(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE, runtimeDirectory().toString());
    n.process = agent.start();
  }

  private Path runtimeDirectory() {
    return work.resolve("run");
  }

  private void kill(Node n) throws Exception {
    if (Files.exists(n.pid)) {
      new ProcessBuilder("kill", "-9", Files.readString(n.pid).trim()).start().waitFor(10, TimeUnit.SECONDS);
    }
    new ProcessBuilder("kill", "-9", Long.toString(n.process.pid())).start().waitFor(10, TimeUnit.SECONDS);
    n.process.waitFor(10, TimeUnit.SECONDS);
  }

  private void stop(Node n) {
    Process p = n.process;
    if (p != null && p.isAlive()) {
      p.destroy(); // SIGTERM: the agent stops the application cleanly
      try {
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        p.destroyForcibly();
      }
    }
    try {
      if (Files.exists(n.pid)) {
        String pid = Files.readString(n.pid).trim();
        ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
      }
    } catch (IOException | NumberFormatException e) {
      // nothing left to stop
    }
  }

  /** A 409 whose code is REFUSED: the node is not ready for it yet. */
  private static boolean refusedForNow(HttpResponse<String> answer) {
    if (answer.statusCode() != 409) {
      return false;
    }
    try {
      return AdminJson.parse(answer.body(), AdminRefusal.newBuilder()).getError() == AdminRefusal.Code.REFUSED;
    } catch (InvalidProtocolBufferException e) {
      return false;
    }
  }

  /** The node's status document; an empty one while its agent does not answer (yet). */
  private StatusDocument status(Node n) {
    HttpResponse<String> r;
    try {
      r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + n.admin + "/status"))
          .timeout(Duration.ofSeconds(3)).GET().build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      return StatusDocument.getDefaultInstance();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return StatusDocument.getDefaultInstance();
    }
    return r.statusCode() == 200 ? AdminClient.parseStatus(r.body(), "127.0.0.1:" + n.admin)
        : StatusDocument.getDefaultInstance();
  }

  private HttpResponse<String> post(Node n, String op) throws Exception {
    String token = AdminTokenFile.find(java.util.Map.of(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE,
        runtimeDirectory().toString())::get, new java.net.InetSocketAddress("127.0.0.1", n.admin)).orElse("");
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + n.admin + "/ops/" + op))
        .timeout(Duration.ofSeconds(120)).header("Authorization", "Bearer " + token)
        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
  }

  private BitSet acknowledged() throws IOException {
    return LedgerWriter.acknowledged(nodes.values().stream().map(n -> n.acks).toList());
  }

  private BitSet missingOn(Node n) throws IOException {
    return LedgerWriter.missing(n.root.resolve("ledger"), nodes.values().stream().map(x -> x.acks).toList());
  }

  private static long count(Path acks) {
    try {
      return Files.exists(acks) ? Files.readAllLines(acks).size() : 0;
    } catch (IOException e) {
      return 0;
    }
  }

  private static long treeBytes(Path dir) throws IOException {
    try (var s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  private String other(String n) {
    return n.equals("alpha") ? "beta" : "alpha";
  }

  private void awaitTrue(Duration timeout, BooleanSupplier condition, String what) throws Exception {
    awaitValue(timeout, () -> condition.getAsBoolean() ? "yes" : null, what);
  }

  private <T> T awaitValue(Duration timeout, java.util.concurrent.Callable<T> probe, String what) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      T v = probe.call();
      if (v != null) {
        return v;
      }
      Thread.sleep(20); // polling the agents' status with a deadline
    }
    throw new IOException("timed out after " + timeout.toSeconds() + " s waiting for " + what
        + "; agent logs are in " + work);
  }

  private static void sleepUntil(Duration d) throws InterruptedException {
    Thread.sleep(d.toMillis()); // lets the application write for a while: this is the demo's pacing, not a wait for a condition
  }

  private static double seconds(long since) {
    return (System.nanoTime() - since) / 1e9;
  }

  private static long millis(long nanos) {
    return TimeUnit.NANOSECONDS.toMillis(nanos);
  }

  private void flush() {
    out.flush();
  }

  /** The agents bind their ports only once started: take ports no outgoing connection can take meanwhile. */
  private static int freePort() throws IOException {
    return LoopbackPorts.reserve();
  }
}
