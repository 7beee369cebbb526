package io.replicator;

import static com.google.common.base.Preconditions.checkArgument;

/**
 * How a split brain (both nodes wrote while apart) is resolved without an operator.
 * The default never guesses: it reports and stays disconnected, because any choice throws away
 * writes that were acknowledged to applications.
 */
public enum SplitBrainPolicy {
  /** Report the split brain and stay disconnected until an operator picks the side to discard. */
  DISCONNECT,
  /** Discard the side that changed fewer bytes while apart (its writes are resynced over). */
  DISCARD_LEAST_CHANGES,
  /** Discard the side that became primary last (the older primary is assumed to be the intended one). */
  DISCARD_YOUNGER_PRIMARY;

  /** The side a resolution throws away. */
  public enum Victim {
    LOCAL,
    PEER,
    /** No safe choice (policy {@link #DISCONNECT}, a tie or unknown inputs): stay disconnected. */
    NONE
  }

  /**
   * Picks the side to discard from both sides' dirty byte counts and the times (epoch millis, 0 when
   * unknown) at which they became primary. Ties and unknown times give {@link Victim#NONE}.
   */
  public Victim victim(long localDirtyBytes, long localPrimarySinceMillis, long peerDirtyBytes,
      long peerPrimarySinceMillis) {
    checkArgument(localDirtyBytes >= 0 && peerDirtyBytes >= 0, "negative dirty byte count");
    switch (this) {
      case DISCARD_LEAST_CHANGES:
        if (localDirtyBytes == peerDirtyBytes) {
          return Victim.NONE;
        }
        return localDirtyBytes < peerDirtyBytes ? Victim.LOCAL : Victim.PEER;
      case DISCARD_YOUNGER_PRIMARY:
        // Without both times the order is unknown; guessing would be discarding data at random.
        if (localPrimarySinceMillis <= 0 || peerPrimarySinceMillis <= 0
            || localPrimarySinceMillis == peerPrimarySinceMillis) {
          return Victim.NONE;
        }
        return localPrimarySinceMillis > peerPrimarySinceMillis ? Victim.LOCAL : Victim.PEER;
      case DISCONNECT:
      default:
        return Victim.NONE;
    }
  }
}
