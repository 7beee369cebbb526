package io.replicator.cli;

/** Runs a manual role change and, when its split-brain guard refuses, tells how to override it. */
final class Guarded {
  private Guarded() {}

  static int run(Runnable operation, boolean forced) {
    try {
      operation.run();
      return ExitCodes.OK;
    } catch (CommandFailure e) {
      if (e.exitCode() == ExitCodes.SPLIT_BRAIN && !forced) {
        throw new CommandFailure(e.exitCode(), e.getMessage() + " (--force overrides this guard)", e);
      }
      throw e;
    }
  }
}
