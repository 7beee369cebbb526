package io.replicator.cli;

import java.net.URI;
import java.util.regex.Pattern;
import picocli.CommandLine;

/**
 * An admin address as an operator writes it: {@code host:port} or {@code [ipv6]:port}. A wildcard
 * host (the agent listening on every interface) is reached through loopback.
 */
record HostPort(String host, int port) {
  private static final Pattern HOST_NAME = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?");
  private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]+");

  /**
   * Parses {@code text}.
   *
   * @throws IllegalArgumentException with a message that says what is wrong and what is expected
   */
  static HostPort parse(String text) {
    String trimmed = text.trim();
    String host;
    String port;
    if (trimmed.startsWith("[")) {
      int close = trimmed.indexOf(']');
      if (close < 0 || !trimmed.startsWith(":", close + 1) || close + 2 >= trimmed.length()) {
        throw new IllegalArgumentException("'" + text + "' is not [ipv6]:port (for example [::1]:7480)");
      }
      host = trimmed.substring(1, close);
      port = trimmed.substring(close + 2);
      if (!IPV6.matcher(host).matches()) {
        throw new IllegalArgumentException("'" + text + "' has an invalid IPv6 address");
      }
    } else {
      int colon = trimmed.lastIndexOf(':');
      if (colon <= 0 || colon == trimmed.length() - 1 || trimmed.indexOf(':') != colon) {
        throw new IllegalArgumentException("'" + text + "' is not host:port (for example 127.0.0.1:7480)");
      }
      host = trimmed.substring(0, colon);
      port = trimmed.substring(colon + 1);
      if (!HOST_NAME.matcher(host).matches()) {
        throw new IllegalArgumentException("'" + text + "' has an invalid host name");
      }
    }
    if (port.isEmpty() || port.length() > 5 || !port.chars().allMatch(c -> c >= '0' && c <= '9')
        || Integer.parseInt(port) < 1 || Integer.parseInt(port) > 65535) {
      throw new IllegalArgumentException("'" + text + "' has a port that is not in 1..65535");
    }
    return new HostPort(host, Integer.parseInt(port));
  }

  /** The base URI of the admin endpoint at this address. */
  URI baseUri() {
    String target = switch (host) {
      case "0.0.0.0" -> "127.0.0.1";
      case "::", "0:0:0:0:0:0:0:0" -> "[::1]";
      default -> host.contains(":") ? "[" + host + "]" : host;
    };
    return URI.create("http://" + target + ":" + port);
  }

  @Override
  public String toString() {
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
  }

  /** Lets picocli report a malformed {@code --admin} as a usage error naming the option. */
  static final class Converter implements CommandLine.ITypeConverter<HostPort> {
    @Override
    public HostPort convert(String value) {
      try {
        return parse(value);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }
}
