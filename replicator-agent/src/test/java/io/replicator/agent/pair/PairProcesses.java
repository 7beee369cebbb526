package io.replicator.agent.pair;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.replicator.agent.sample.LedgerWriter;
import io.replicator.cluster.AdminTokenFile;
import io.replicator.cluster.LoopbackPorts;
import io.replicator.proto.FollowerLog;
import io.replicator.proto.StatusDocument;
import io.replicator.testing.TcpProxy;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
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

/**
 * A pair of agent processes (alpha, beta) and optionally a witness process on loopback, each
 * data node running the ledger writer as its application through start and stop scripts. Every
 * link between members goes through a {@link TcpProxy} owned by the side that connects, so tests
 * can partition any member from any other; {@code kill -9} hits the real processes.
 */
public final class PairProcesses implements Closeable {
  public static final List<String> NODES = List.of("alpha", "beta");

  private final Path base;
  private final boolean withWitness;
  private final String heartbeat;
  private final String peerTimeout;
  /** Seed of the {@link RandomWorkload} the nodes run, or null for the ledger writer. */
  private final Long workloadSeed;
  private final Map<String, Node> nodes = new LinkedHashMap<>();
  private Process witness;
  private int witnessPort;
  private final List<TcpProxy> proxies = new ArrayList<>();
  private boolean withApplication = true;
  private boolean quickStart;
  private final Map<String, Path> secrets = new LinkedHashMap<>();
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  /** One data node: its ports, its directories, its agent process, the proxies it connects through. */
  public final class Node {
    public final String name;
    public final int replicationPort;
    public final int agentPort;
    public final int adminPort;
    public final Path root;
    public final Path dir;
    public final Path ackLog;
    public final Path pidFile;
    /** Where the random workload takes its pause requests. */
    public final Path control;
    /** Proxies this node connects through: to the peer's replication and agent ports, and to the witness. */
    TcpProxy toPeerReplication;
    TcpProxy toPeerAgent;
    TcpProxy toWitness;
    Process agent;

    Node(String name) throws IOException {
      this.name = name;
      this.replicationPort = freePort();
      this.agentPort = freePort();
      this.adminPort = freePort();
      this.dir = Files.createDirectories(base.resolve(name));
      this.root = Files.createDirectories(dir.resolve("data"));
      this.ackLog = dir.resolve("acks.log");
      this.pidFile = dir.resolve("app.pid");
      this.control = dir.resolve("control");
    }

    public InetSocketAddress admin() {
      return new InetSocketAddress("127.0.0.1", adminPort);
    }
  }

  public PairProcesses(Path base, boolean withWitness, String heartbeat, String peerTimeout) throws IOException {
    this(base, withWitness, heartbeat, peerTimeout, null);
  }

  /** A pair whose application is the {@link RandomWorkload} with this seed (the ledger writer when null). */
  public PairProcesses(Path base, boolean withWitness, String heartbeat, String peerTimeout, Long workloadSeed)
      throws IOException {
    this.base = base;
    this.workloadSeed = workloadSeed;
    this.withWitness = withWitness;
    this.heartbeat = heartbeat;
    this.peerTimeout = peerTimeout;
    for (String n : NODES) {
      nodes.put(n, new Node(n));
    }
    witnessPort = withWitness ? freePort() : 0;
    for (Node n : nodes.values()) {
      Node p = peerOf(n);
      n.toPeerReplication = proxy(p.replicationPort);
      n.toPeerAgent = proxy(p.agentPort);
      if (withWitness) {
        n.toWitness = proxy(witnessPort);
      }
    }
    // every link of the pair (replication, agent channel, witness) authenticates with this secret
    Files.writeString(base.resolve("secret"), Long.toHexString(new java.security.SecureRandom().nextLong())
        + Long.toHexString(new java.security.SecureRandom().nextLong()) + "\n");
    for (Node n : nodes.values()) {
      writeScripts(n);
      Files.writeString(n.dir.resolve("replicator.conf"), config(n));
    }
    if (withWitness) {
      // the witness reads its own address from any node's file
      Files.writeString(base.resolve("witness.conf"), config(nodes.get("alpha"))
          .replace("127.0.0.1:" + nodes.get("alpha").toWitness.address().getPort(), "127.0.0.1:" + witnessPort));
    }
    Files.writeString(base.resolve("logback.xml"), """
        <configuration>
          <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
            <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{20} - %msg%n</pattern></encoder>
          </appender>
          <logger name="io.replicator" level="INFO"/>
          <root level="WARN"><appender-ref ref="OUT"/></root>
        </configuration>
        """);
  }

  private TcpProxy proxy(int port) throws IOException {
    TcpProxy p = new TcpProxy(new InetSocketAddress("127.0.0.1", port));
    proxies.add(p);
    return p;
  }

  /** No application: the agents decide roles and run the replica server, nothing writes. Cheaper to start. */
  /** A follower of the pair, run by its own agent process ({@link #startFollower}). */
  public final class Follower {
    public final String name;
    public final String mode;
    public final String delay;
    public final int replicationPort;
    public final int adminPort;
    public final Path dir;
    public final Path root;
    Process agent;

    Follower(String name, String mode, String delay) throws IOException {
      this.name = name;
      this.mode = mode;
      this.delay = delay;
      this.replicationPort = freePort();
      this.adminPort = freePort();
      this.dir = Files.createDirectories(base.resolve(name));
      this.root = Files.createDirectories(dir.resolve("data"));
    }

    public InetSocketAddress admin() {
      return new InetSocketAddress("127.0.0.1", adminPort);
    }
  }

  private final Map<String, Follower> followers = new java.util.LinkedHashMap<>();

  /**
   * Declares a follower in every configuration file (call before starting any agent); {@code delay}
   * is for DELAYED only, else null.
   */
  public Follower withFollower(String name, String mode, String delay) throws IOException {
    Follower f = new Follower(name, mode, delay);
    followers.put(name, f);
    for (Node n : nodes.values()) {
      Files.writeString(n.dir.resolve("replicator.conf"), config(n));
    }
    Files.writeString(f.dir.resolve("replicator.conf"), config(nodes.get("alpha")));
    return f;
  }

  public int followerCount() {
    return followers.size();
  }

  public Follower follower(String name) {
    return followers.get(name);
  }

  /** Starts (or restarts) the agent of follower {@code name}. */
  public void startFollower(String name) throws IOException {
    Follower f = followers.get(name);
    List<String> cmd = javaCommand();
    cmd.addAll(List.of(io.replicator.agent.AgentMain.class.getName(), "--config",
        f.dir.resolve("replicator.conf").toString(), "--node", name));
    ProcessBuilder agent = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(f.dir.resolve("agent.log").toFile()));
    agent.environment().put(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE, runtimeDirectory().toString());
    f.agent = agent.start();
  }

  /** The follower's status document (its admin endpoint), the empty document while it does not answer. */
  public StatusDocument followerStatus(String name) {
    Follower f = followers.get(name);
    try {
      java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
          java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + f.adminPort + "/status"))
              .timeout(Duration.ofSeconds(2)).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
      StatusDocument.Builder doc = StatusDocument.newBuilder();
      JsonFormat.parser().merge(r.body(), doc);
      return doc.build();
    } catch (IOException e) {
      return StatusDocument.getDefaultInstance();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return StatusDocument.getDefaultInstance();
    }
  }

  /**
   * The follower's own view once it answers: polled, since on a loaded machine one status request
   * may time out (and {@link #followerStatus} then reads as an empty document).
   */
  public io.replicator.proto.FollowerView answeredFollowerView(String name) {
    return org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100))
        .until(() -> followerStatus(name), StatusDocument::hasFollowerNode).getFollowerNode();
  }

  /** The delayed follower's spill log once it answers (polled, as {@link #answeredFollowerView}). */
  public FollowerLog answeredFollowerLog(String name) {
    return org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100))
        .until(() -> fetchFollowerLog(name), java.util.Objects::nonNull);
  }

  /** The delayed follower's spill log ({@code GET /log}), oldest first; empty while it does not answer. */
  public FollowerLog followerLog(String name) {
    FollowerLog log = fetchFollowerLog(name);
    return log == null ? FollowerLog.getDefaultInstance() : log;
  }

  private FollowerLog fetchFollowerLog(String name) {
    Follower f = followers.get(name);
    try {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + f.adminPort
          + "/log?limit=10000")).timeout(Duration.ofSeconds(3)).GET().build(), HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) {
        return null;
      }
      FollowerLog.Builder log = FollowerLog.newBuilder();
      JsonFormat.parser().merge(r.body(), log);
      return log.build();
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /** {@code kill -9} of the follower's agent (and with it its replica server). */
  public void killFollower(String name) throws Exception {
    Follower f = followers.get(name);
    if (f.agent != null) {
      new ProcessBuilder("kill", "-9", Long.toString(f.agent.pid())).start().waitFor(10, TimeUnit.SECONDS);
      f.agent.waitFor(10, TimeUnit.SECONDS);
      f.agent = null;
    }
  }

  public PairProcesses withoutApplication() throws IOException {
    withApplication = false;
    rewriteConfigs();
    return this;
  }

  /** Gives {@code name} a secret of its own, so the pair's links refuse each other. */
  public PairProcesses ownSecret(String name) throws IOException {
    Path f = nodes.get(name).dir.resolve("own-secret");
    Files.writeString(f, Long.toHexString(new java.security.SecureRandom().nextLong()) + "0123456789abcdef\n");
    secrets.put(name, f);
    rewriteConfigs();
    return this;
  }

  private void rewriteConfigs() throws IOException {
    for (Node n : nodes.values()) {
      Files.writeString(n.dir.resolve("replicator.conf"), config(n));
    }
    if (withWitness) {
      Files.writeString(base.resolve("witness.conf"), config(nodes.get("alpha"))
          .replace("127.0.0.1:" + nodes.get("alpha").toWitness.address().getPort(), "127.0.0.1:" + witnessPort));
    }
  }

  public Node node(String name) {
    return nodes.get(name);
  }

  public Node peerOf(Node n) {
    return nodes.get(n.name.equals("alpha") ? "beta" : "alpha");
  }

  /** The pair's configuration as {@code n} sees it: its own addresses real, the others through its proxies. */
  private String config(Node n) {
    Node p = peerOf(n);
    StringBuilder s = new StringBuilder();
    s.append("cluster = \"ledger\"\nmode = SYNC\n");
    s.append("nodes {\n");
    for (Node x : List.of(nodes.get("alpha"), nodes.get("beta"))) {
      boolean me = x == n;
      int repl = me ? x.replicationPort : n.toPeerReplication.address().getPort();
      int agent = me ? x.agentPort : n.toPeerAgent.address().getPort();
      s.append("  ").append(x.name).append(" {\n")
          .append("    address = \"127.0.0.1:").append(repl).append("\"\n")
          .append("    agent-address = \"127.0.0.1:").append(agent).append("\"\n")
          .append("    admin = \"127.0.0.1:").append(me ? x.adminPort : x.adminPort).append("\"\n")
          .append("    root = \"").append(x.root).append("\"\n  }\n");
    }
    s.append("}\n");
    if (withWitness) {
      s.append("witness { address = \"127.0.0.1:").append(n.toWitness.address().getPort()).append("\" }\n");
    }
    if (!followers.isEmpty()) {
      s.append("followers {\n");
      for (Follower f : followers.values()) {
        s.append("  ").append(f.name).append(" { address = \"127.0.0.1:").append(f.replicationPort)
            .append("\", root = \"").append(f.root).append("\", mode = ").append(f.mode)
            .append(", admin = \"127.0.0.1:").append(f.adminPort).append("\"");
        if (f.delay != null) {
          s.append(", delay = ").append(f.delay).append(", log-capacity = \"256 MiB\"");
        }
        s.append(" }\n");
      }
      s.append("}\n");
    }
    s.append("secret-file = \"").append(secrets.getOrDefault(n.name, base.resolve("secret"))).append("\"\n");
    s.append("timers { heartbeat = ").append(heartbeat).append(", peer-timeout = ").append(peerTimeout)
        .append(", connect-timeout = 1s }\n");
    if (!withApplication) {
      return s.toString();
    }
    s.append("application {\n  start = \"").append(n.dir.resolve("start.sh")).append("\"\n  stop = \"")
        .append(n.dir.resolve("stop.sh")).append("\"\n  script-timeout = 20s\n  check-interval = 500ms\n")
        .append("  checkers = [ { type = process, pidfile = \"").append(n.pidFile).append("\" } ]\n}\n");
    return s.toString();
  }

  private void writeScripts(Node n) throws IOException {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String cp = System.getProperty("java.class.path");
    Path start = n.dir.resolve("start.sh");
    Files.writeString(start, "#!/bin/bash\n"
        + "rm -f '" + n.pidFile + "'\n"
        + "nohup '" + java + "' -Xmx128m -Dlogback.configurationFile='" + base.resolve("logback.xml") + "' -cp '" + cp
        + "' " + ParentWatch.class.getName() + " " + ProcessHandle.current().pid() + " " + applicationArguments(n)
        + " >>'" + n.dir.resolve("app.log") + "' 2>&1 &\n"
        + "for i in $(seq 100); do [ -s '" + n.pidFile + "' ] && exit 0; sleep 0.05; done\nexit 1\n");
    Path stop = n.dir.resolve("stop.sh");
    Files.writeString(stop, "#!/bin/bash\n"
        + "[ -s '" + n.pidFile + "' ] || exit 0\n"
        + "pid=$(cat '" + n.pidFile + "')\n"
        + "kill -TERM \"$pid\" 2>/dev/null || exit 0\n"
        + "for i in $(seq 200); do kill -0 \"$pid\" 2>/dev/null || exit 0; sleep 0.05; done\n"
        + "kill -KILL \"$pid\"; exit 0\n");
    for (Path p : List.of(start, stop)) {
      Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  private String applicationArguments(Node n) {
    if (workloadSeed == null) {
      return LedgerWriter.class.getName() + " \"$REPLICATOR_ROOT\" \"$REPLICATOR_ADMIN\" '" + n.ackLog + "' '"
          + n.pidFile + "' 2";
    }
    StringBuilder s = new StringBuilder(RandomWorkload.class.getName()).append(" \"$REPLICATOR_ROOT\" \"$REPLICATOR_ADMIN\" ")
        .append(workloadSeed).append(" '").append(n.ackLog).append("' '").append(n.pidFile).append("' '")
        .append(n.control).append("'");
    for (Node x : nodes.values()) {
      s.append(" '").append(x.ackLog).append("'");
    }
    return s.toString();
  }

  /** Starts (or restarts) the agent of {@code name}. */
  public void startAgent(String name) throws IOException {
    Node n = nodes.get(name);
    List<String> cmd = javaCommand();
    cmd.addAll(List.of(io.replicator.agent.AgentMain.class.getName(), "--config",
        n.dir.resolve("replicator.conf").toString(), "--node", name));
    ProcessBuilder agent = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(n.dir.resolve("agent.log").toFile()));
    // each agent makes its admin token here, not in the home directory; its application inherits it
    agent.environment().put(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE, runtimeDirectory().toString());
    n.agent = agent.start();
  }

  public void startWitness() throws IOException {
    List<String> cmd = javaCommand();
    cmd.addAll(List.of(io.replicator.agent.AgentMain.class.getName(), "--config",
        base.resolve("witness.conf").toString(), "--witness"));
    witness = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(base.resolve("witness.log").toFile())).start();
  }

  /** Agents that start quickly (the client compiler only, a small heap): for tests that start many of them. */
  public PairProcesses quickStarting() {
    quickStart = true;
    return this;
  }

  private List<String> javaCommand() {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx192m");
    if (quickStart) {
      cmd.addAll(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k"));
    }
    cmd.add("-Dlogback.configurationFile=" + base.resolve("logback.xml"));
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(ParentWatch.class.getName());
    cmd.add(Long.toString(ProcessHandle.current().pid()));
    return cmd;
  }

  /** {@code kill -9} of the node's agent and its application. */
  public void killNode(String name) throws Exception {
    Node n = nodes.get(name);
    if (Files.exists(n.pidFile)) {
      String pid = Files.readString(n.pidFile).trim();
      if (!pid.isEmpty()) {
        new ProcessBuilder("kill", "-9", pid).start().waitFor(10, TimeUnit.SECONDS);
      }
    }
    if (n.agent != null) {
      new ProcessBuilder("kill", "-9", Long.toString(n.agent.pid())).start().waitFor(10, TimeUnit.SECONDS);
      n.agent.waitFor(10, TimeUnit.SECONDS);
      n.agent = null;
    }
  }

  /** Cuts (or heals) every link between the two data nodes, both directions, replication and agent. */
  public void partitionNodes(boolean on) {
    for (Node n : nodes.values()) {
      n.toPeerReplication.partition(on);
      n.toPeerAgent.partition(on);
      if (on) {
        n.toPeerReplication.cut();
        n.toPeerAgent.cut();
      }
      n.toPeerReplication.refuse(on);
      n.toPeerAgent.refuse(on);
    }
  }

  /** Cuts (or heals) the links of {@code name} to the witness. */
  public void partitionFromWitness(String name, boolean on) {
    TcpProxy p = nodes.get(name).toWitness;
    p.partition(on);
    p.refuse(on);
  }

  // ---------------------------------------------------------------- observations

  public String status(String name) {
    try {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
          + nodes.get(name).adminPort + "/status")).timeout(Duration.ofSeconds(3)).GET().build(),
          HttpResponse.BodyHandlers.ofString());
      return r.statusCode() == 200 ? r.body() : "";
    } catch (IOException e) {
      return "";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "";
    }
  }

  /** {@code POST /ops/op} on the node's agent, with the admin token the agent made for itself. */
  public HttpResponse<String> op(String name, String op) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + nodes.get(name).adminPort
        + "/ops/" + op)).timeout(Duration.ofSeconds(90)).header("Authorization", "Bearer " + adminToken(name))
        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
  }

  /** Where the agents keep their own admin tokens (REPLICATOR_RUNTIME_DIR). */
  public Path runtimeDirectory() {
    return base.resolve("run");
  }

  /** The admin token the node's agent made for itself at its first start. */
  public String adminToken(String name) throws IOException {
    return Files.readString(AdminTokenFile.forPort(Map.of(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE,
        runtimeDirectory().toString())::get, nodes.get(name).adminPort)).strip();
  }

  /**
   * The node's status document; the empty document while its agent does not answer. A document
   * that does not parse fails the test: the agent wrote something its contract does not allow.
   */
  public StatusDocument statusDocument(String name) {
    String json = status(name);
    if (json.isEmpty()) {
      return StatusDocument.getDefaultInstance();
    }
    StatusDocument.Builder doc = StatusDocument.newBuilder();
    try {
      JsonFormat.parser().merge(json, doc);
    } catch (InvalidProtocolBufferException e) {
      throw new AssertionError(name + " sent a status that is not a status document: " + json, e);
    }
    return doc.build();
  }

  /** The role the node's agent decided: PRIMARY, SECONDARY, WAIT or STOPPED ("" while it does not answer). */
  public String agentRole(String name) {
    StatusDocument doc = statusDocument(name);
    return doc.hasExtra() ? doc.getExtra().getAgentRole().name() : "";
  }

  /** The node whose agent is primary with its application registered, once there is one. */
  public String awaitPrimary(Duration timeout) {
    String[] found = new String[1];
    awaitOrDump("a primary", timeout, () -> {
      for (String n : NODES) {
        if (agentRole(n).equals("PRIMARY") && registered(n)) {
          found[0] = n;
          return true;
        }
      }
      return false;
    });
    return found[0];
  }

  /** What the application on node {@code name} logged so far (all its runs): its library is the primary. */
  public String applicationLog(String name) throws IOException {
    Path log = nodes.get(name).dir.resolve("app.log");
    return Files.exists(log) ? Files.readString(log, java.nio.charset.StandardCharsets.UTF_8) : "";
  }

  public boolean registered(String name) {
    return statusDocument(name).getExtra().getApplication().getRegistered();
  }

  public boolean inSync(String name) {
    return statusDocument(name).getInSync();
  }

  /** Record numbers acknowledged to either node's application. */
  public BitSet acknowledged() throws IOException {
    return LedgerWriter.acknowledged(nodes.values().stream().map(n -> n.ackLog).toList());
  }

  public long ackCount(String name) {
    Path log = nodes.get(name).ackLog;
    try {
      return Files.exists(log) ? Files.readAllLines(log).size() : 0;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Acknowledged records missing from {@code name}'s data. */
  public BitSet missingOn(String name) throws IOException {
    return LedgerWriter.missing(nodes.get(name).root.resolve("ledger"),
        nodes.values().stream().map(n -> n.ackLog).toList());
  }

  /** Polls {@code condition} until true; on timeout fails with the status of both nodes and their logs. */
  public void awaitOrDump(String what, Duration timeout, java.util.concurrent.Callable<Boolean> condition) {
    try {
      org.awaitility.Awaitility.await().atMost(timeout).pollInterval(Duration.ofMillis(20)).until(condition);
    } catch (org.awaitility.core.ConditionTimeoutException e) {
      throw new AssertionError("timed out waiting for " + what + "\nalpha: " + status("alpha") + "\nbeta: "
          + status("beta") + "\n" + logs(), e);
    }
  }

  public String logs() {
    StringBuilder s = new StringBuilder();
    for (Node n : nodes.values()) {
      for (String f : List.of("agent.log", "app.log")) {
        Path p = n.dir.resolve(f);
        try {
          if (Files.exists(p)) {
            List<String> lines = Files.readAllLines(p);
            s.append("---- ").append(n.name).append(' ').append(f).append('\n');
            lines.subList(Math.max(0, lines.size() - 60), lines.size()).forEach(l -> s.append(l).append('\n'));
          }
        } catch (IOException e) {
          s.append(e).append('\n');
        }
      }
    }
    return s.toString();
  }

  /** The agents bind their ports only once started: take ports no outgoing connection can take meanwhile. */
  private static int freePort() throws IOException {
    return LoopbackPorts.reserve();
  }

  @Override
  public void close() {
    for (Node n : nodes.values()) {
      try {
        killNode(n.name);
      } catch (Exception e) {
        // best effort
      }
    }
    if (witness != null) {
      witness.destroyForcibly();
    }
    for (Follower f : followers.values()) {
      if (f.agent != null) {
        f.agent.destroyForcibly();
        try {
          f.agent.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
    for (TcpProxy p : proxies) {
      p.close();
    }
  }
}
