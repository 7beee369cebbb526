package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * The optional third voter: it holds no data and only breaks ties, so that the pair can fail over
 * automatically without risking split brain.
 *
 * @param address the witness's address (host:port), unresolved
 * @param stateFile where the witness keeps what it must not forget (epochs, the primary, which node
 *     is outdated); beside the configuration file unless set
 */
public record WitnessConfig(InetSocketAddress address, Path stateFile) {

  public WitnessConfig {
    requireNonNull(address, "address");
    requireNonNull(stateFile, "stateFile");
  }
}
