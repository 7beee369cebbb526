package io.replicator.cli;

import io.replicator.agent.config.AgentConfig;
import io.replicator.agent.config.BadConfigurationException;
import io.replicator.agent.config.FollowerConfig;
import io.replicator.cluster.AdminTokenFile;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * How a verb finds the local agent's admin endpoint and its token: {@code --admin}, or the node's
 * {@code admin} address in the pair's configuration file; {@code --token-file}, the
 * {@code REPLICATOR_ADMIN_TOKEN} variable, the configuration's {@code admin-token-file}, or the
 * token the local agent made for itself (found by the admin port, sent only to this machine).
 */
final class AdminOptions {
  static final String DEFAULT_ADMIN = "127.0.0.1:7480";
  static final String TOKEN_VARIABLE = "REPLICATOR_ADMIN_TOKEN";

  @Option(names = "--admin", paramLabel = "HOST:PORT", converter = HostPort.Converter.class,
      description = "The local agent's admin address (default: " + DEFAULT_ADMIN + ").")
  HostPort admin;

  @Option(names = "--config", paramLabel = "FILE",
      description = "Take the admin address (and admin-token-file) of this server's node from the pair's "
          + "configuration file instead.")
  Path config;

  @Option(names = "--node", paramLabel = "NAME",
      description = "With --config: this server's node or follower (default: the node matching the host name).")
  String node;

  @Option(names = "--token-file", paramLabel = "FILE",
      description = "File holding the admin token (default: $" + TOKEN_VARIABLE
          + ", else the configuration's admin-token-file, else the token the local agent made for itself in "
          + "~/.replicator/admin-PORT.token or $" + AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE
          + "). The token is never printed.")
  Path tokenFile;

  /**
   * The endpoint the options name.
   *
   * @throws CommandLine.ParameterException for contradictory options or an unusable token file
   * @throws BadConfigurationException when {@code --config} names a bad file or no node matches
   */
  AdminEndpoint resolve(CommandLine commandLine, Function<String, String> environment)
      throws BadConfigurationException {
    if (admin != null && config != null) {
      throw new CommandLine.ParameterException(commandLine, "--admin and --config are mutually exclusive");
    }
    if (node != null && config == null) {
      throw new CommandLine.ParameterException(commandLine, "--node needs --config");
    }
    HostPort address = admin != null ? admin : HostPort.parse(DEFAULT_ADMIN);
    Optional<Path> configuredTokenFile = Optional.empty();
    if (config != null) {
      AgentConfig loaded = AgentConfig.load(config);
      // --node may name a follower, whose agent has its own admin address
      Optional<FollowerConfig> follower = node == null ? Optional.empty() : loaded.follower(node);
      InetSocketAddress configured = follower.isPresent() ? follower.get().admin()
          : loaded.self(Optional.ofNullable(node), hostName(environment)).admin();
      address = new HostPort(configured.getHostString(), configured.getPort());
      configuredTokenFile = loaded.adminTokenFile();
    }
    return new AdminEndpoint(address, token(commandLine, environment, configuredTokenFile, address));
  }

  private Optional<String> token(CommandLine commandLine, Function<String, String> environment,
      Optional<Path> configuredTokenFile, HostPort address) {
    if (tokenFile != null) {
      return Optional.of(readToken(commandLine, tokenFile, "--token-file " + tokenFile));
    }
    String fromEnvironment = environment.apply(TOKEN_VARIABLE);
    if (fromEnvironment != null && !fromEnvironment.isBlank()) {
      return Optional.of(checked(commandLine, fromEnvironment.strip(), "$" + TOKEN_VARIABLE));
    }
    // The configured file is often readable only by the agent's user; reads on loopback need no
    // token, so an unreadable file is not an error here. An operation then answers 401 with a hint.
    if (configuredTokenFile.isPresent()) {
      return Files.isReadable(configuredTokenFile.get())
          ? Optional.of(readToken(commandLine, configuredTokenFile.get(), "admin-token-file " + configuredTokenFile.get()))
          : Optional.empty();
    }
    // No token configured: the agent made its own, which its user finds by the admin port.
    return AdminTokenFile.find(environment, InetSocketAddress.createUnresolved(address.host(), address.port()));
  }

  private static String readToken(CommandLine commandLine, Path file, String source) {
    String text;
    try {
      text = Files.readString(file);
    } catch (IOException e) {
      throw new CommandLine.ParameterException(commandLine, "cannot read " + source + ": "
          + (e.getMessage() != null ? e.getClass().getSimpleName() + " " + e.getMessage() : e.toString()));
    }
    return checked(commandLine, text.strip(), source);
  }

  /** Refuses a token an HTTP header cannot carry, naming where it came from but never its text. */
  private static String checked(CommandLine commandLine, String token, String source) {
    if (token.isEmpty()) {
      throw new CommandLine.ParameterException(commandLine, source + " is empty");
    }
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        throw new CommandLine.ParameterException(commandLine,
            "the token in " + source + " holds a space, control or non-ASCII character");
      }
    }
    return token;
  }

  /** This server's host name, as the agent matches it against the node names. */
  static String hostName(Function<String, String> environment) {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      String fromEnvironment = environment.apply("HOSTNAME");
      return fromEnvironment != null ? fromEnvironment : "localhost";
    }
  }
}
