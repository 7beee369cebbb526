package io.replicator.transport;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.replicator.LinkSecurity;
import java.security.SecureRandom;
import java.time.Duration;

/**
 * Who this node is on the wire and the limits it enforces on every connection.
 *
 * @param clusterName both sides must name the same cluster
 * @param nodeId this node's id
 * @param incarnation random per process start, so a peer can tell a restart from a reconnect
 * @param maxFrameLength largest frame accepted (header and payload), in bytes
 * @param maxHeaderLength largest protobuf header accepted, in bytes
 * @param heartbeatInterval a ping is sent when nothing was written for this long
 * @param peerTimeout the connection is closed when nothing was read for this long
 * @param handshakeTimeout the connection is closed when the handshake has not finished by then
 * @param security shared secret and TLS of the link; both sides must agree
 * @param compression whether frames after the handshake are compressed; a link compresses only
 *     when both sides want it
 * @param bandwidthCap most bytes per second this side sends on each connection (after
 *     compression, before TLS), 0 for no cap
 */
public record TransportSettings(
    String clusterName,
    String nodeId,
    byte[] incarnation,
    int maxFrameLength,
    int maxHeaderLength,
    Duration heartbeatInterval,
    Duration peerTimeout,
    Duration handshakeTimeout,
    LinkSecurity security,
    Compression compression,
    long bandwidthCap) {

  /**
   * Protocol version spoken by this build. 3: resync's {@code WriteFile} may carry scattered pieces,
   * which a version-2 peer would write as one run at position 0, so the versions must not meet.
   */
  public static final int PROTOCOL_VERSION = 3;

  /** Largest write payload a frame carries; larger writes travel as several changes. */
  public static final int MAX_PAYLOAD = 1 << 20;

  /** Which frames a node wants compressed on a link. */
  public enum Compression {
    /**
     * Unless the peer is on loopback, where the CPU costs more than the bytes saved: LZ4 first,
     * zstd also (when it loads) for a peer that wants only zstd.
     */
    AUTO,
    /** Never compress. */
    OFF,
    /** LZ4 on every link, loopback included (tests, or a slow local tunnel). */
    LZ4,
    /** zstd on every link, loopback included, when its native library loads here; else none. */
    ZSTD
  }

  public TransportSettings {
    checkNotNull(clusterName, "clusterName");
    checkNotNull(nodeId, "nodeId");
    checkArgument(!clusterName.isBlank(), "cluster name is empty");
    checkArgument(!nodeId.isBlank(), "node id is empty");
    checkArgument(maxFrameLength >= MAX_PAYLOAD + 64 * 1024, "maxFrameLength %s too small", maxFrameLength);
    checkArgument(maxHeaderLength >= 1024, "maxHeaderLength %s too small", maxHeaderLength);
    checkArgument(!heartbeatInterval.isNegative() && !heartbeatInterval.isZero(), "heartbeat interval must be positive");
    checkArgument(peerTimeout.compareTo(heartbeatInterval) > 0, "peer timeout %s must exceed the heartbeat interval %s", peerTimeout, heartbeatInterval);
    checkArgument(!handshakeTimeout.isNegative() && !handshakeTimeout.isZero(), "handshake timeout must be positive");
    checkNotNull(security, "security");
    checkNotNull(compression, "compression");
    checkArgument(bandwidthCap >= 0, "bandwidth cap %s must not be negative (0 for none)", bandwidthCap);
    incarnation = incarnation.clone();
  }

  /** Settings with compression {@link Compression#AUTO} and no bandwidth cap. */
  public TransportSettings(String clusterName, String nodeId, byte[] incarnation, int maxFrameLength,
      int maxHeaderLength, Duration heartbeatInterval, Duration peerTimeout, Duration handshakeTimeout,
      LinkSecurity security) {
    this(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength, heartbeatInterval, peerTimeout,
        handshakeTimeout, security, Compression.AUTO, 0);
  }

  /** Settings of an unprotected link. */
  public TransportSettings(String clusterName, String nodeId, byte[] incarnation, int maxFrameLength,
      int maxHeaderLength, Duration heartbeatInterval, Duration peerTimeout, Duration handshakeTimeout) {
    this(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength, heartbeatInterval, peerTimeout,
        handshakeTimeout, LinkSecurity.none());
  }

  /**
   * Defaults: 2 MiB frames, 64 KiB headers, ping every 500 ms, peer dead after 3 s of silence, and
   * 5 s for a handshake, whatever the peer timeout (a JVM that is still starting answers slowly,
   * and is not gone).
   */
  public static TransportSettings defaults(String clusterName, String nodeId) {
    byte[] incarnation = new byte[16];
    new SecureRandom().nextBytes(incarnation);
    return new TransportSettings(clusterName, nodeId, incarnation, 2 * MAX_PAYLOAD, 64 * 1024,
        Duration.ofMillis(500), Duration.ofSeconds(3), Duration.ofSeconds(5));
  }

  public TransportSettings withTimers(Duration heartbeat, Duration timeout) {
    return new TransportSettings(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength,
        heartbeat, timeout, handshakeTimeout, security, compression, bandwidthCap);
  }

  public TransportSettings withSecurity(LinkSecurity security) {
    return new TransportSettings(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength,
        heartbeatInterval, peerTimeout, handshakeTimeout, security, compression, bandwidthCap);
  }

  public TransportSettings withHandshakeTimeout(Duration timeout) {
    return new TransportSettings(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength,
        heartbeatInterval, peerTimeout, timeout, security, compression, bandwidthCap);
  }

  /** The same settings with frame compression {@code mode}; both sides must want it for a link to compress. */
  public TransportSettings withCompression(Compression mode) {
    return new TransportSettings(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength,
        heartbeatInterval, peerTimeout, handshakeTimeout, security, mode, bandwidthCap);
  }

  /**
   * The same settings with what this side sends on each connection capped to {@code bytesPerSecond}
   * (0: no cap). A capped connection turns unwritable while its output waits for the cap.
   */
  public TransportSettings withBandwidthCap(long bytesPerSecond) {
    return new TransportSettings(clusterName, nodeId, incarnation, maxFrameLength, maxHeaderLength,
        heartbeatInterval, peerTimeout, handshakeTimeout, security, compression, bytesPerSecond);
  }

  @Override
  public byte[] incarnation() {
    return incarnation.clone();
  }

  @Override
  public String toString() {
    // the record default would print the incarnation array's identity; security prints no secret
    return "TransportSettings[cluster=" + clusterName + ", node=" + nodeId + ", maxFrame=" + maxFrameLength
        + ", heartbeat=" + heartbeatInterval + ", peerTimeout=" + peerTimeout + ", handshakeTimeout="
        + handshakeTimeout + ", " + security + ", compression=" + compression
        + (bandwidthCap > 0 ? ", bandwidthCap=" + bandwidthCap + " B/s" : "") + "]";
  }
}
