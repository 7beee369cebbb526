package io.replicator.agent.cluster;

import io.replicator.agent.config.ApplicationConfig;
import io.replicator.agent.config.Checker;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the application's start and stop scripts with the role, data root and admin address in
 * their environment, and runs its checkers. A script that outlives its timeout is killed and
 * counts as failed.
 */
public final class ApplicationControl {
  private static final Logger log = LoggerFactory.getLogger(ApplicationControl.class);

  private final ApplicationConfig config;
  private final Map<String, String> environment;

  /** @param environment what every script and command checker gets in its environment */
  public ApplicationControl(ApplicationConfig config, Map<String, String> environment) {
    this.config = config;
    this.environment = Map.copyOf(environment);
  }

  /** Runs the start script, if one is configured; true when it exited 0 (or there is none). */
  public boolean start(String role) {
    return run("start", config.start(), role);
  }

  /** Runs the stop script, if one is configured; true when it exited 0 (or there is none). */
  public boolean stop(String role) {
    return run("stop", config.stop(), role);
  }

  public boolean hasStartScript() {
    return config.start().isPresent();
  }

  private boolean run(String what, Optional<Path> script, String role) {
    if (script.isEmpty()) {
      return true;
    }
    ProcessBuilder pb = new ProcessBuilder(script.get().toString()).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD);
    pb.environment().putAll(environment);
    pb.environment().put("REPLICATOR_ROLE", role);
    long t0 = System.nanoTime();
    try {
      Process p = pb.start();
      if (!p.waitFor(config.scriptTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        log.error("{} script {} did not finish within {} ms; killed", what, script.get(),
            config.scriptTimeout().toMillis());
        return false;
      }
      int code = p.exitValue();
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      if (code != 0) {
        log.error("{} script {} exited with {} after {} ms", what, script.get(), code, ms);
        return false;
      }
      log.info("{} script {} done in {} ms", what, script.get(), ms);
      return true;
    } catch (IOException e) {
      log.error("cannot run {} script {}: {}", what, script.get(), e.getMessage());
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** Runs every checker once; returns the first failure, or empty when all pass. */
  public Optional<String> check() {
    for (Checker c : config.checkers()) {
      Optional<String> failure = check(c);
      if (failure.isPresent()) {
        return failure;
      }
    }
    return Optional.empty();
  }

  private Optional<String> check(Checker c) {
    if (c instanceof Checker.ProcessChecker p) {
      try {
        String text = Files.readString(p.pidFile()).trim();
        long pid = Long.parseLong(text);
        boolean alive = ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        return alive ? Optional.empty() : Optional.of("process " + pid + " from " + p.pidFile() + " is not running");
      } catch (IOException | NumberFormatException e) {
        return Optional.of("cannot read pid file " + p.pidFile() + ": " + e.getMessage());
      }
    }
    if (c instanceof Checker.TcpChecker t) {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress(t.address().getHostString(), t.address().getPort()),
            (int) t.timeout().toMillis());
        return Optional.empty();
      } catch (IOException e) {
        return Optional.of("TCP " + t.address().getHostString() + ":" + t.address().getPort()
            + " does not answer: " + e.getMessage());
      }
    }
    if (c instanceof Checker.CommandChecker k) {
      ProcessBuilder pb = new ProcessBuilder(k.command().toString()).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD);
      pb.environment().putAll(environment);
      try {
        Process p = pb.start();
        if (!p.waitFor(k.timeout().toMillis(), TimeUnit.MILLISECONDS)) {
          p.destroyForcibly();
          return Optional.of("check " + k.command() + " did not finish within " + k.timeout().toMillis() + " ms");
        }
        return p.exitValue() == 0 ? Optional.empty()
            : Optional.of("check " + k.command() + " exited with " + p.exitValue());
      } catch (IOException e) {
        return Optional.of("cannot run check " + k.command() + ": " + e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return Optional.of("interrupted");
      }
    }
    return Optional.empty();
  }

  public Duration checkInterval() {
    return config.checkInterval();
  }

  public int restartsBeforeFailover() {
    return config.restartsBeforeFailover();
  }

  public boolean hasCheckers() {
    return !config.checkers().isEmpty();
  }
}
