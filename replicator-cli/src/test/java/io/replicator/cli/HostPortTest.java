package io.replicator.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** Admin addresses as operators write them, and where the CLI connects for each. */
class HostPortTest {
  @Test
  void hostNameIpv4AndBracketedIpv6() {
    assertThat(HostPort.parse("node-a.example:7480")).isEqualTo(new HostPort("node-a.example", 7480));
    assertThat(HostPort.parse("127.0.0.1:7480").baseUri()).hasToString("http://127.0.0.1:7480");
    assertThat(HostPort.parse("[::1]:7480").baseUri()).hasToString("http://[::1]:7480");
    assertThat(HostPort.parse("[::1]:7480")).hasToString("[::1]:7480");
  }

  @Test
  void wildcardAddressesAreReachedThroughLoopback() {
    assertThat(HostPort.parse("0.0.0.0:7480").baseUri()).hasToString("http://127.0.0.1:7480");
    assertThat(HostPort.parse("[::]:7480").baseUri()).hasToString("http://[::1]:7480");
  }

  @Test
  void malformedAddressesSayWhatIsExpected() {
    assertThatThrownBy(() -> HostPort.parse("7480")).hasMessage("'7480' is not host:port (for example 127.0.0.1:7480)");
    assertThatThrownBy(() -> HostPort.parse("::1:7480")).hasMessageContaining("is not host:port");
    assertThatThrownBy(() -> HostPort.parse("[::1]")).hasMessage("'[::1]' is not [ipv6]:port (for example [::1]:7480)");
    assertThatThrownBy(() -> HostPort.parse("host:0")).hasMessage("'host:0' has a port that is not in 1..65535");
    assertThatThrownBy(() -> HostPort.parse("bad_host:80")).hasMessage("'bad_host:80' has an invalid host name");
  }
}
