package io.replicator.transport;

/** Receives what arrives on an established (handshaken) peer connection. */
public interface PeerListener {

  /**
   * A frame arrived. Called on the connection's event loop, in arrival order; the listener owns
   * the frame and must {@link Frame#release() release} it. Must not block.
   */
  void onFrame(PeerConnection connection, Frame frame);

  /** The connection closed; {@code reason} says why (ours or the peer's). Called once. */
  void onClosed(PeerConnection connection, String reason);

  /** The outbound buffer crossed a water mark; writers may pause until it is writable again. */
  default void onWritabilityChanged(PeerConnection connection, boolean writable) {}
}
