package io.replicator.agent.admin;

/**
 * A request whose parameters or body cannot be read (a malformed time, a limit out of range):
 * answered 400 with the message, before anything was done.
 */
public final class BadRequest extends Exception {
  public BadRequest(String message) {
    super(message);
  }
}
