package io.replicator.change;

import java.io.IOException;

/**
 * A change received from the peer is not valid: a bad path, a negative or overflowing position,
 * a mode outside 0777, a payload where none belongs, or an unknown kind. The connection that
 * carried it is broken (a protocol error), so the message names the seq and the problem.
 */
public final class MalformedChangeException extends IOException {

  private static final long serialVersionUID = 1L;

  private final long seq;

  public MalformedChangeException(long seq, String problem) {
    super("malformed change seq " + Long.toUnsignedString(seq) + ": " + problem);
    this.seq = seq;
  }

  /** The sequence number the bad change carried (as received, possibly unusable). */
  public long seq() {
    return seq;
  }
}
