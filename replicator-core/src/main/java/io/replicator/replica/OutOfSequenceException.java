package io.replicator.replica;

import java.io.IOException;

/**
 * A change was handed to the applier with a seq that is not the next one (a gap, a repeat or a
 * non-positive seq): the stream that produced it is broken, so this is a protocol error.
 */
final class OutOfSequenceException extends IOException {

  private static final long serialVersionUID = 1L;

  OutOfSequenceException(String message) {
    super(message);
  }
}
