package io.replicator.agent.pair;

import java.lang.reflect.Method;
import java.util.Arrays;

/**
 * Runs a main class in a process the tests start, and halts that process when the test JVM is
 * gone. A test JVM that is killed (a fork timeout, {@code kill -9}) runs no cleanup, and agents or
 * applications it started would otherwise live on, holding ports and disk.
 *
 * <p>Arguments: {@code TEST_JVM_PID MAIN_CLASS ARGS...}.
 */
public final class ParentWatch {
  private ParentWatch() {}

  public static void main(String[] args) throws Throwable {
    long parent = Long.parseLong(args[0]);
    Thread watch = new Thread(() -> {
      ProcessHandle.of(parent).ifPresent(h -> h.onExit().join());
      System.err.println("test JVM " + parent + " is gone: halting");
      Runtime.getRuntime().halt(137);
    }, "parent-watch");
    watch.setDaemon(true);
    watch.start();
    Method main = Class.forName(args[1]).getMethod("main", String[].class);
    main.invoke(null, (Object) Arrays.copyOfRange(args, 2, args.length));
  }
}
