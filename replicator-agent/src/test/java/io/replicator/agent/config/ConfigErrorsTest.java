package io.replicator.agent.config;

import static io.replicator.agent.config.ConfigFiles.MINIMAL;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * One test per kind of bad configuration, each asserting the exact {@code file:line: key: message}
 * line. Appended lines start at line 6 of {@link ConfigFiles#MINIMAL}.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ConfigErrorsTest {
  @TempDir java.nio.file.Path dir;
  private ConfigFiles files;

  @BeforeEach
  void setUp() {
    files = new ConfigFiles(dir);
  }

  @Test
  void missingClusterIsReportedAtTheTopOfTheFile() {
    assertThat(files.errors(MINIMAL.replace("cluster = \"orders\"", "# no cluster")))
        .containsExactly(files.at(1, "cluster: missing (required: the cluster's name)"));
  }

  @Test
  void emptyCluster() {
    assertThat(files.errors(MINIMAL.replace("\"orders\"", "\"  \"")))
        .containsExactly(files.at(1, "cluster: must not be empty (expected the cluster's name)"));
  }

  @Test
  void missingNodes() {
    assertThat(files.errors("cluster = \"orders\"\n")).containsExactly(files.at(1,
        "nodes: missing (required: exactly two nodes, e.g. nodes { alpha { ... }, beta { ... } })"));
  }

  @Test
  void oneNodeIsNotAPair() {
    assertThat(files.errors("""
        cluster = "orders"
        nodes {
          alpha { address = "10.0.0.1:7400", root = "/srv/data" }
        }
        """)).containsExactly(files.at(2, "nodes: expected exactly two nodes, found 1 (alpha)"));
  }

  @Test
  void threeNodesAreNotAPair() {
    assertThat(files.errors(MINIMAL + """
        nodes.gamma { address = "10.0.0.3:7400", root = "/srv/data" }
        """)).containsExactly(
            files.at(2, "nodes: expected exactly two nodes, found 3 (alpha, beta, gamma)"));
  }

  @Test
  void nodeNamesAreLowerCaseLettersDigitsAndDashes() {
    assertThat(files.errors(MINIMAL.replace("beta {", "Beta_2 {"))).containsExactly(files.at(4,
        "nodes.Beta_2: node name \"Beta_2\" must match [a-z0-9][a-z0-9-]* "
            + "(lower-case letters, digits and '-')"));
  }

  @Test
  void nodeKeysAreRequired() {
    assertThat(files.errors(MINIMAL.replace(", root = \"/srv/data\" }\n  beta", " }\n  beta")
        .replace("beta { address = \"10.0.0.2:7400\",", "beta {"))).containsExactly(
            files.at(3, "nodes.alpha.root: missing (required: an absolute path)"),
            files.at(4, "nodes.beta.address: missing (required: host:port)"));
  }

  @Test
  void addressWithoutPort() {
    assertThat(files.errors(MINIMAL.replace("10.0.0.1:7400", "10.0.0.1"))).containsExactly(
        files.at(3, "nodes.alpha.address: \"10.0.0.1\" has no port (expected host:port)"));
  }

  @Test
  void portOutOfRange() {
    assertThat(files.errors(MINIMAL.replace("10.0.0.2:7400", "10.0.0.2:70000"))).containsExactly(
        files.at(4, "nodes.beta.address: port 70000 in \"10.0.0.2:70000\" is not in 1..65535"));
    assertThat(files.errors(MINIMAL.replace("10.0.0.2:7400", "10.0.0.2:0"))).containsExactly(
        files.at(4, "nodes.beta.address: port 0 in \"10.0.0.2:0\" is not in 1..65535"));
  }

  @Test
  void portThatIsNotANumber() {
    assertThat(files.errors(MINIMAL.replace("10.0.0.2:7400", "10.0.0.2:http"))).containsExactly(
        files.at(4, "nodes.beta.address: \"10.0.0.2:http\" has a port that is not a number "
            + "(expected host:port)"));
  }

  @Test
  void unbracketedIpv6Address() {
    assertThat(files.errors(MINIMAL.replace("10.0.0.2:7400", "fd00::2:7400"))).containsExactly(
        files.at(4, "nodes.beta.address: \"fd00::2:7400\" has several ':' "
            + "(write an IPv6 address in brackets: [::1]:7400)"));
  }

  @Test
  void extraAddressesAreCheckedOneByOne() {
    assertThat(files.errors(MINIMAL + """
        nodes.alpha.extra-addresses = [
          "192.168.1.1:7400",
          "192.168.1.1",
          7400
        ]
        """)).containsExactly(
            files.at(8, "nodes.alpha.extra-addresses[1]: \"192.168.1.1\" has no port "
                + "(expected host:port)"),
            files.at(9, "nodes.alpha.extra-addresses[2]: expected a string \"host:port\", "
                + "found a number (7400)"));
  }

  @Test
  void twoNodesMustNotShareAnAddress() {
    assertThat(files.errors(MINIMAL.replace("10.0.0.2:7400", "10.0.0.1:7400"))).containsExactly(
        files.at(4, "nodes.beta.address: \"10.0.0.1:7400\" is already used by nodes.alpha.address"));
  }

  @Test
  void anExtraAddressOrTheWitnessMustNotRepeatANodeAddress() {
    assertThat(files.errors(MINIMAL + """
        nodes.beta.extra-addresses = [ "10.0.0.1:7400" ]
        witness { address = "10.0.0.2:7400" }
        """)).containsExactly(
            files.at(6, "nodes.beta.extra-addresses[0]: \"10.0.0.1:7400\" is already used by "
                + "nodes.alpha.address"),
            files.at(7, "witness.address: \"10.0.0.2:7400\" is already used by nodes.beta.address"));
  }

  @Test
  void adminAddressMustDifferFromTheReplicationAddress() {
    assertThat(files.errors(MINIMAL + "nodes.alpha.admin = \"10.0.0.1:7400\"\n")).containsExactly(
        files.at(6, "nodes.alpha.admin: \"10.0.0.1:7400\" is both the replication and the admin "
            + "address of node alpha"));
  }

  @Test
  void rootMustBeAbsolute() {
    assertThat(files.errors(MINIMAL.replace("root = \"/srv/data\" }\n}", "root = \"srv/data\" }\n}")))
        .containsExactly(files.at(4, "nodes.beta.root: \"srv/data\" is not an absolute path"));
  }

  @Test
  void enumsListTheirValidValues() {
    assertThat(files.errors(MINIMAL + """
        mode = FAST
        split-brain-policy = discard-all
        peer-loss-policy = WAIT
        """)).containsExactly(
            files.at(6, "mode: \"FAST\" is not one of SYNC, MEMORY, ASYNC"),
            files.at(7, "split-brain-policy: \"discard-all\" is not one of DISCONNECT, "
                + "DISCARD_LEAST_CHANGES, DISCARD_YOUNGER_PRIMARY"),
            files.at(8, "peer-loss-policy: \"WAIT\" is not one of CONTINUE, BLOCK"));
  }

  @Test
  void durationsMustBePositiveAndHaveAUnit() {
    assertThat(files.errors(MINIMAL + """
        timers {
          heartbeat = 0ms
          peer-timeout = 3
          connect-timeout = soon
        }
        block-timeout = -1s
        """)).containsExactly(
            files.at(7, "timers.heartbeat: \"0ms\" must be a positive duration"),
            files.at(8, "timers.peer-timeout: 3 has no unit (write e.g. 500ms, 3s or 1m)"),
            files.at(9, "timers.connect-timeout: \"soon\" is not a duration "
                + "(write e.g. 500ms, 3s or 1m)"),
            files.at(11, "block-timeout: \"-1s\" must be a positive duration"));
  }

  @Test
  void peerTimeoutMustBeLongerThanTheHeartbeat() {
    assertThat(files.errors(MINIMAL + """
        timers {
          heartbeat = 2s
          peer-timeout = 2000ms
        }
        """)).containsExactly(files.at(8,
            "timers.peer-timeout: peer-timeout (2s) must be longer than heartbeat (2s)"));
  }

  @Test
  void anAcknowledgementTimeoutBelowATenthOfASecondIsRefused() {
    assertThat(files.errors(MINIMAL + "timers.ack-timeout = 50ms\n")).containsExactly(files.at(6,
        "timers.ack-timeout: ack-timeout (50ms) must be at least 100ms"));
  }

  @Test
  void aLongHeartbeatAgainstTheDefaultPeerTimeoutBlamesTheHeartbeat() {
    assertThat(files.errors(MINIMAL + "timers.heartbeat = 5s\n")).containsExactly(files.at(6,
        "timers.heartbeat: peer-timeout (3s) must be longer than heartbeat (5s)"));
  }

  @Test
  void preferredPrimaryMustNameANode() {
    assertThat(files.errors(MINIMAL + "preferred-primary = gamma\n")).containsExactly(files.at(6,
        "preferred-primary: \"gamma\" is not a node (known nodes: alpha, beta)"));
  }

  @Test
  void checkerTypeMustBeKnown() {
    assertThat(files.errors(MINIMAL + """
        application.checkers = [
          { type = http, url = "http://localhost/" }
          { pidfile = "/run/app.pid" }
          "/usr/bin/true"
        ]
        """)).containsExactly(
            files.at(7, "application.checkers[0].type: \"http\" is not one of process, tcp, command"),
            files.at(8, "application.checkers[1].type: missing (required: one of process, tcp, "
                + "command)"),
            files.at(9, "application.checkers[2]: expected an object { type = ... }, found a string "
                + "(\"/usr/bin/true\")"));
  }

  @Test
  void checkersNeedTheirFieldsAndOnlyTheirFields() {
    assertThat(files.errors(MINIMAL + """
        application.checkers = [
          { type = process }
          { type = tcp, pidfile = "/run/app.pid", adress = "127.0.0.1:8080" }
          { type = command, command = "check", timeout = 0s }
        ]
        """)).containsExactly(
            files.at(7, "application.checkers[0].pidfile: missing (required: an absolute path)"),
            files.at(8, "application.checkers[1].pidfile: unknown key for a tcp checker "
                + "(it takes type, address, timeout)"),
            files.at(8, "application.checkers[1].adress: unknown key for a tcp checker "
                + "(it takes type, address, timeout) (did you mean 'address'?)"),
            files.at(8, "application.checkers[1].address: missing (required: host:port)"),
            files.at(9, "application.checkers[2].command: \"check\" is not an absolute path"),
            files.at(9, "application.checkers[2].timeout: \"0s\" must be a positive duration"));
  }

  @Test
  void scriptAndSecretPathsMustBeAbsolute() {
    assertThat(files.errors(MINIMAL + """
        application {
          start = "start.sh"
          stop = "./stop.sh"
        }
        admin-token-file = "token"
        """)).containsExactly(
            files.at(7, "application.start: \"start.sh\" is not an absolute path"),
            files.at(8, "application.stop: \"./stop.sh\" is not an absolute path"),
            files.at(10, "admin-token-file: \"token\" is not an absolute path"));
  }

  @Test
  void restartsMustBeAWholeNumberNotBelowZero() {
    assertThat(files.errors(MINIMAL + "application.restarts-before-failover = -1\n"))
        .containsExactly(files.at(6,
            "application.restarts-before-failover: -1 must be at least 0"));
    assertThat(files.errors(MINIMAL + "application.restarts-before-failover = 1.5\n"))
        .containsExactly(files.at(6,
            "application.restarts-before-failover: 1.5 is not a whole number"));
  }

  @Test
  void resyncRateMustNotBeNegative() {
    assertThat(files.errors(MINIMAL + "resync { rate = -1 }\n")).containsExactly(
        files.at(6, "resync.rate: -1 must not be negative"));
    assertThat(files.errors(MINIMAL + "resync { rate = fast }\n")).containsExactly(
        files.at(6, "resync.rate: \"fast\" is not a size in bytes (write e.g. 0, 50 MiB or 1 GiB)"));
  }

  @Test
  void wrongTypesAreNamed() {
    assertThat(files.errors(MINIMAL + """
        timers = 5s
        failover.automatic = maybe
        cluster = { name = orders }
        """)).containsExactly(
            files.at(6, "timers: expected an object { ... }, found a string (\"5s\")"),
            files.at(7, "failover.automatic: \"maybe\" is not true or false"),
            files.at(8, "cluster: expected a string, found an object"));
  }

  @Test
  void unknownKeysAreErrorsWithASuggestionWhenOneIsClose() {
    assertThat(files.errors(MINIMAL + """
        timers { peer-timout = 5s }
        clutser-name = x
        nodes.alpha.adress = "10.0.0.1:7401"
        heartbeat = 1s
        """)).containsExactly(
            files.at(6, "timers.peer-timout: unknown key (did you mean 'peer-timeout'?)"),
            files.at(7, "clutser-name: unknown key"),
            files.at(8, "nodes.alpha.adress: unknown key (did you mean 'address'?)"),
            files.at(9, "heartbeat: unknown key (did you mean 'timers.heartbeat'?)"));
  }

  @Test
  void everyErrorInTheFileIsReportedInLineOrder() {
    assertThat(files.errors("""
        cluster = ""
        mode = sync
        nodes {
          alpha { address = "10.0.0.1", root = "/srv/data" }
          beta { address = "10.0.0.2:7400", root = "data" }
        }
        timers { heartbeat = 1s, peer-timeout = 500ms }
        preferred-primary = gamma
        resync.rate = -5
        """)).containsExactly(
            files.at(1, "cluster: must not be empty (expected the cluster's name)"),
            files.at(4, "nodes.alpha.address: \"10.0.0.1\" has no port (expected host:port)"),
            files.at(5, "nodes.beta.root: \"data\" is not an absolute path"),
            files.at(7, "timers.peer-timeout: peer-timeout (500ms) must be longer than "
                + "heartbeat (1s)"),
            files.at(9, "resync.rate: -5 must not be negative"));
  }

  @Test
  void hoconSyntaxErrorsNameFileAndLine() {
    assertThat(files.errors(MINIMAL + """
        timers {
          heartbeat = 1s
          peer-timeout = [ 3s
        }
        """)).singleElement().asString().startsWith(files.at(9, "syntax error: "));
  }

  @Test
  void unresolvedSubstitutionsNameFileAndLine() {
    assertThat(files.errors(MINIMAL + "secret-file = ${REPLICATOR_TEST_UNSET_VARIABLE}\n"))
        .containsExactly(files.at(6, "Could not resolve substitution to a value: "
            + "${REPLICATOR_TEST_UNSET_VARIABLE}"));
  }

  @Test
  void aMissingFileIsNamed() {
    assertThat(org.assertj.core.api.Assertions.catchThrowableOfType(
        BadConfigurationException.class, () -> AgentConfig.load(dir.resolve("absent.conf"))))
        .extracting(BadConfigurationException::errors).asList()
        .containsExactly(dir.resolve("absent.conf") + ": no such file");
  }
}
