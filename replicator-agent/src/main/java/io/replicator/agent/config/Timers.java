package io.replicator.agent.config;

import static java.util.Objects.requireNonNull;

import java.time.Duration;

/**
 * How often the nodes check on each other and how long they wait before giving up on the peer.
 *
 * @param heartbeat the interval between heartbeats
 * @param peerTimeout silence after which the peer counts as lost; longer than {@code heartbeat}
 * @param connectTimeout how long one connection attempt to the peer may take
 * @param ackTimeout how long the primary waits for the secondary to acknowledge a change on a live
 *     link before it drops the link (a secondary whose disk hangs)
 */
public record Timers(Duration heartbeat, Duration peerTimeout, Duration connectTimeout, Duration ackTimeout) {

  /** The values used for keys left out of {@code timers}. */
  public static final Timers DEFAULTS =
      new Timers(Duration.ofMillis(500), Duration.ofSeconds(3), Duration.ofSeconds(5), Duration.ofSeconds(30));

  public Timers {
    requireNonNull(heartbeat, "heartbeat");
    requireNonNull(peerTimeout, "peerTimeout");
    requireNonNull(connectTimeout, "connectTimeout");
    requireNonNull(ackTimeout, "ackTimeout");
    if (ackTimeout.compareTo(Duration.ofMillis(100)) < 0) {
      throw new IllegalArgumentException("ackTimeout must be at least 100 ms");
    }
    if (heartbeat.isNegative() || heartbeat.isZero() || connectTimeout.isNegative()
        || connectTimeout.isZero()) {
      throw new IllegalArgumentException("timers must be positive");
    }
    // A peer that is declared lost before it could have sent one heartbeat is always "lost".
    if (peerTimeout.compareTo(heartbeat) <= 0) {
      throw new IllegalArgumentException("peerTimeout must be longer than heartbeat");
    }
  }
}
