package io.replicator.agent.cluster;

import io.replicator.proto.AgentMessage;
import io.replicator.proto.WitnessMessage;
import io.replicator.proto.WitnessRecord;
import io.replicator.transport.TransportSettings;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The third voter: holds no data, hears both agents on the agent channel, and answers each
 * heartbeat with {@link WitnessCore}'s decision, on one thread. What it must not forget is kept
 * in its state file, so a restarted witness still knows which node is outdated.
 */
public final class Witness implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(Witness.class);
  public static final String NAME = "witness";

  private final AgentLinks links;
  private final ScheduledExecutorService owner;
  private final WitnessCore core;
  private final List<String> nodes;

  public Witness(String cluster, List<String> nodes, Duration heartbeat, Duration peerTimeout, Path stateFile,
      io.replicator.LinkSecurity security) {
    this.nodes = List.copyOf(nodes);
    RecordFile<WitnessRecord> file = new RecordFile<>(stateFile, WitnessRecord.parser(),
        WitnessRecord.getDefaultInstance());
    WitnessRecord record = file.read();
    if (!record.getCluster().isEmpty() && !record.getCluster().equals(cluster)) {
      throw new IllegalArgumentException("witness state file " + stateFile + " belongs to cluster '"
          + record.getCluster() + "', not '" + cluster + "'");
    }
    this.owner = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "replicator-witness");
      t.setDaemon(true);
      return t;
    });
    this.core = new WitnessCore(cluster, nodes, heartbeat, peerTimeout, System::nanoTime, record, file::write);
    TransportSettings settings = TransportSettings.defaults(cluster, NAME).withTimers(heartbeat, peerTimeout)
        .withSecurity(security);
    this.links = new AgentLinks(settings, Set.copyOf(nodes), new AgentLinks.Receiver() {
      @Override
      public void agentMessage(String from, AgentMessage message) {
        owner.execute(() -> answer(from, message));
      }
    });
    owner.scheduleWithFixedDelay(this::tick, heartbeat.toMillis(), heartbeat.toMillis(), TimeUnit.MILLISECONDS);
    log.info("witness state from {}: epoch {}, primary {}, outdated {}", stateFile, record.getEpoch(),
        record.getPrimary().isEmpty() ? "none" : record.getPrimary() + " (epoch " + record.getPrimaryEpoch() + ")",
        record.getOutdatedList());
  }

  private void answer(String from, AgentMessage message) {
    try {
      WitnessMessage answer = core.onMessage(from, message);
      if (answer != null) {
        links.send(from, answer);
      }
    } catch (RuntimeException e) {
      // a state file the disk refused: answer nothing rather than grant on an unwritten record
      log.error("witness cannot answer {}: {}", from, e.getMessage());
    }
  }

  private void tick() {
    try {
      core.tick();
    } catch (RuntimeException e) {
      log.error("witness tick failed: {}", e.getMessage());
    }
  }

  public InetSocketAddress listen(InetSocketAddress address) throws IOException {
    InetSocketAddress bound = links.listen(address);
    log.info("witness listening on {} for nodes {}", bound, nodes);
    return bound;
  }

  @Override
  public void close() {
    owner.shutdownNow();
    links.close();
  }
}
