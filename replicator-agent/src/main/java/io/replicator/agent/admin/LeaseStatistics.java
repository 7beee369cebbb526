package io.replicator.agent.admin;

import com.google.protobuf.InvalidProtocolBufferException;
import io.replicator.cluster.WriteStatisticsProtos;
import io.replicator.proto.WriteStatisticsReport;
import java.util.Base64;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes the application's write statistics out of a lease request: a registration starts a new
 * source, a renewal carries the statistics (its {@code writeStatistics} parameter, the proto
 * {@link WriteStatisticsReport} in base64url, until the lease itself is a proto exchange).
 */
public final class LeaseStatistics {
  private static final Logger log = LoggerFactory.getLogger(LeaseStatistics.class);

  private LeaseStatistics() {}

  /** Feeds {@code latency} from one lease request's parameters; a malformed report is ignored. */
  public static void take(Map<String, String> parameters, ApplicationLatency latency) {
    if ("register".equals(parameters.get("phase"))) {
      latency.newSource();
      return;
    }
    String encoded = parameters.get("writeStatistics");
    if (encoded == null) {
      return;
    }
    try {
      latency.report(WriteStatisticsProtos.fromProto(
          WriteStatisticsReport.parseFrom(Base64.getUrlDecoder().decode(encoded))));
    } catch (InvalidProtocolBufferException | IllegalArgumentException e) {
      log.debug("lease renewal with unusable write statistics: {}", e.getMessage());
    }
  }
}
