package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import java.net.InetSocketAddress;

/**
 * The optional third voter: it holds no data and only breaks ties, so that the pair can fail over
 * automatically without risking split brain.
 *
 * @param address the witness's address (host:port), unresolved
 */
public record WitnessConfig(InetSocketAddress address) {

  public WitnessConfig {
    requireNonNull(address, "address");
  }
}
