package io.replicator;

/**
 * Whether a link compresses the change stream (LZ4, negotiated in the handshake: both sides must
 * want it). Meant for followers behind a WAN link, where bytes cost more than CPU.
 */
public enum LinkCompression {
  /** LZ4 unless the peer is on loopback. */
  AUTO,
  /** Never. */
  OFF,
  /** Always, loopback included (a local tunnel to a far site, or a test). */
  LZ4
}
