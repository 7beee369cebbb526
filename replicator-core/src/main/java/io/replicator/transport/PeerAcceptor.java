package io.replicator.transport;

import io.replicator.proto.GenerationIds;
import io.replicator.proto.SyncState;

/** The accepting side's decision on a peer whose Hello passed the version and cluster checks. */
public interface PeerAcceptor {

  /** Accepts (naming the listener for the connection) or refuses (with a reason sent to the peer). */
  Decision accept(PeerConnection candidate);

  /**
   * The outcome of a handshake.
   *
   * @param listener receives the connection's frames, null when refused
   * @param generations this node's generation ids, sent back in the reply (may be null)
   * @param syncState this node's sync state, sent back in the reply (may be null)
   * @param refusal the reason for a refusal, null when accepted
   */
  record Decision(PeerListener listener, GenerationIds generations, SyncState syncState, String refusal) {
    public static Decision accept(PeerListener listener, GenerationIds generations, SyncState syncState) {
      return new Decision(listener, generations, syncState, null);
    }

    public static Decision accept(PeerListener listener, GenerationIds generations) {
      return accept(listener, generations, null);
    }

    public static Decision refuse(String reason) {
      return new Decision(null, null, null, reason);
    }
  }
}
