package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;

/** One health check of the application that the agent runs on the primary. */
public sealed interface Checker {

  /**
   * Healthy while the process whose id is in the pid file is alive.
   *
   * @param pidFile absolute path of the file that holds the process id
   */
  record ProcessChecker(Path pidFile) implements Checker {
    public ProcessChecker {
      requireNonNull(pidFile, "pidFile");
    }
  }

  /**
   * Healthy while a TCP connection to the address succeeds within the timeout.
   *
   * @param address the address to connect to, unresolved
   * @param timeout how long one connection attempt may take
   */
  record TcpChecker(InetSocketAddress address, Duration timeout) implements Checker {
    /** The timeout when {@code timeout} is left out. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(1);

    public TcpChecker {
      requireNonNull(address, "address");
      requireNonNull(timeout, "timeout");
    }
  }

  /**
   * Healthy while the command exits with status 0 within the timeout.
   *
   * @param command absolute path of the executable, run without a shell or arguments
   * @param timeout how long one run may take before it counts as failed
   */
  record CommandChecker(Path command, Duration timeout) implements Checker {
    /** The timeout when {@code timeout} is left out. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(5);

    public CommandChecker {
      requireNonNull(command, "command");
      requireNonNull(timeout, "timeout");
    }
  }
}
