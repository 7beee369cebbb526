package io.replicator;

/**
 * Whether a link compresses the change stream, and with which codec (negotiated in the handshake:
 * both sides must want the same one, else the link runs uncompressed). Meant for followers behind a
 * WAN link, where bytes cost more than CPU. zstd is offered only where its native library loads.
 */
public enum LinkCompression {
  /** Unless the peer is on loopback: LZ4, or zstd when the peer wants only zstd. */
  AUTO,
  /** Never. */
  OFF,
  /** LZ4 always, loopback included (a local tunnel to a far site, or a test). */
  LZ4,
  /**
   * zstd always, loopback included: a better ratio than LZ4 for more CPU, for slow links. Where
   * zstd's native library does not load, nothing is offered (logged once) and the link runs uncompressed.
   */
  ZSTD
}
