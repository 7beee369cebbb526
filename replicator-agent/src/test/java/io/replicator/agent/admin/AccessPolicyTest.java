package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.Collections;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Who may call what, decided without sending traffic: reads open on loopback, the token required
 * off loopback, and no server off loopback without a token.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class AccessPolicyTest {
  private static final String TOKEN = "s3cret-token-0123456789";
  private static final InetSocketAddress LOOPBACK = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);

  @Test
  void loopbackWithoutTokenIsOpen() {
    AccessPolicy policy = AccessPolicy.forBind(LOOPBACK, Optional.empty());
    assertThat(policy.readsNeedToken()).isFalse();
    assertThat(policy.operationsNeedToken()).isFalse();
  }

  @Test
  void loopbackWithTokenGuardsOperationsOnly() {
    AccessPolicy policy = AccessPolicy.forBind(LOOPBACK, Optional.of(TOKEN));
    assertThat(policy.readsNeedToken()).isFalse();
    assertThat(policy.operationsNeedToken()).isTrue();
  }

  @Test
  void offLoopbackWithTokenGuardsEverything() {
    // Only the policy is built here; nothing binds or sends to this address.
    AccessPolicy policy = AccessPolicy.forBind(new InetSocketAddress("0.0.0.0", 0), Optional.of(TOKEN));
    assertThat(policy.readsNeedToken()).isTrue();
    assertThat(policy.operationsNeedToken()).isTrue();
  }

  @Test
  void checksTheBearerHeader() {
    AccessPolicy policy = AccessPolicy.forBind(LOOPBACK, Optional.of(TOKEN));
    assertThat(policy.check("Bearer " + TOKEN)).isEqualTo(AccessPolicy.Verdict.GRANTED);
    assertThat(policy.check("bearer " + TOKEN)).isEqualTo(AccessPolicy.Verdict.GRANTED);
    assertThat(policy.check(null)).isEqualTo(AccessPolicy.Verdict.MISSING);
    assertThat(policy.check("")).isEqualTo(AccessPolicy.Verdict.MISSING);
    assertThat(policy.check("Bearer " + TOKEN + "x")).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(policy.check("Bearer " + TOKEN.substring(1))).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(policy.check("Basic " + TOKEN)).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(policy.check(TOKEN)).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(AccessPolicy.forBind(LOOPBACK, Optional.empty()).check("Bearer " + TOKEN))
        .isEqualTo(AccessPolicy.Verdict.INVALID);
  }

  @Test
  void refusesUnusableTokensWithoutShowingThem() {
    assertThatThrownBy(() -> AccessPolicy.forBind(LOOPBACK, Optional.of("")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty");
    assertThatThrownBy(() -> AccessPolicy.forBind(LOOPBACK, Optional.of("has space")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageNotContaining("has space");
  }

  @Test
  void wildcardWithoutTokenIsRefusedAtStart() {
    assertThatThrownBy(() -> AdminServer.start(new InetSocketAddress("0.0.0.0", 0), Optional.empty(), new AdminHandlers()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("not loopback").hasMessageContaining("token");
  }

  @Test
  void nonLoopbackInterfaceAddressWithoutTokenIsRefusedAtStart() throws SocketException {
    Optional<InetAddress> address = nonLoopbackAddress();
    assumeTrue(address.isPresent(), "this machine has no non-loopback address");

    assertThatThrownBy(() -> AdminServer.start(new InetSocketAddress(address.get(), 0), Optional.empty(),
        new AdminHandlers()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(address.get().getHostAddress());
  }

  private static Optional<InetAddress> nonLoopbackAddress() throws SocketException {
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      if (!nic.isUp() || nic.isLoopback()) {
        continue;
      }
      for (InetAddress address : Collections.list(nic.getInetAddresses())) {
        if (address instanceof Inet4Address && !address.isLoopbackAddress()) {
          return Optional.of(address);
        }
      }
    }
    return Optional.empty();
  }
}
