package io.replicator.agent.admin;

/**
 * A refused or failed admin operation with a stable code the CLI maps to an exit code, sent as
 * {@code 409 {"error": CODE, "message": ...}} rather than a bare 500.
 */
public final class OperationFailure extends Exception {
  /** The codes a caller can act on. */
  public enum Code {
    /** The other node could not be reached. */
    PEER_UNREACHABLE,
    /** The operation would serve or create a split brain. */
    SPLIT_BRAIN,
    /** Refused in the current state (for example swap while the peer is out of date). */
    REFUSED,
    /** Tried and failed. */
    FAILED
  }

  private final Code code;

  public OperationFailure(Code code, String message) {
    super(message);
    this.code = code;
  }

  public Code code() {
    return code;
  }
}
