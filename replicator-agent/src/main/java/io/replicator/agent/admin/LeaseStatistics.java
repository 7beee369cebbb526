package io.replicator.agent.admin;

import io.replicator.cluster.WriteStatisticsProtos;
import io.replicator.proto.LeaseRequest;


/**
 * Takes the application's write statistics out of its lease: a registration starts a new source
 * (the counters start again from zero), a renewal carries the cumulative statistics.
 */
public final class LeaseStatistics {
  private LeaseStatistics() {}

  /** Feeds {@code latency} from one lease request. */
  public static void take(LeaseRequest request, ApplicationLatency latency) {
    if (request.getPhase() == LeaseRequest.Phase.REGISTER) {
      latency.newSource();
    } else if (request.getReport().hasWriteStatistics()) {
      latency.report(WriteStatisticsProtos.fromProto(request.getReport().getWriteStatistics()));
    }
  }
}
