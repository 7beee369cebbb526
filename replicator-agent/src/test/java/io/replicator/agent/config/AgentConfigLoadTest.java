package io.replicator.agent.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.PeerLossPolicy;
import io.replicator.ReplicationMode;
import io.replicator.SplitBrainPolicy;
import io.replicator.agent.config.Checker.CommandChecker;
import io.replicator.agent.config.Checker.ProcessChecker;
import io.replicator.agent.config.Checker.TcpChecker;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Valid files: the shipped example, defaults for omitted keys, and the accepted value forms. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class AgentConfigLoadTest {
  @TempDir Path dir;
  private ConfigFiles files;

  @BeforeEach
  void setUp() {
    files = new ConfigFiles(dir);
  }

  @Test
  void theShippedExampleLoadsWithEverySectionSet() throws Exception {
    // Surefire runs in the module directory; the example lives at the repository's top.
    AgentConfig config = AgentConfig.load(Path.of("..", "examples", "replicator.conf"));

    assertThat(config.cluster()).isEqualTo("orders");
    assertThat(config.nodes()).extracting(NodeConfig::name).containsExactly("alpha", "beta");
    NodeConfig alpha = config.nodes().get(0);
    assertThat(alpha.address()).isEqualTo(InetSocketAddress.createUnresolved("10.0.0.1", 7400));
    assertThat(alpha.root()).isEqualTo(Path.of("/srv/data"));
    assertThat(alpha.admin()).isEqualTo(InetSocketAddress.createUnresolved("127.0.0.1", 7480));
    assertThat(alpha.extraAddresses())
        .containsExactly(InetSocketAddress.createUnresolved("192.168.1.1", 7400));
    assertThat(config.witness()).map(WitnessConfig::address)
        .contains(InetSocketAddress.createUnresolved("10.0.0.3", 7401));
    assertThat(config.preferredPrimary()).contains("alpha");
    assertThat(config.secretFile()).contains(Path.of("/etc/replicator/secret"));
    assertThat(config.adminTokenFile()).contains(Path.of("/etc/replicator/admin-token"));
    assertThat(config.application().start()).contains(Path.of("/etc/replicator/start.sh"));
    assertThat(config.application().stop()).contains(Path.of("/etc/replicator/stop.sh"));
    assertThat(config.application().checkers()).containsExactly(
        new ProcessChecker(Path.of("/run/app.pid")),
        new TcpChecker(InetSocketAddress.createUnresolved("127.0.0.1", 8080), Duration.ofSeconds(1)),
        new CommandChecker(Path.of("/usr/local/bin/check"), Duration.ofSeconds(5)));
  }

  @Test
  void omittedKeysTakeTheirDefaults() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(ConfigFiles.MINIMAL));

    assertThat(config.source()).isEqualTo(files.file());
    assertThat(config.mode()).isEqualTo(ReplicationMode.SYNC);
    assertThat(config.nodes().get(1)).isEqualTo(new NodeConfig("beta",
        InetSocketAddress.createUnresolved("10.0.0.2", 7400), Path.of("/srv/data"),
        InetSocketAddress.createUnresolved("127.0.0.1", 7480), List.of(),
        InetSocketAddress.createUnresolved("10.0.0.2", 7401)));
    assertThat(config.witness()).isEmpty();
    assertThat(config.preferredPrimary()).isEmpty();
    assertThat(config.timers()).isEqualTo(new Timers(
        Duration.ofMillis(500), Duration.ofSeconds(3), Duration.ofSeconds(5), Duration.ofSeconds(30)));
    assertThat(config.automaticFailover()).isTrue();
    assertThat(config.splitBrainPolicy()).isEqualTo(SplitBrainPolicy.DISCONNECT);
    assertThat(config.peerLossPolicy()).isEqualTo(PeerLossPolicy.CONTINUE);
    assertThat(config.blockTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(config.resyncRate()).isZero();
    assertThat(config.application()).isEqualTo(new ApplicationConfig(Optional.empty(),
        Optional.empty(), Duration.ofSeconds(30), 3, List.of(), Duration.ofSeconds(2)));
    assertThat(config.secretFile()).isEmpty();
    assertThat(config.adminTokenFile()).isEmpty();
  }

  @Test
  void enumsAreCaseInsensitiveAndSizesTakeUnits() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(ConfigFiles.MINIMAL + """
        mode = memory
        split-brain-policy = discard-least-changes
        peer-loss-policy = Block
        resync.rate = "50 MiB"
        failover.automatic = false
        timers { heartbeat = 1s, peer-timeout = 2m }
        """));

    assertThat(config.mode()).isEqualTo(ReplicationMode.MEMORY);
    assertThat(config.splitBrainPolicy()).isEqualTo(SplitBrainPolicy.DISCARD_LEAST_CHANGES);
    assertThat(config.peerLossPolicy()).isEqualTo(PeerLossPolicy.BLOCK);
    assertThat(config.resyncRate()).isEqualTo(50L * 1024 * 1024);
    assertThat(config.automaticFailover()).isFalse();
    assertThat(config.timers().peerTimeout()).isEqualTo(Duration.ofMinutes(2));
  }

  @Test
  void nodesKeepTheFileOrderAndIpv6AddressesNeedBrackets() throws Exception {
    AgentConfig config = AgentConfig.load(files.write("""
        cluster = "orders"
        nodes {
          zulu { address = "[fd00::2]:7400", root = "/srv/data" }
          alpha { address = "[fd00::1]:7400", root = "/srv/data/../data" }
        }
        """));

    assertThat(config.nodes()).extracting(NodeConfig::name).containsExactly("zulu", "alpha");
    assertThat(config.nodes().get(0).address().getHostString()).isEqualTo("fd00::2");
    assertThat(config.nodes().get(1).root()).isEqualTo(Path.of("/srv/data"));
  }

  @Test
  void nullMeansLeftOut() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(ConfigFiles.MINIMAL + """
        secret-file = null
        application { start = null }
        """));

    assertThat(config.secretFile()).isEmpty();
    assertThat(config.application().start()).isEmpty();
  }
}
