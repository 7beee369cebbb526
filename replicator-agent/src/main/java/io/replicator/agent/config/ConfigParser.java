package io.replicator.agent.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigOrigin;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigSyntax;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import io.replicator.PeerLossPolicy;
import io.replicator.ReplicationMode;
import io.replicator.SplitBrainPolicy;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Reads the HOCON file into an {@link AgentConfig}, checking every key, and reports all problems at
 * once. Only the file itself is read: no system properties or reference.conf, so that the same file
 * means the same thing on both servers.
 */
final class ConfigParser {
  static final Pattern NODE_NAME = Pattern.compile("[a-z0-9][a-z0-9-]*");
  static final InetSocketAddress DEFAULT_ADMIN = InetSocketAddress.createUnresolved("127.0.0.1", 7480);
  static final Duration DEFAULT_BLOCK_TIMEOUT = Duration.ofSeconds(10);
  /** As the library's follower names: they name directories under the primary's metadata. */
  static final Pattern FOLLOWER_NAME = Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}");
  static final long DEFAULT_LOG_CAPACITY = 10L << 30;
  /** The library refuses a smaller spill log. */
  static final long MIN_LOG_CAPACITY = 1L << 20;

  /** An address taken by a node or the witness, kept to find two that collide. */
  private record UsedAddress(String key, InetSocketAddress address, ConfigOrigin origin, int line) {}

  private final Path file;
  private final Problems problems;
  private final List<UsedAddress> usedAddresses = new ArrayList<>();

  private ConfigParser(Path file) {
    this.file = file;
    this.problems = new Problems(file.toString());
  }

  static AgentConfig parse(Path file) throws BadConfigurationException {
    return new ConfigParser(file).parse();
  }

  private AgentConfig parse() throws BadConfigurationException {
    if (!Files.isRegularFile(file)) {
      throw new BadConfigurationException(List.of(file + ": no such file"));
    }
    if (!Files.isReadable(file)) {
      throw new BadConfigurationException(List.of(file + ": not readable"));
    }
    Config config;
    try {
      // CONF whatever the file's extension: HOCON reads JSON too, and a ".cfg" file must not
      // fall back to another syntax.
      ConfigParseOptions options = ConfigParseOptions.defaults()
          .setSyntax(ConfigSyntax.CONF)
          .setAllowMissing(false);
      config = ConfigFactory.parseFile(file.toFile(), options).resolve();
    } catch (ConfigException e) {
      reportHoconError(e);
      throw new BadConfigurationException(problems.lines());
    }
    Section root = new Section(config.root(), "", problems, 1);
    AgentConfig parsed = read(root);
    if (problems.any()) {
      throw new BadConfigurationException(problems.lines());
    }
    return parsed;
  }

  /** Syntax and substitution errors, with the file and line HOCON found them at. */
  private void reportHoconError(ConfigException e) {
    ConfigOrigin origin = e.origin();
    String message = e.getMessage();
    if (origin != null && message.startsWith(origin.description() + ": ")) {
      message = message.substring(origin.description().length() + 2);
    }
    String where = origin != null && origin.filename() != null ? origin.filename() : file.toString();
    int line = origin != null && origin.lineNumber() > 0 ? origin.lineNumber() : 1;
    String kind = e instanceof ConfigException.UnresolvedSubstitution ? ""
        : e instanceof ConfigException.Parse ? "syntax error: " : "";
    problems.add(where, line, kind + message);
  }

  /** Reads every section; the result is only meaningful (and non-null) when no problem was found. */
  private AgentConfig read(Section root) {
    root.allowOnly(ConfigKeys.TOP, "");
    String cluster = root.requiredString("cluster", "the cluster's name");
    ReplicationMode mode = root.enumValue("mode", ReplicationMode.class, ReplicationMode.SYNC);
    List<NodeConfig> nodes = readNodes(root);
    Optional<WitnessConfig> witness = readWitness(root);
    List<FollowerConfig> followers = readFollowers(root, nodes);
    checkAddressesDistinct();
    checkFollowerAdmins(root, followers);
    Optional<String> preferredPrimary = root.string("preferred-primary");
    if (preferredPrimary.isPresent() && nodes != null
        && nodes.stream().noneMatch(n -> n.name().equals(preferredPrimary.get()))) {
      root.error("preferred-primary", Section.quote(preferredPrimary.get())
          + " is not a node (known nodes: " + names(nodes) + ")");
    }
    Timers timers = readTimers(root.section("timers"));
    Section failover = root.section("failover");
    failover.allowOnly(ConfigKeys.FAILOVER, "");
    boolean automaticFailover = failover.bool("automatic", true);
    Optional<Duration> startAloneAfter = failover.value("start-alone-after").isPresent()
        ? Optional.of(failover.duration("start-alone-after", Duration.ofSeconds(1)))
        : Optional.empty();
    SplitBrainPolicy splitBrainPolicy =
        root.enumValue("split-brain-policy", SplitBrainPolicy.class, SplitBrainPolicy.DISCONNECT);
    PeerLossPolicy peerLossPolicy =
        root.enumValue("peer-loss-policy", PeerLossPolicy.class, PeerLossPolicy.CONTINUE);
    Duration blockTimeout = root.duration("block-timeout", DEFAULT_BLOCK_TIMEOUT);
    Section resync = root.section("resync");
    resync.allowOnly(ConfigKeys.RESYNC, "");
    long resyncRate = resync.bytes("rate", 0);
    ApplicationConfig application = readApplication(root.section("application"));
    Optional<Path> secretFile = root.absolutePath("secret-file");
    Optional<Path> adminTokenFile = root.absolutePath("admin-token-file");
    if (problems.any()) {
      return null;
    }
    return new AgentConfig(file, cluster, mode, nodes, witness, preferredPrimary, timers,
        automaticFailover, startAloneAfter, splitBrainPolicy, peerLossPolicy, blockTimeout, resyncRate, application,
        secretFile, adminTokenFile, followers);
  }

  /** The followers in file order; each bad one is reported and left out. */
  private List<FollowerConfig> readFollowers(Section root, List<NodeConfig> nodes) {
    if (root.value("followers").isEmpty()) {
      return List.of();
    }
    Section followers = root.section("followers");
    List<String> names = followers.object().keySet().stream()
        .sorted(Comparator.comparingInt((String name) -> followers.object().get(name).origin().lineNumber())
            .thenComparing(Comparator.naturalOrder()))
        .toList();
    List<FollowerConfig> result = new ArrayList<>();
    for (String name : names) {
      if (!FOLLOWER_NAME.matcher(name).matches()) {
        followers.error(name, "follower name " + Section.quote(name)
            + " must be 1-64 letters, digits, '.', '_' or '-' and not start with '.'");
      } else if (nodes != null && nodes.stream().anyMatch(n -> n.name().equals(name))) {
        followers.error(name, "follower name " + Section.quote(name) + " is already the name of a node");
      }
      if (followers.object().get(name).valueType() != ConfigValueType.OBJECT) {
        followers.section(name);
        continue;
      }
      FollowerConfig follower = readFollower(name, followers.section(name));
      if (follower != null) {
        result.add(follower);
      }
    }
    return List.copyOf(result);
  }

  private FollowerConfig readFollower(String name, Section follower) {
    follower.allowOnly(ConfigKeys.FOLLOWER, "");
    int before = problems.count();
    InetSocketAddress address = follower.requiredAddress("address");
    if (address != null) {
      use(follower, "address", address);
    }
    Path root = follower.requiredAbsolutePath("root");
    FollowerConfig.Mode mode = follower.enumValue("mode", FollowerConfig.Mode.class, FollowerConfig.Mode.ASYNC);
    Optional<Duration> delay = Optional.empty();
    long logCapacity = DEFAULT_LOG_CAPACITY;
    if (mode == FollowerConfig.Mode.DELAYED) {
      if (follower.value("delay").isEmpty()) {
        follower.error("delay", "missing (required with mode = DELAYED: how old a change must be before it is "
            + "applied, e.g. 1h)");
      } else {
        delay = Optional.of(follower.duration("delay", Duration.ofHours(1)));
      }
      logCapacity = follower.bytes("log-capacity", DEFAULT_LOG_CAPACITY);
      if (logCapacity < MIN_LOG_CAPACITY) {
        follower.error("log-capacity", Section.render(follower.value("log-capacity").get())
            + " is below the smallest spill log, 1 MiB");
      }
    } else {
      for (String key : List.of("delay", "log-capacity")) {
        if (follower.value(key).isPresent()) {
          follower.error(key, "only allowed with mode = DELAYED (this follower's mode is " + mode + ")");
        }
      }
    }
    InetSocketAddress admin = follower.address("admin").orElse(DEFAULT_ADMIN);
    if (address != null && Addresses.same(address, admin)) {
      follower.error(follower.value("admin").isPresent() ? "admin" : "address",
          Section.quote(Addresses.format(admin)) + " is both the replication and the admin address of follower "
              + name);
    }
    long bandwidth = follower.bytes("bandwidth", 0);
    if (bandwidth < 0) {
      follower.error("bandwidth", "must not be negative");
    }
    io.replicator.LinkCompression compression = follower.enumValue("compression", io.replicator.LinkCompression.class,
        io.replicator.LinkCompression.AUTO);
    if (problems.count() != before || address == null || root == null) {
      return null;
    }
    return new FollowerConfig(name, address, root, mode, delay, logCapacity, admin, bandwidth, compression);
  }

  /** A follower agent's admin endpoint must not take an address a node, the witness or a follower replicates on. */
  private void checkFollowerAdmins(Section root, List<FollowerConfig> followers) {
    Section section = root.section("followers");
    for (FollowerConfig f : followers) {
      for (UsedAddress used : usedAddresses) {
        if (Addresses.same(used.address(), f.admin()) && !used.key().equals(section.fullKey(f.name()) + ".address")) {
          Section follower = section.section(f.name());
          follower.error(follower.value("admin").isPresent() ? "admin" : "address",
              Section.quote(Addresses.format(f.admin())) + " (the admin address of follower " + f.name()
                  + ") is already used by " + used.key());
          break;
        }
      }
    }
  }

  /** The two nodes in file order, or null when they cannot be read. */
  private List<NodeConfig> readNodes(Section root) {
    if (root.value("nodes").isEmpty()) {
      root.error("nodes", "missing (required: exactly two nodes, e.g. nodes { alpha { ... }, "
          + "beta { ... } })");
      return null;
    }
    Section nodes = root.section("nodes");
    // The object's key set has no order; the file's order is what an operator expects.
    List<String> names = nodes.object().keySet().stream()
        .sorted(Comparator.comparingInt((String name) -> nodes.object().get(name).origin().lineNumber())
            .thenComparing(Comparator.naturalOrder()))
        .toList();
    if (root.value("nodes").get().valueType() == ConfigValueType.OBJECT && names.size() != 2) {
      root.error("nodes", "expected exactly two nodes, found " + names.size()
          + (names.isEmpty() ? "" : " (" + String.join(", ", names) + ")"));
    }
    List<NodeConfig> result = new ArrayList<>();
    for (String name : names) {
      if (!NODE_NAME.matcher(name).matches()) {
        nodes.error(name, "node name " + Section.quote(name)
            + " must match [a-z0-9][a-z0-9-]* (lower-case letters, digits and '-')");
      }
      NodeConfig node = readNode(name, nodes.section(name));
      if (node != null) {
        result.add(node);
      }
    }
    return result.size() == 2 && names.size() == 2 ? List.copyOf(result) : null;
  }

  private NodeConfig readNode(String name, Section node) {
    node.allowOnly(ConfigKeys.NODE, "");
    InetSocketAddress address = node.requiredAddress("address");
    if (address != null) {
      use(node, "address", address);
    }
    Path root = node.requiredAbsolutePath("root");
    InetSocketAddress admin = node.address("admin").orElse(DEFAULT_ADMIN);
    if (address != null && Addresses.same(address, admin)) {
      node.error(node.value("admin").isPresent() ? "admin" : "address",
          Section.quote(Addresses.format(admin)) + " is both the replication and the admin "
              + "address of node " + name);
    }
    InetSocketAddress agentAddress = node.address("agent-address").orElse(null);
    if (agentAddress == null && address != null) {
      if (address.getPort() == 65535) {
        node.error("address", "port 65535 leaves no room for the default agent-address (port + 1); set agent-address");
      } else {
        agentAddress = InetSocketAddress.createUnresolved(address.getHostString(), address.getPort() + 1);
      }
    }
    if (agentAddress != null) {
      if (address != null && Addresses.same(address, agentAddress)) {
        node.error("agent-address", Section.quote(Addresses.format(agentAddress))
            + " is both the replication and the agent address of node " + name);
      } else if (Addresses.same(agentAddress, admin)) {
        node.error(node.value("agent-address").isPresent() ? "agent-address" : "admin",
            Section.quote(Addresses.format(agentAddress)) + " is both the agent and the admin address of node " + name);
      } else {
        ConfigOrigin origin = node.value("agent-address").or(() -> node.value("address"))
            .map(ConfigValue::origin).orElse(node.origin());
        usedAddresses.add(new UsedAddress(node.fullKey("agent-address") + (node.value("agent-address").isPresent()
            ? "" : DERIVED), agentAddress, origin, node.line()));
      }
    }
    List<InetSocketAddress> extra = new ArrayList<>();
    List<ConfigValue> elements = node.list("extra-addresses");
    for (int i = 0; i < elements.size(); i++) {
      ConfigValue element = elements.get(i);
      if (element.valueType() != ConfigValueType.STRING) {
        node.elementError("extra-addresses", i, element,
            "expected a string \"host:port\", found " + Section.describe(element));
        continue;
      }
      try {
        InetSocketAddress parsed = Addresses.parse((String) element.unwrapped());
        extra.add(parsed);
        usedAddresses.add(new UsedAddress(node.fullKey("extra-addresses") + "[" + i + "]",
            parsed, element.origin(), node.line()));
      } catch (IllegalArgumentException e) {
        node.elementError("extra-addresses", i, element, e.getMessage());
      }
    }
    if (address == null || root == null || agentAddress == null) {
      return null;
    }
    return new NodeConfig(name, address, root, admin, extra, agentAddress);
  }

  private Optional<WitnessConfig> readWitness(Section root) {
    if (root.value("witness").isEmpty()) {
      return Optional.empty();
    }
    Section witness = root.section("witness");
    witness.allowOnly(ConfigKeys.WITNESS, "");
    InetSocketAddress address = witness.requiredAddress("address");
    if (address == null) {
      return Optional.empty();
    }
    use(witness, "address", address);
    Optional<Path> stateFile = witness.absolutePath("state-file");
    String cluster = root.string("cluster").orElse("cluster");
    return Optional.of(new WitnessConfig(address, stateFile.orElse(
        file.toAbsolutePath().getParent().resolve("witness-" + cluster + ".state"))));
  }

  private static final String DERIVED = " (the default, port of address + 1)";

  private void use(Section section, String key, InetSocketAddress address) {
    ConfigOrigin origin = section.value(key).map(ConfigValue::origin).orElse(section.origin());
    usedAddresses.add(new UsedAddress(section.fullKey(key), address, origin, section.line()));
  }

  /**
   * Two nodes (or a node and the witness) at one address would each reach themselves instead of
   * their peer; report the later one, pointing at the first.
   */
  private void checkAddressesDistinct() {
    for (int later = 1; later < usedAddresses.size(); later++) {
      UsedAddress second = usedAddresses.get(later);
      for (int earlier = 0; earlier < later; earlier++) {
        UsedAddress first = usedAddresses.get(earlier);
        if (first.key().endsWith(DERIVED) && second.key().endsWith(DERIVED)) {
          continue; // two derived agent addresses collide only when the addresses do: reported already
        }
        if (Addresses.same(first.address(), second.address())) {
          problems.add(second.origin(), second.line(), second.key(),
              Section.quote(Addresses.format(second.address())) + " is already used by "
                  + first.key());
          break;
        }
      }
    }
  }

  private Timers readTimers(Section timers) {
    timers.allowOnly(ConfigKeys.TIMERS, "");
    int before = problems.count();
    Duration heartbeat = timers.duration("heartbeat", Timers.DEFAULTS.heartbeat());
    Duration peerTimeout = timers.duration("peer-timeout", Timers.DEFAULTS.peerTimeout());
    Duration connectTimeout = timers.duration("connect-timeout", Timers.DEFAULTS.connectTimeout());
    Duration ackTimeout = timers.duration("ack-timeout", Timers.DEFAULTS.ackTimeout());
    if (problems.count() == before && ackTimeout.compareTo(Duration.ofMillis(100)) < 0) {
      timers.error("ack-timeout", "ack-timeout (" + human(ackTimeout) + ") must be at least 100ms");
      return null;
    }
    // Compare only values that were read without error, or a default would be blamed.
    if (problems.count() == before && peerTimeout.compareTo(heartbeat) <= 0) {
      timers.error(timers.value("peer-timeout").isPresent() ? "peer-timeout" : "heartbeat",
          "peer-timeout (" + human(peerTimeout) + ") must be longer than heartbeat ("
              + human(heartbeat) + ")");
      return null;
    }
    return problems.count() == before ? new Timers(heartbeat, peerTimeout, connectTimeout, ackTimeout) : null;
  }

  private ApplicationConfig readApplication(Section app) {
    app.allowOnly(ConfigKeys.APPLICATION, "");
    ApplicationConfig defaults = ApplicationConfig.DEFAULTS;
    Optional<Path> start = app.absolutePath("start");
    Optional<Path> stop = app.absolutePath("stop");
    Duration scriptTimeout = app.duration("script-timeout", defaults.scriptTimeout());
    int restarts = app.integer("restarts-before-failover", 0, defaults.restartsBeforeFailover());
    Duration checkInterval = app.duration("check-interval", defaults.checkInterval());
    List<Checker> checkers = new ArrayList<>();
    List<ConfigValue> elements = app.list("checkers");
    for (int i = 0; i < elements.size(); i++) {
      ConfigValue element = elements.get(i);
      if (element.valueType() != ConfigValueType.OBJECT) {
        app.elementError("checkers", i, element,
            "expected an object { type = ... }, found " + Section.describe(element));
        continue;
      }
      Checker checker = readChecker(app.element("checkers", i, (ConfigObject) element));
      if (checker != null) {
        checkers.add(checker);
      }
    }
    return new ApplicationConfig(start, stop, scriptTimeout, restarts, checkers, checkInterval);
  }

  private Checker readChecker(Section checker) {
    String types = String.join(", ", ConfigKeys.CHECKER_TYPES);
    if (checker.value("type").isEmpty()) {
      checker.error("type", "missing (required: one of " + types + ")");
      return null;
    }
    String type = checker.string("type").map(t -> t.trim().toLowerCase(Locale.ROOT)).orElse(null);
    if (type == null) {
      return null;
    }
    if (!ConfigKeys.CHECKER_TYPES.contains(type)) {
      checker.error("type", Section.render(checker.value("type").get()) + " is not one of " + types);
      return null;
    }
    List<String> keys = ConfigKeys.CHECKER.get(type);
    checker.allowOnly(keys, " for a " + type + " checker (it takes " + String.join(", ", keys) + ")");
    switch (type) {
      case "process" -> {
        Path pidFile = checker.requiredAbsolutePath("pidfile");
        return pidFile == null ? null : new Checker.ProcessChecker(pidFile);
      }
      case "tcp" -> {
        InetSocketAddress address = checker.requiredAddress("address");
        Duration timeout = checker.duration("timeout", Checker.TcpChecker.DEFAULT_TIMEOUT);
        return address == null ? null : new Checker.TcpChecker(address, timeout);
      }
      default -> {
        Path command = checker.requiredAbsolutePath("command");
        Duration timeout = checker.duration("timeout", Checker.CommandChecker.DEFAULT_TIMEOUT);
        return command == null ? null : new Checker.CommandChecker(command, timeout);
      }
    }
  }

  static String names(List<NodeConfig> nodes) {
    return String.join(", ", nodes.stream().map(NodeConfig::name).toList());
  }

  /** A duration as an operator would write it: 500ms, 3s, 2m. */
  static String human(Duration duration) {
    long millis = duration.toMillis();
    if (millis % 60_000 == 0) {
      return millis / 60_000 + "m";
    }
    return millis % 1000 == 0 ? millis / 1000 + "s" : millis + "ms";
  }
}
