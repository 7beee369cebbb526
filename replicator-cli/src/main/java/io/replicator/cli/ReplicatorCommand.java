package io.replicator.cli;

import io.replicator.agent.config.BadConfigurationException;
import java.io.PrintWriter;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code replicator} command: one subcommand per verb. Every error is one line on stderr and
 * an exit code from {@link ExitCodes}; stack traces only with {@code REPLICATOR_DEBUG} set.
 */
@Command(name = "replicator", mixinStandardHelpOptions = true, versionProvider = ReplicatorCommand.Version.class,
    description = "Synchronous file-replication mirror for the JVM.",
    subcommands = {AgentCommand.class, StatusCommand.class, SwapCommand.class, PromoteCommand.class,
        DemoteCommand.class, ResyncCommand.class, VerifyCommand.class, FollowerCommand.class, DemoCommand.class,
        CommandLine.HelpCommand.class})
public final class ReplicatorCommand implements Runnable {
  /** Exit code of a command that ran and found a failure (for example a verification). */
  public static final int EXIT_FAILURE = ExitCodes.FAILURE;
  /** Exit code of bad arguments or a bad configuration file. */
  public static final int EXIT_USAGE = ExitCodes.USAGE;

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  private final Function<String, String> environment;

  ReplicatorCommand(Function<String, String> environment) {
    this.environment = Objects.requireNonNull(environment, "environment");
  }

  /** Where the verbs read environment variables (the admin token); tests substitute it. */
  Function<String, String> environment() {
    return environment;
  }

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
  }

  /** Builds the configured command line: one-line errors, injectable output, documented exit codes. */
  public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
    return commandLine(out, err, System::getenv);
  }

  /** As {@link #commandLine(PrintWriter, PrintWriter)}, reading environment variables from {@code environment}. */
  static CommandLine commandLine(PrintWriter out, PrintWriter err, Function<String, String> environment) {
    CommandLine cl = new CommandLine(new ReplicatorCommand(environment));
    cl.setOut(out);
    cl.setErr(err);
    documentExitCodes(cl);
    // "-10w" looks like an option to picocli; as TIME it must reach the converter and its message
    cl.getSubcommands().get("follower").getSubcommands().get("apply-until").setUnmatchedOptionsArePositionalParams(true);
    cl.setExitCodeExceptionMapper(e -> e instanceof CommandLine.ParameterException ? EXIT_USAGE : EXIT_FAILURE);
    cl.setParameterExceptionHandler((ex, args) -> {
      CommandLine c = ex.getCommandLine();
      c.getErr().println("replicator: " + ex.getMessage());
      c.getErr().println("Try '" + c.getCommandSpec().qualifiedName() + " --help' for more information.");
      return EXIT_USAGE;
    });
    cl.setExecutionExceptionHandler((ex, c, parseResult) -> {
      int code;
      if (ex instanceof BadConfigurationException bad) {
        // Each line already names the file, line and key; a prefix would only push them right.
        bad.errors().forEach(c.getErr()::println);
        code = EXIT_USAGE;
      } else if (ex instanceof CommandFailure failure) {
        c.getErr().println("replicator: " + failure.getMessage());
        code = failure.exitCode();
      } else {
        c.getErr().println("replicator: " + (ex.getMessage() != null ? ex.getMessage() : ex.toString()));
        code = EXIT_FAILURE;
      }
      if (environment.apply("REPLICATOR_DEBUG") != null) {
        ex.printStackTrace(c.getErr());
      }
      c.getErr().flush();
      return code;
    });
    return cl;
  }

  /**
   * Puts the exit code table in {@code --help} of the top command and of every verb that talks to
   * an agent; the demo and the agent itself exit only with 0, 1 or 2.
   */
  private static void documentExitCodes(CommandLine top) {
    Map<String, String> exitCodes = ExitCodes.descriptions();
    Map<String, String> basic = ExitCodes.basicDescriptions();
    top.getCommandSpec().usageMessage().exitCodeListHeading("%nExit codes:%n").exitCodeList(exitCodes);
    for (CommandLine sub : top.getSubcommands().values()) {
      Object command = sub.getCommand();
      if (command instanceof CommandLine.HelpCommand) {
        continue;
      }
      sub.getCommandSpec().usageMessage().exitCodeListHeading("%nExit codes:%n")
          .exitCodeList(command instanceof AdminVerb || command instanceof FollowerCommand ? exitCodes : basic);
      for (CommandLine nested : sub.getSubcommands().values()) {
        nested.getCommandSpec().usageMessage().exitCodeListHeading("%nExit codes:%n").exitCodeList(exitCodes);
      }
    }
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
