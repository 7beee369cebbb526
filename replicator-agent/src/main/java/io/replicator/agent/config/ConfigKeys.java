package io.replicator.agent.config;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Every key the parser accepts, section by section. The parser rejects keys missing here and the
 * documentation test checks every key here against CONFIGURATION.md, so neither can drift.
 */
public final class ConfigKeys {
  static final List<String> TOP = List.of("cluster", "mode", "nodes", "witness",
      "preferred-primary", "timers", "failover", "split-brain-policy", "peer-loss-policy",
      "block-timeout", "resync", "application", "secret-file", "admin-token-file", "followers");
  static final List<String> NODE = List.of("address", "root", "admin", "agent-address", "extra-addresses");
  static final List<String> FOLLOWER = List.of("address", "root", "mode", "delay", "log-capacity", "admin",
      "bandwidth", "compression");
  static final List<String> WITNESS = List.of("address", "state-file");
  static final List<String> TIMERS = List.of("heartbeat", "peer-timeout", "connect-timeout", "ack-timeout");
  static final List<String> FAILOVER = List.of("automatic", "start-alone-after");
  static final List<String> RESYNC = List.of("rate");
  static final List<String> APPLICATION = List.of("start", "stop", "script-timeout",
      "restarts-before-failover", "checkers", "check-interval");
  /** Keys of one checker, by checker type; {@code type} is accepted by all. */
  static final Map<String, List<String>> CHECKER = Map.of(
      "process", List.of("type", "pidfile"),
      "tcp", List.of("type", "address", "timeout"),
      "command", List.of("type", "command", "timeout"));
  static final List<String> CHECKER_TYPES = List.of("process", "tcp", "command");

  private ConfigKeys() {}

  /**
   * The full path of every leaf key, as written in CONFIGURATION.md: node keys under
   * {@code nodes.<name>.}, follower keys under {@code followers.<name>.}, checker keys under {@code application.checkers[].}.
   */
  public static List<String> documentedKeys() {
    List<String> keys = new ArrayList<>();
    for (String top : TOP) {
      switch (top) {
        case "nodes" -> NODE.forEach(k -> keys.add("nodes.<name>." + k));
        case "followers" -> FOLLOWER.forEach(k -> keys.add("followers.<name>." + k));
        case "witness" -> WITNESS.forEach(k -> keys.add("witness." + k));
        case "timers" -> TIMERS.forEach(k -> keys.add("timers." + k));
        case "failover" -> FAILOVER.forEach(k -> keys.add("failover." + k));
        case "resync" -> RESYNC.forEach(k -> keys.add("resync." + k));
        case "application" -> {
          for (String k : APPLICATION) {
            if (k.equals("checkers")) {
              CHECKER_TYPES.forEach(type -> CHECKER.get(type).stream()
                  .map(c -> "application.checkers[]." + c)
                  .filter(c -> !keys.contains(c))
                  .forEach(keys::add));
            } else {
              keys.add("application." + k);
            }
          }
        }
        default -> keys.add(top);
      }
    }
    return List.copyOf(keys);
  }
}
