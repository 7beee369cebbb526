package io.replicator.meta;

/** Internal: what a crash-safe store found on disk when it was opened. */
public enum StoreState {
  /** Nothing stored yet: a node that never tracked anything here. */
  NONE,
  /** A valid record or log (a torn tail left by a crash is dropped and still counts as valid). */
  VALID,
  /** Files exist but are damaged: what they tracked is lost, so the caller must fall back to a full resync. */
  CORRUPT
}
