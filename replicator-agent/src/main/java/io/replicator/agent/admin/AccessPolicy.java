package io.replicator.agent.admin;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collections;
import java.util.HashSet;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/**
 * Who may call what on the admin endpoint, and from where. Every operation needs the token, which
 * always exists (the agent makes one when none is configured). Reads need it too off loopback.
 *
 * <p>A browser is a client too, and a hostile page in it must get nothing: a request whose
 * {@code Host} is not one of this endpoint's own names is refused (a page served through DNS
 * rebinding carries its own domain there), and so is a request from another origin ({@code Origin}
 * not this endpoint, or {@code Sec-Fetch-Site} other than {@code same-origin} or {@code none}).
 * Only a top-level navigation to the console page itself may come from elsewhere (a link or a
 * bookmark): the page holds no data and cannot be framed. No CORS header is ever sent, no cookie
 * ever set.
 */
final class AccessPolicy {
  /** The outcome of checking a request's {@code Authorization} header. */
  enum Verdict { GRANTED, MISSING, INVALID }

  private static final String BEARER = "bearer ";

  private final boolean loopback;
  /** SHA-256 of the token: comparing digests makes the time independent of length too. */
  private final byte[] tokenDigest;
  /** Host names (lower case, IPv6 in brackets) that name this endpoint. */
  private final Set<String> ownNames;
  /** Names that reach this endpoint through loopback; with them any port is accepted (an SSH tunnel). */
  private final Set<String> loopbackNames;
  private final int port;

  private AccessPolicy(boolean loopback, byte[] tokenDigest, Set<String> ownNames, Set<String> loopbackNames,
      int port) {
    this.loopback = loopback;
    this.tokenDigest = tokenDigest;
    this.ownNames = ownNames;
    this.loopbackNames = loopbackNames;
    this.port = port;
  }

  /**
   * The policy for a server bound to {@code bind} (its host string, as configured, is one of the
   * names a browser may use for it).
   *
   * @throws IllegalArgumentException when the token is blank or holds characters an HTTP header
   *     cannot carry, or the address does not resolve
   */
  static AccessPolicy forBind(InetSocketAddress bind, String token) {
    Objects.requireNonNull(token, "token");
    if (bind.isUnresolved()) {
      throw new IllegalArgumentException("Admin address " + bind.getHostString() + " does not resolve");
    }
    validate(token);
    InetAddress address = bind.getAddress();
    boolean loopback = address.isLoopbackAddress();
    Set<String> loopbackNames = new HashSet<>();
    Set<String> own = new HashSet<>();
    if (loopback || address.isAnyLocalAddress()) {
      loopbackNames.addAll(Set.of("localhost", "127.0.0.1", "[0:0:0:0:0:0:0:1]"));
      loopbackNames.add(literal(address));
    }
    own.add(bind.getHostString().toLowerCase(Locale.ROOT));
    own.add(literal(address));
    if (address.isAnyLocalAddress()) {
      // Listening everywhere: every address of this machine, and its name, reach it.
      own.addAll(interfaceLiterals());
      try {
        InetAddress local = InetAddress.getLocalHost();
        own.add(local.getHostName().toLowerCase(Locale.ROOT));
        own.add(local.getCanonicalHostName().toLowerCase(Locale.ROOT));
      } catch (java.io.IOException e) {
        // no name for this machine: its addresses still work
      }
    }
    own.addAll(loopbackNames);
    own.remove("");
    return new AccessPolicy(loopback, sha256(token), Set.copyOf(own), Set.copyOf(loopbackNames), bind.getPort());
  }

  /** Whether GET of the data (status, metrics, events, samples) needs the token: only off loopback. */
  boolean readsNeedToken() {
    return !loopback;
  }

  /** Checks an {@code Authorization} header value (null when absent) against the token. */
  Verdict check(String authorization) {
    if (authorization == null || authorization.isBlank()) {
      return Verdict.MISSING;
    }
    if (authorization.length() <= BEARER.length()
        || !authorization.substring(0, BEARER.length()).toLowerCase(Locale.ROOT).equals(BEARER)) {
      return Verdict.INVALID;
    }
    byte[] presented = sha256(authorization.substring(BEARER.length()).trim());
    return MessageDigest.isEqual(presented, tokenDigest) ? Verdict.GRANTED : Verdict.INVALID;
  }

  /**
   * Why a request may not be served from where it comes, or null when it may.
   *
   * @param host the {@code Host} header, or null (HTTP/1.0 clients; no browser omits it)
   * @param origin the {@code Origin} header, or null
   * @param fetchSite the {@code Sec-Fetch-Site} header, or null (clients other than browsers)
   * @param pageNavigation whether this is a top-level navigation to the console page
   */
  String refusal(String host, String origin, String fetchSite, boolean pageNavigation) {
    if (host != null && !isOwn(host)) {
      return "Host is not this endpoint's address";
    }
    if (pageNavigation) {
      return null;
    }
    if (origin != null && !sameOrigin(origin, host)) {
      return "cross-origin request";
    }
    if (fetchSite != null) {
      String site = fetchSite.trim().toLowerCase(Locale.ROOT);
      if (!site.equals("same-origin") && !site.equals("none")) {
        return "cross-origin request (Sec-Fetch-Site " + AdminHttpHandler.printable(site) + ")";
      }
    }
    return null;
  }

  /** Whether a {@code Host} value ({@code name[:port]}) names this endpoint. */
  boolean isOwn(String host) {
    HostAndPort h = HostAndPort.parse(host);
    if (h == null) {
      return false;
    }
    if (loopbackNames.contains(h.name())) {
      return true;
    }
    return ownNames.contains(h.name()) && (h.port() < 0 || port == 0 || h.port() == port);
  }

  /** An origin is ours when it is {@code http://} and the very host the request was sent to. */
  private boolean sameOrigin(String origin, String host) {
    if (host == null) {
      return false;
    }
    try {
      URI uri = new URI(origin.trim());
      if (!"http".equalsIgnoreCase(uri.getScheme()) || uri.getRawAuthority() == null
          || uri.getRawPath() != null && !uri.getRawPath().isEmpty()) {
        return false;
      }
      HostAndPort o = HostAndPort.parse(uri.getRawAuthority());
      HostAndPort h = HostAndPort.parse(host);
      return o != null && h != null && o.name().equals(h.name()) && o.effectivePort() == h.effectivePort();
    } catch (URISyntaxException e) {
      return false;
    }
  }

  /** A {@code Host} or authority, lower case; IPv6 in brackets; port -1 when absent. */
  record HostAndPort(String name, int port) {
    int effectivePort() {
      return port < 0 ? 80 : port;
    }

    static HostAndPort parse(String text) {
      String t = text.trim().toLowerCase(Locale.ROOT);
      if (t.isEmpty() || t.contains("@") || t.contains("/")) {
        return null;
      }
      String name;
      String rest;
      if (t.startsWith("[")) {
        int close = t.indexOf(']');
        if (close < 0) {
          return null;
        }
        name = t.substring(0, close + 1);
        rest = t.substring(close + 1);
      } else {
        int colon = t.indexOf(':');
        name = colon < 0 ? t : t.substring(0, colon);
        rest = colon < 0 ? "" : t.substring(colon);
      }
      if (name.isEmpty() || name.equals("[]")) {
        return null;
      }
      name = normalized(name);
      if (rest.isEmpty()) {
        return new HostAndPort(name, -1);
      }
      if (!rest.startsWith(":") || rest.length() == 1 || rest.length() > 6) {
        return null;
      }
      for (int i = 1; i < rest.length(); i++) {
        if (!Character.isDigit(rest.charAt(i))) {
          return null;
        }
      }
      int p = Integer.parseInt(rest.substring(1));
      return p > 65535 ? null : new HostAndPort(name, p);
    }
  }

  /** An address as a {@code Host} header names it: IPv6 in brackets, in the JDK's long form, without zone. */
  private static String literal(InetAddress address) {
    String a = address.getHostAddress();
    int zone = a.indexOf('%');
    if (zone >= 0) {
      a = a.substring(0, zone);
    }
    return a.contains(":") ? "[" + a.toLowerCase(Locale.ROOT) + "]" : a;
  }

  /** A bracketed IPv6 literal in the same long form as {@link #literal}; other names unchanged. */
  private static String normalized(String name) {
    if (!name.startsWith("[")) {
      return name;
    }
    String inner = name.substring(1, name.length() - 1);
    int zone = inner.indexOf('%');
    if (zone >= 0) {
      inner = inner.substring(0, zone);
    }
    if (!inner.matches("[0-9a-f:.]+")) {
      return name;
    }
    try {
      // a literal: parsed, never looked up
      return literal(InetAddress.getByName(inner));
    } catch (java.io.IOException e) {
      return name;
    }
  }

  private static Set<String> interfaceLiterals() {
    Set<String> out = new HashSet<>();
    try {
      for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        for (InetAddress a : Collections.list(nic.getInetAddresses())) {
          out.add(literal(a));
        }
      }
    } catch (SocketException e) {
      // no interfaces listed: loopback names and the configured one still work
    }
    return out;
  }

  private static void validate(String token) {
    if (token.isEmpty()) {
      throw new IllegalArgumentException("Admin token is empty");
    }
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      // Visible ASCII only: what a bearer header carries without quoting (the message never shows the token).
      if (c < 0x21 || c > 0x7e) {
        throw new IllegalArgumentException("Admin token holds a space, control or non-ASCII character at index " + i);
      }
    }
  }

  private static byte[] sha256(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("Every JDK has SHA-256", e);
    }
  }
}
