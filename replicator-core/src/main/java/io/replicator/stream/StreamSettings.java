package io.replicator.stream;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.PeerLossPolicy;
import io.replicator.ReplicationMode;
import java.net.InetSocketAddress;
import java.time.Duration;

/**
 * How a primary streams its changes.
 *
 * @param peer the replica's address
 * @param mode when a write returns
 * @param peerLossPolicy what writes do while the peer is absent
 * @param blockTimeout how long a write waits for the peer under {@link PeerLossPolicy#BLOCK}
 * @param windowBytes most payload bytes sent and not yet applied by the peer
 * @param windowChanges most changes sent and not yet applied by the peer
 * @param connectTimeout how long opening waits for the first connection before going on alone
 * @param reconnectMin first reconnect delay; it doubles up to {@code reconnectMax}
 * @param reconnectMax longest reconnect delay
 * @param drainTimeout how long closing waits for unacknowledged changes
 * @param resyncBytesPerSecond ceiling of the resync rate, 0 for adaptive only
 * @param ackTimeout longest a change may wait for its acknowledgement on a link that is otherwise
 *     alive before the link is dropped (a peer whose disk hangs, a middlebox that loses frames)
 * @param follower the peer is a follower, not the pair's secondary: never a resync source, always
 *     {@link PeerLossPolicy#CONTINUE}, and an ASYNC follower's full window drops the link to its
 *     dirty bitmap instead of holding writes
 * @param followerSpillBytes for an ASYNC follower, most bytes of changes queued on this node's disk
 *     while its window is full before it falls back to its dirty bitmap; 0 falls back at once
 */
public record StreamSettings(
    InetSocketAddress peer,
    ReplicationMode mode,
    PeerLossPolicy peerLossPolicy,
    Duration blockTimeout,
    long windowBytes,
    int windowChanges,
    Duration connectTimeout,
    Duration reconnectMin,
    Duration reconnectMax,
    Duration drainTimeout,
    long resyncBytesPerSecond,
    Duration ackTimeout,
    boolean follower,
    long followerSpillBytes) {

  /** An ASYNC follower absorbs a burst of up to 1 GiB on this node's disk before it falls back to its bitmap. */
  public static final long DEFAULT_FOLLOWER_SPILL_BYTES = 1L << 30;

  /** Generous: a change waits behind a full window and the peer's fsyncs, and a false alarm costs a resync. */
  public static final Duration DEFAULT_ACK_TIMEOUT = Duration.ofSeconds(30);

  public StreamSettings {
    checkNotNull(peer, "peer");
    checkNotNull(mode, "mode");
    checkNotNull(peerLossPolicy, "peerLossPolicy");
    checkArgument(!blockTimeout.isNegative(), "block timeout is negative");
    checkArgument(windowBytes >= 1 << 20, "window of %s bytes is below 1 MiB", windowBytes);
    checkArgument(windowChanges >= 1, "window of %s changes", windowChanges);
    checkArgument(!reconnectMin.isNegative() && !reconnectMin.isZero(), "reconnect delay must be positive");
    checkArgument(reconnectMax.compareTo(reconnectMin) >= 0, "reconnect max below min");
    checkArgument(resyncBytesPerSecond >= 0, "negative resync rate %s", resyncBytesPerSecond);
    checkArgument(ackTimeout.compareTo(Duration.ofMillis(100)) >= 0, "acknowledgement timeout %s below 100 ms",
        ackTimeout);
    checkArgument(followerSpillBytes >= 0, "negative follower spill bound %s", followerSpillBytes);
    checkArgument(!follower || peerLossPolicy == PeerLossPolicy.CONTINUE,
        "a follower never holds writes when it is lost: its peer-loss policy is CONTINUE");
  }

  /** Settings with the default follower spill bound. */
  public StreamSettings(InetSocketAddress peer, ReplicationMode mode, PeerLossPolicy peerLossPolicy,
      Duration blockTimeout, long windowBytes, int windowChanges, Duration connectTimeout, Duration reconnectMin,
      Duration reconnectMax, Duration drainTimeout, long resyncBytesPerSecond, Duration ackTimeout,
      boolean follower) {
    this(peer, mode, peerLossPolicy, blockTimeout, windowBytes, windowChanges, connectTimeout, reconnectMin,
        reconnectMax, drainTimeout, resyncBytesPerSecond, ackTimeout, follower, DEFAULT_FOLLOWER_SPILL_BYTES);
  }

  /** Whether an ASYNC follower's changes queue on disk while its window is full. */
  boolean spills() {
    return follower && mode == ReplicationMode.ASYNC && followerSpillBytes > 0;
  }

  /** Opening the file system does not wait longer for a follower: it joins in the background. */
  static final Duration FOLLOWER_CONNECT_TIMEOUT = Duration.ofMillis(200);
  static final Duration FOLLOWER_DRAIN = Duration.ofSeconds(2);

  /** The same settings for a follower at {@code address} in {@code mode}: writes go on without it when it is lost. */
  public StreamSettings forFollower(InetSocketAddress address, ReplicationMode followerMode) {
    return new StreamSettings(address, followerMode, PeerLossPolicy.CONTINUE, blockTimeout, windowBytes,
        windowChanges, FOLLOWER_CONNECT_TIMEOUT, reconnectMin, reconnectMax,
        // closing (a swap, say) waits less for a follower: what it has not acknowledged goes to its bitmap
        drainTimeout.compareTo(FOLLOWER_DRAIN) < 0 ? drainTimeout : FOLLOWER_DRAIN,
        resyncBytesPerSecond, ackTimeout, true, followerSpillBytes);
  }

  /** SYNC, continue alone on peer loss, 64 MiB / 16k-change window, reconnect 100 ms..5 s, acks within 30 s. */
  public static StreamSettings defaults(InetSocketAddress peer) {
    return new StreamSettings(peer, ReplicationMode.SYNC, PeerLossPolicy.CONTINUE, Duration.ofSeconds(10),
        64L << 20, 16_384, Duration.ofSeconds(5), Duration.ofMillis(100), Duration.ofSeconds(5),
        Duration.ofSeconds(10), 0, DEFAULT_ACK_TIMEOUT, false);
  }
}
