package io.replicator.cli;

import java.net.URI;
import java.util.Optional;

/**
 * The local agent's admin endpoint as resolved from the options: its address and the bearer token
 * to send, if any. {@link #toString()} never shows the token.
 */
record AdminEndpoint(HostPort address, Optional<String> token) {
  URI uri(String pathAndQuery) {
    return address.baseUri().resolve(pathAndQuery);
  }

  @Override
  public String toString() {
    return address + (token.isPresent() ? " (with token)" : "");
  }
}
