package io.replicator;

/** What a primary does with writes while its peer is absent or lost. */
public enum PeerLossPolicy {
  /**
   * Keep serving writes alone (state {@link NodeState#ALONE}) and durably record that the peer is
   * out of date, as DRBD and SafeKit do by default.
   */
  CONTINUE,
  /**
   * Make writes wait for the peer up to a timeout; after it the write fails with an
   * {@link java.io.IOException}, and a change already made locally is recorded as not replicated.
   */
  BLOCK
}
