package io.replicator.transport;

import java.io.IOException;

/** The peer answered the handshake with a refusal; the message is its reason. */
public final class PeerRefusedException extends IOException {
  private static final long serialVersionUID = 1L;

  public PeerRefusedException(String message) {
    super(message);
  }
}
