package io.replicator.agent.admin;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import java.util.Optional;

/**
 * Who may call what on the admin endpoint: on loopback, reads are open and operations need the
 * token if one is configured; anywhere else everything needs the token, and there must be one.
 */
final class AccessPolicy {
  /** The outcome of checking a request's {@code Authorization} header. */
  enum Verdict { GRANTED, MISSING, INVALID }

  private static final String BEARER = "bearer ";

  private final boolean loopback;
  /** SHA-256 of the token, or null when none: comparing digests makes the time independent of length too. */
  private final byte[] tokenDigest;

  private AccessPolicy(boolean loopback, byte[] tokenDigest) {
    this.loopback = loopback;
    this.tokenDigest = tokenDigest;
  }

  /**
   * The policy for a server bound to {@code bind}.
   *
   * @throws IllegalArgumentException when the address is not loopback and there is no token, or
   *     the token is blank or holds characters an HTTP header cannot carry
   */
  static AccessPolicy forBind(InetSocketAddress bind, Optional<String> token) {
    if (bind.isUnresolved()) {
      throw new IllegalArgumentException("Admin address " + bind.getHostString() + " does not resolve");
    }
    boolean loopback = bind.getAddress().isLoopbackAddress();
    if (token.isPresent()) {
      validate(token.get());
    } else if (!loopback) {
      throw new IllegalArgumentException("Admin address " + bind.getAddress().getHostAddress()
          + " is not loopback: configure an admin token, or bind to 127.0.0.1 or ::1");
    }
    return new AccessPolicy(loopback, token.map(AccessPolicy::sha256).orElse(null));
  }

  /** Whether GET /status and /metrics need the token: only off loopback. */
  boolean readsNeedToken() {
    return !loopback;
  }

  /** Whether /ops/* need the token: whenever one is configured (always, off loopback). */
  boolean operationsNeedToken() {
    return tokenDigest != null || !loopback;
  }

  /** Checks an {@code Authorization} header value (null when absent) against the token. */
  Verdict check(String authorization) {
    if (authorization == null || authorization.isBlank()) {
      return Verdict.MISSING;
    }
    if (tokenDigest == null
        || authorization.length() <= BEARER.length()
        || !authorization.substring(0, BEARER.length()).toLowerCase(Locale.ROOT).equals(BEARER)) {
      return Verdict.INVALID;
    }
    byte[] presented = sha256(authorization.substring(BEARER.length()).trim());
    return MessageDigest.isEqual(presented, tokenDigest) ? Verdict.GRANTED : Verdict.INVALID;
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
