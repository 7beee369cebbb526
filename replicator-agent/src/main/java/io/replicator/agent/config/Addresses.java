package io.replicator.agent.config;

import com.typesafe.config.ConfigUtil;
import java.net.InetSocketAddress;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Parses "host:port" and "[ipv6]:port" into unresolved socket addresses. Names are not resolved
 * here: the file must load the same way on both servers, whatever their DNS says at the time.
 */
final class Addresses {
  private static final Pattern HOST_NAME = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?");
  private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]+(%[A-Za-z0-9]+)?");

  private Addresses() {}

  /**
   * The address written as {@code host:port}.
   *
   * @throws IllegalArgumentException with a message fit for an operator when the text is malformed
   */
  static InetSocketAddress parse(String text) {
    String quoted = ConfigUtil.quoteString(text);
    String trimmed = text.trim();
    String host;
    String port;
    if (trimmed.startsWith("[")) {
      int close = trimmed.indexOf(']');
      if (close < 0) {
        throw new IllegalArgumentException(quoted + " has no closing ']' (expected [ipv6]:port)");
      }
      host = trimmed.substring(1, close);
      String rest = trimmed.substring(close + 1);
      if (!rest.startsWith(":") || rest.length() == 1) {
        throw new IllegalArgumentException(quoted + " has no port (expected [ipv6]:port)");
      }
      port = rest.substring(1);
      if (!IPV6.matcher(host).matches()) {
        throw new IllegalArgumentException(quoted + " has an invalid IPv6 address");
      }
    } else {
      int colon = trimmed.lastIndexOf(':');
      if (colon < 0 || colon == trimmed.length() - 1) {
        throw new IllegalArgumentException(quoted + " has no port (expected host:port)");
      }
      if (trimmed.indexOf(':') != colon) {
        throw new IllegalArgumentException(
            quoted + " has several ':' (write an IPv6 address in brackets: [::1]:7400)");
      }
      host = trimmed.substring(0, colon);
      port = trimmed.substring(colon + 1);
      if (host.isEmpty()) {
        throw new IllegalArgumentException(quoted + " has no host (expected host:port)");
      }
      if (!HOST_NAME.matcher(host).matches()) {
        throw new IllegalArgumentException(quoted + " has an invalid host name");
      }
    }
    if (!port.chars().allMatch(c -> c >= '0' && c <= '9') || port.length() > 9) {
      throw new IllegalArgumentException(
          quoted + " has a port that is not a number (expected host:port)");
    }
    int number = Integer.parseInt(port);
    if (number < 1 || number > 65535) {
      throw new IllegalArgumentException(
          "port " + number + " in " + quoted + " is not in 1..65535");
    }
    return InetSocketAddress.createUnresolved(host, number);
  }

  /** Whether two addresses name the same host (ignoring case) and port. */
  static boolean same(InetSocketAddress a, InetSocketAddress b) {
    return a.getPort() == b.getPort()
        && a.getHostString().toLowerCase(Locale.ROOT).equals(b.getHostString().toLowerCase(Locale.ROOT));
  }

  /** The address as host:port, with brackets around IPv6 hosts. */
  static String format(InetSocketAddress address) {
    String host = address.getHostString();
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + address.getPort();
  }
}
