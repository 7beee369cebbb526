package io.replicator.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code replicator} command: one subcommand per verb, exit codes 0 ok, 1 failure, 2 usage. */
@Command(name = "replicator", mixinStandardHelpOptions = true, versionProvider = ReplicatorCommand.Version.class,
    description = "Synchronous file-replication mirror for the JVM.",
    subcommands = {DemoCommand.class, CommandLine.HelpCommand.class})
public final class ReplicatorCommand implements Runnable {
  /** Exit code of a command that ran and found a failure (for example a verification). */
  public static final int EXIT_FAILURE = 1;
  /** Exit code of bad arguments. */
  public static final int EXIT_USAGE = 2;

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
  }

  /** Builds the configured command line: one-line errors, injectable output, usage exit code 2. */
  public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
    CommandLine cl = new CommandLine(new ReplicatorCommand());
    cl.setOut(out);
    cl.setErr(err);
    cl.setExitCodeExceptionMapper(e -> e instanceof CommandLine.ParameterException ? EXIT_USAGE : EXIT_FAILURE);
    cl.setParameterExceptionHandler((ex, args) -> {
      CommandLine c = ex.getCommandLine();
      c.getErr().println("replicator: " + ex.getMessage());
      c.getErr().println("Try '" + c.getCommandSpec().qualifiedName() + " --help' for more information.");
      return EXIT_USAGE;
    });
    cl.setExecutionExceptionHandler((ex, c, parseResult) -> {
      c.getErr().println("replicator: " + (ex.getMessage() != null ? ex.getMessage() : ex.toString()));
      if (System.getenv("REPLICATOR_DEBUG") != null) {
        ex.printStackTrace(c.getErr());
      }
      return EXIT_FAILURE;
    });
    return cl;
  }

  public static void main(String[] args) {
    PrintWriter out = new PrintWriter(System.out, true);
    PrintWriter err = new PrintWriter(System.err, true);
    int code = commandLine(out, err).execute(args);
    out.flush();
    err.flush();
    System.exit(code);
  }

  /** Reports the build's version from the jar manifest. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = ReplicatorCommand.class.getPackage().getImplementationVersion();
      return new String[] {"replicator " + (v != null ? v : "development build")};
    }
  }
}
