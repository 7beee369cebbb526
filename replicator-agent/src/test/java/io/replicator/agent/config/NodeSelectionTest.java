package io.replicator.agent.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Each agent finds its own node by --node, by host name, or by the host of a node's address. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class NodeSelectionTest {
  @TempDir Path dir;
  private ConfigFiles files;
  private AgentConfig config;

  @BeforeEach
  void setUp() throws Exception {
    files = new ConfigFiles(dir);
    config = AgentConfig.load(files.write("""
        cluster = "orders"
        nodes {
          alpha { address = "db1.example.com:7400", root = "/srv/data" }
          beta {
            address = "db2.example.com:7400"
            root = "/srv/data"
            extra-addresses = [ "db2-backnet:7400" ]
          }
        }
        """));
  }

  @Test
  void theFlagWinsOverTheHostName() throws Exception {
    assertThat(config.self(Optional.of("beta"), "alpha").name()).isEqualTo("beta");
  }

  @Test
  void anUnknownFlagNamesTheKnownNodes() {
    assertThatThrownBy(() -> config.self(Optional.of("gamma"), "alpha"))
        .isInstanceOf(BadConfigurationException.class)
        .hasMessage(files.file() + ": --node \"gamma\" is not a node of this file "
            + "(known nodes: alpha, beta)");
  }

  @Test
  void theHostNameOrItsFirstLabelMatchesANodeName() throws Exception {
    assertThat(config.self(Optional.empty(), "alpha").name()).isEqualTo("alpha");
    assertThat(config.self(Optional.empty(), "Beta.example.com").name()).isEqualTo("beta");
  }

  @Test
  void theHostNameMatchesTheHostOfANodesAddress() throws Exception {
    assertThat(config.self(Optional.empty(), "db1.example.com").name()).isEqualTo("alpha");
    assertThat(config.self(Optional.empty(), "db2-backnet").name()).isEqualTo("beta");
  }

  @Test
  void aHostNameThatMatchesNoNodeIsAnError() {
    assertThatThrownBy(() -> config.self(Optional.empty(), "web3"))
        .isInstanceOf(BadConfigurationException.class)
        .hasMessage(files.file() + ": no node matches host name \"web3\"; choose one with --node "
            + "(known nodes: alpha, beta)");
  }

  @Test
  void aHostNameThatIsBothNodesAddressesNeedsTheFlag() throws Exception {
    AgentConfig local = AgentConfig.load(files.write("""
        cluster = "test"
        nodes {
          one { address = "localhost:7400", root = "/tmp/one" }
          two { address = "localhost:7410", root = "/tmp/two" }
        }
        """));

    assertThatThrownBy(() -> local.self(Optional.empty(), "localhost"))
        .isInstanceOf(BadConfigurationException.class)
        .hasMessage(files.file() + ": host name \"localhost\" is the address of both nodes; "
            + "choose one with --node (known nodes: one, two)");
    assertThat(local.self(Optional.of("two"), "localhost").name()).isEqualTo("two");
  }

  @Test
  void peerOfGivesTheOtherNode() throws Exception {
    NodeConfig alpha = config.self(Optional.of("alpha"), "ignored");
    NodeConfig beta = config.peerOf(alpha);

    assertThat(beta.name()).isEqualTo("beta");
    assertThat(config.peerOf(beta)).isEqualTo(alpha);
    assertThatThrownBy(() -> config.peerOf(new NodeConfig("gamma", alpha.address(), alpha.root(),
        alpha.admin(), alpha.extraAddresses(), alpha.agentAddress())))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
