package io.replicator.cli;

import java.util.LinkedHashMap;
import java.util.Map;

/** The process exit codes of {@code replicator}, stable for scripts, and their {@code --help} text. */
final class ExitCodes {
  static final int OK = 0;
  /** The command ran and failed, or found a failure (for example a verify that found differences). */
  static final int FAILURE = 1;
  /** Bad arguments or a bad configuration file. */
  static final int USAGE = 2;
  /** The local agent's admin endpoint could not be reached. */
  static final int AGENT_UNREACHABLE = 3;
  /** The agent refused because it cannot reach the other node. */
  static final int PEER_UNREACHABLE = 4;
  /** The agent refused because the operation would serve or create a split brain. */
  static final int SPLIT_BRAIN = 5;
  /** The agent refused the operation in its current state. */
  static final int REFUSED = 6;
  /** The agent wants an admin token, or a different one. */
  static final int UNAUTHORIZED = 7;

  private ExitCodes() {}

  /** The table {@code --help} shows, in code order. */
  static Map<String, String> descriptions() {
    Map<String, String> codes = new LinkedHashMap<>();
    codes.put(OK + "", "ok");
    codes.put(FAILURE + "", "failure (the operation failed, or verify found differences)");
    codes.put(USAGE + "", "usage: bad arguments or a bad configuration file");
    codes.put(AGENT_UNREACHABLE + "", "agent unreachable: cannot connect to the admin endpoint");
    codes.put(PEER_UNREACHABLE + "", "peer unreachable: the other node cannot be reached");
    codes.put(SPLIT_BRAIN + "", "split brain: refused, it would serve or create a split brain");
    codes.put(REFUSED + "", "refused in the node's current state");
    codes.put(UNAUTHORIZED + "", "unauthorized: missing or wrong admin token");
    return codes;
  }

  /** The table of a command that does not talk to an agent: it ends well, fails, or was misused. */
  static Map<String, String> basicDescriptions() {
    Map<String, String> codes = new LinkedHashMap<>();
    codes.put(OK + "", "ok");
    codes.put(FAILURE + "", "failure");
    codes.put(USAGE + "", "usage: bad arguments or a bad configuration file");
    return codes;
  }
}
