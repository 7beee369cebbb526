package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import io.replicator.LinkCompression;
import io.replicator.ReplicationMode;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * One follower of the pair: a further copy fed by whichever node is primary, run by its own agent
 * ({@code replicator agent --node NAME}) and never promoted automatically.
 *
 * @param name the follower's name, the key under {@code followers}
 * @param address the replication address (host:port) the primary connects to, unresolved
 * @param root the absolute directory that holds the copy
 * @param mode how the primary feeds it
 * @param delay with {@link Mode#DELAYED}: how old a change must be before it is applied
 * @param logCapacity with {@link Mode#DELAYED}: the most disk the spill log may use, in bytes
 * @param admin the follower agent's admin HTTP address, unresolved
 * @param bandwidth the most bytes per second the primary sends it, 0 for no cap
 * @param compression whether its link compresses (both ends take it from this file)
 */
public record FollowerConfig(
    String name,
    InetSocketAddress address,
    Path root,
    Mode mode,
    Optional<Duration> delay,
    long logCapacity,
    InetSocketAddress admin,
    long bandwidth,
    LinkCompression compression) {

  /** How a follower is fed. DELAYED is fed ASYNC and applies changes only once older than the delay. */
  public enum Mode {
    SYNC, MEMORY, ASYNC, DELAYED;

    /** The primary's side of this mode. */
    public ReplicationMode replicationMode() {
      return this == DELAYED ? ReplicationMode.ASYNC : ReplicationMode.valueOf(name());
    }
  }

  /** A follower with no bandwidth cap and compression negotiated (off on loopback). */
  public FollowerConfig(String name, InetSocketAddress address, Path root, Mode mode, Optional<Duration> delay,
      long logCapacity, InetSocketAddress admin) {
    this(name, address, root, mode, delay, logCapacity, admin, 0, LinkCompression.AUTO);
  }

  public FollowerConfig {
    requireNonNull(name, "name");
    requireNonNull(address, "address");
    requireNonNull(root, "root");
    requireNonNull(mode, "mode");
    requireNonNull(delay, "delay");
    requireNonNull(admin, "admin");
    requireNonNull(compression, "compression");
    if (bandwidth < 0) {
      throw new IllegalArgumentException("negative bandwidth " + bandwidth);
    }
    if ((mode == Mode.DELAYED) != delay.isPresent()) {
      throw new IllegalArgumentException("a delay goes with DELAYED and only with it: " + mode + " " + delay);
    }
  }
}
