package io.replicator.agent.admin;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.replicator.NodeState;
import io.replicator.ReplicationMode;
import io.replicator.ReplicationStatus;
import io.replicator.proto.StatusDocument;
import java.util.Optional;

/** Status snapshots for the tests, and the status document read back as a script's parser would. */
final class Statuses {
  private Statuses() {}

  static ReplicationStatus primaryInSync() {
    return new ReplicationStatus(NodeState.PRIMARY, ReplicationMode.SYNC, Optional.of("10.0.0.2:7788"),
        true, false, Optional.empty(), 0x1234abcdL, 0, 42, 42, 0, 0, Optional.empty());
  }

  static ReplicationStatus syncSource(long done, long total, long dirty) {
    return new ReplicationStatus(NodeState.SYNC_SOURCE, ReplicationMode.SYNC, Optional.of("10.0.0.2:7788"),
        true, true, Optional.of("peer out of date"), 0xfedcba9876543210L, dirty, 100, 90, 3, 12288,
        Optional.of(new ReplicationStatus.ResyncProgress(done, total, 1_000_000, 7, done / 10, total / 10)));
  }

  /** Reads a status document strictly: a field the message does not know fails the test. */
  static StatusDocument parse(String json) throws InvalidProtocolBufferException {
    StatusDocument.Builder doc = StatusDocument.newBuilder();
    JsonFormat.parser().merge(json, doc);
    return doc.build();
  }
}
