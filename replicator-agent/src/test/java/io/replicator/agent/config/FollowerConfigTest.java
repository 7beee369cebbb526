package io.replicator.agent.config;

import static io.replicator.agent.config.ConfigFiles.MINIMAL;
import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.ReplicationMode;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The {@code followers} section: what it reads, its defaults, and each mistake an operator can make in it. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FollowerConfigTest {
  @TempDir Path dir;
  private ConfigFiles files;

  @BeforeEach
  void setUp() {
    files = new ConfigFiles(dir);
  }

  @Test
  void followersAreReadInFileOrderWithTheirDefaults() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(MINIMAL + """
        followers {
          zz-async { address = "10.0.0.5:7400", root = "/srv/copy" }
          "dr.delayed" { address = "10.0.0.4:7400", root = "/srv/data", mode = delayed, delay = 1h }
        }
        """));

    assertThat(config.followers()).extracting(FollowerConfig::name).containsExactly("zz-async", "dr.delayed");
    FollowerConfig plain = config.followers().get(0);
    assertThat(plain).isEqualTo(new FollowerConfig("zz-async", InetSocketAddress.createUnresolved("10.0.0.5", 7400),
        Path.of("/srv/copy"), FollowerConfig.Mode.ASYNC, Optional.empty(), ConfigParser.DEFAULT_LOG_CAPACITY,
        InetSocketAddress.createUnresolved("127.0.0.1", 7480)));
    FollowerConfig delayed = config.follower("dr.delayed").orElseThrow();
    assertThat(delayed.delay()).contains(Duration.ofHours(1));
    assertThat(delayed.logCapacity()).isEqualTo(10L << 30);
    assertThat(delayed.mode().replicationMode()).isEqualTo(ReplicationMode.ASYNC);
  }

  @Test
  void aFileWithoutFollowersHasNone() throws Exception {
    assertThat(AgentConfig.load(files.write(MINIMAL)).followers()).isEmpty();
  }

  @Test
  void theShippedExampleHasADelayedFollower() throws Exception {
    AgentConfig config = AgentConfig.load(Path.of("..", "examples", "replicator.conf"));

    assertThat(config.followers()).singleElement().satisfies(f -> {
      assertThat(f.mode()).isEqualTo(FollowerConfig.Mode.DELAYED);
      assertThat(f.delay()).contains(Duration.ofHours(1));
    });
  }

  @Test
  void aWanFollowerHasABandwidthCapAndCompression() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(MINIMAL + """
        followers {
          site-b { address = "10.0.0.5:7400", root = "/srv/copy", bandwidth = "1250 KiB", compression = lz4 }
        }
        """));

    FollowerConfig f = config.follower("site-b").orElseThrow();
    assertThat(f.bandwidth()).isEqualTo(1250L * 1024);
    assertThat(f.compression()).isEqualTo(io.replicator.LinkCompression.LZ4);
    assertThat(config.followers()).isNotEmpty();
  }

  @Test
  void aSlowLinkFollowerCanAskForZstd() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(MINIMAL + """
        followers {
          far { address = "10.0.0.5:7400", root = "/srv/copy", compression = zstd }
        }
        """));

    assertThat(config.follower("far").orElseThrow().compression()).isEqualTo(io.replicator.LinkCompression.ZSTD);
  }

  @Test
  void aBadCompressionIsRefusedWithItsLine() {
    assertThat(files.errors(MINIMAL + """
        followers {
          dr { address = "10.0.0.5:7400", root = "/srv/copy", compression = zip }
        }
        """)).singleElement().asString().contains("followers.dr.compression").contains("LZ4, ZSTD");
  }

  @Test
  void aFollowerNeedsAnAddressAndAnAbsoluteRoot() {
    assertThat(files.errors(MINIMAL + """
        followers {
          dr { root = "srv/data" }
        }
        """)).containsExactly(
            files.at(7, "followers.dr.address: missing (required: host:port)"),
            files.at(7, "followers.dr.root: \"srv/data\" is not an absolute path"));
  }

  @Test
  void aDelayedFollowerWithoutADelayIsRefused() {
    assertThat(files.errors(MINIMAL + """
        followers.dr { address = "10.0.0.4:7400", root = "/srv/data", mode = DELAYED }
        """)).containsExactly(files.at(6, "followers.dr.delay: missing (required with mode = DELAYED: how old a "
            + "change must be before it is applied, e.g. 1h)"));
  }

  @Test
  void aDelayOrLogCapacityOnAFollowerThatIsNotDelayedIsRefused() {
    assertThat(files.errors(MINIMAL + """
        followers.dr {
          address = "10.0.0.4:7400", root = "/srv/data", mode = SYNC
          delay = 1h
          log-capacity = "1 GiB"
        }
        """)).containsExactly(
            files.at(8, "followers.dr.delay: only allowed with mode = DELAYED (this follower's mode is SYNC)"),
            files.at(9, "followers.dr.log-capacity: only allowed with mode = DELAYED (this follower's mode is SYNC)"));
  }

  @Test
  void aTinySpillLogAndABareDelayAreRefused() {
    assertThat(files.errors(MINIMAL + """
        followers.dr { address = "10.0.0.4:7400", root = "/srv/data", mode = DELAYED, delay = 3600, log-capacity = 1000 }
        """)).containsExactly(
            files.at(6, "followers.dr.delay: 3600 has no unit (write e.g. 500ms, 3s or 1m)"),
            files.at(6, "followers.dr.log-capacity: 1000 is below the smallest spill log, 1 MiB"));
  }

  @Test
  void anUnknownModeNamesTheFourModes() {
    assertThat(files.errors(MINIMAL + """
        followers.dr { address = "10.0.0.4:7400", root = "/srv/data", mode = LAGGING }
        """)).containsExactly(files.at(6,
            "followers.dr.mode: \"LAGGING\" is not one of SYNC, MEMORY, ASYNC, DELAYED"));
  }

  @Test
  void aFollowerMayNotTakeANodesName() {
    assertThat(files.errors(MINIMAL + """
        followers.beta { address = "10.0.0.4:7400", root = "/srv/data" }
        """)).containsExactly(files.at(6,
            "followers.beta: follower name \"beta\" is already the name of a node"));
  }

  @Test
  void aFollowerNameWithASlashIsRefused() {
    assertThat(files.errors(MINIMAL + """
        followers { "dr/1" { address = "10.0.0.4:7400", root = "/srv/data" } }
        """)).containsExactly(files.at(6, "followers.\"dr/1\": follower name \"dr/1\" must be 1-64 letters, "
            + "digits, '.', '_' or '-' and not start with '.'"));
  }

  @Test
  void aFollowerAtANodesAddressIsRefused() {
    assertThat(files.errors(MINIMAL + """
        followers.dr { address = "10.0.0.2:7400", root = "/srv/data" }
        """)).containsExactly(files.at(6,
            "followers.dr.address: \"10.0.0.2:7400\" is already used by nodes.beta.address"));
  }

  @Test
  void twoFollowersAtOneAddressAreRefused() {
    assertThat(files.errors(MINIMAL + """
        followers {
          one { address = "10.0.0.4:7400", root = "/srv/data" }
          two { address = "10.0.0.4:7400", root = "/srv/data" }
        }
        """)).containsExactly(files.at(8,
            "followers.two.address: \"10.0.0.4:7400\" is already used by followers.one.address"));
  }

  @Test
  void aFollowersAdminOnItsOwnOrANodesReplicationAddressIsRefused() {
    assertThat(files.errors(MINIMAL + """
        followers {
          one { address = "10.0.0.4:7400", root = "/srv/data", admin = "10.0.0.4:7400" }
          two { address = "10.0.0.5:7400", root = "/srv/data", admin = "10.0.0.1:7401" }
        }
        """)).containsExactly(
            files.at(7, "followers.one.admin: \"10.0.0.4:7400\" is both the replication and the admin address of "
                + "follower one"),
            files.at(8, "followers.two.admin: \"10.0.0.1:7401\" (the admin address of follower two) is already "
                + "used by nodes.alpha.agent-address (the default, port of address + 1)"));
  }

  @Test
  void aTypoInAFollowerKeyIsSuggested() {
    assertThat(files.errors(MINIMAL + """
        followers.dr { address = "10.0.0.4:7400", root = "/srv/data", dealy = 1h }
        """)).containsExactly(files.at(6, "followers.dr.dealy: unknown key (did you mean 'delay'?)"));
  }

  @Test
  void aFollowerSelectedByNodeIsNotANode() throws Exception {
    AgentConfig config = AgentConfig.load(files.write(MINIMAL + """
        followers.dr { address = "10.0.0.4:7400", root = "/srv/data" }
        """));

    assertThat(config.follower("dr")).isPresent();
    assertThat(config.node("dr")).isEmpty();
  }
}
