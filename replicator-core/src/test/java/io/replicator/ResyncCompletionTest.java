package io.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.proto.Change;
import io.replicator.proto.Envelope;
import io.replicator.proto.Force;
import io.replicator.proto.GenerationIds;
import io.replicator.proto.HelloReply;
import io.replicator.proto.ResyncDone;
import io.replicator.proto.ResyncStart;
import io.replicator.testing.RawPeer;
import io.replicator.testing.ReplicaPair;
import io.replicator.transport.TransportSettings;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The end of a resync as the replica sees it. A primary numbers its changes across connections,
 * so a resync that has nothing to send, on a link where the application writes nothing (in SYNC
 * its writes wait for the resync), ends with a number the replica never received on this
 * connection. The torture run found a pair stuck retrying that resync forever.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ResyncCompletionTest {
  @TempDir Path base;
  private ReplicaPair pair;

  @AfterEach
  void stop() throws Exception {
    pair.close();
  }

  @Test
  void aResyncThatSentNothingOnThisConnectionCompletes() throws Exception {
    pair = ReplicaPair.start(base, false);
    GenerationIds ids = GenerationIds.newBuilder().setCurrent(0x5eedL).addHistory(0x5eedL).build();
    try (RawPeer peer = new RawPeer(pair.replica().localAddress())) {
      HelloReply reply = peer.handshake(TransportSettings.PROTOCOL_VERSION, "replicator", "returning-primary");
      assertThat(reply.getAccepted()).as(reply.getReason()).isTrue();
      peer.send(Envelope.newBuilder().setResyncStart(ResyncStart.newBuilder().setFull(false).setBytesTotal(0))
          .build(), new byte[0]);
      // changes up to 4,711 went out on earlier connections; none on this one
      peer.send(Envelope.newBuilder().setResyncDone(ResyncDone.newBuilder().setLastSeq(4_711).setGenerations(ids))
          .build(), new byte[0]);
      peer.sendChange(Change.newBuilder().setSeq(4_712).setForce(Force.newBuilder().setPath("")).build(), new byte[0]);
      long applied = 0;
      while (applied < 4_712) {
        Optional<Envelope> frame = peer.readFrame();
        assertThat(frame).as("the replica closed the connection instead of finishing the resync").isPresent();
        assertThat(frame.get().hasGoodbye()).as("goodbye: %s", frame.get().getGoodbye()).isFalse();
        if (frame.get().hasAck()) {
          applied = frame.get().getAck().getAppliedSeq();
        }
      }
    }
    LocalData data = LocalData.read(pair.replicaRoot);
    assertThat(data.consistent()).isTrue();
    assertThat(data.generation()).isEqualTo(0x5eedL);
  }
}
