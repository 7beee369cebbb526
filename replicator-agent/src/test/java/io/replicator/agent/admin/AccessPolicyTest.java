package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Who may call what, from where, decided without sending traffic: the token for every operation
 * and for reads off loopback, only this endpoint's own names as Host, and nothing from another
 * origin but a navigation to the console page.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class AccessPolicyTest {
  private static final String TOKEN = "s3cret-token-0123456789";
  private static final InetSocketAddress LOOPBACK = new InetSocketAddress(InetAddress.getLoopbackAddress(), 7480);

  @Test
  void onLoopbackReadsAreOpenAndOffLoopbackTheyNeedTheToken() {
    assertThat(AccessPolicy.forBind(LOOPBACK, TOKEN).readsNeedToken()).isFalse();
    // Only the policy is built here; nothing binds or sends to this address.
    assertThat(AccessPolicy.forBind(new InetSocketAddress("0.0.0.0", 7480), TOKEN).readsNeedToken()).isTrue();
  }

  @Test
  void checksTheBearerHeader() {
    AccessPolicy policy = AccessPolicy.forBind(LOOPBACK, TOKEN);
    assertThat(policy.check("Bearer " + TOKEN)).isEqualTo(AccessPolicy.Verdict.GRANTED);
    assertThat(policy.check("bearer " + TOKEN)).isEqualTo(AccessPolicy.Verdict.GRANTED);
    assertThat(policy.check(null)).isEqualTo(AccessPolicy.Verdict.MISSING);
    assertThat(policy.check("")).isEqualTo(AccessPolicy.Verdict.MISSING);
    assertThat(policy.check("Bearer " + TOKEN + "x")).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(policy.check("Bearer " + TOKEN.substring(1))).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(policy.check("Basic " + TOKEN)).isEqualTo(AccessPolicy.Verdict.INVALID);
    assertThat(policy.check(TOKEN)).isEqualTo(AccessPolicy.Verdict.INVALID);
  }

  @Test
  void thereIsNoServerWithoutAToken() {
    assertThatThrownBy(() -> AdminServer.start(LOOPBACK, null, new AdminHandlers()))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("token");
  }

  @Test
  void refusesUnusableTokensWithoutShowingThem() {
    assertThatThrownBy(() -> AccessPolicy.forBind(LOOPBACK, ""))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty");
    assertThatThrownBy(() -> AccessPolicy.forBind(LOOPBACK, "has space"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageNotContaining("has space");
  }

  @Test
  void onlyThisEndpointsOwnNamesAreAcceptedAsHost() {
    AccessPolicy policy = AccessPolicy.forBind(new InetSocketAddress("127.0.0.1", 7480), TOKEN);
    assertThat(policy.refusal("127.0.0.1:7480", null, null, false)).isNull();
    assertThat(policy.refusal("localhost:7480", null, null, false)).isNull();
    assertThat(policy.refusal("LOCALHOST", null, null, false)).isNull();
    assertThat(policy.refusal("[::1]:7480", null, null, false)).isNull();
    // an SSH tunnel may listen on another local port
    assertThat(policy.refusal("localhost:9000", null, null, false)).isNull();
    assertThat(policy.refusal(null, null, null, false)).as("HTTP/1.0 clients send no Host").isNull();
    // DNS rebinding: the attacker's name, resolving to 127.0.0.1
    assertThat(policy.refusal("attacker.example:7480", null, null, false)).contains("Host");
    assertThat(policy.refusal("attacker.example:7480", null, null, true)).as("even for the page").contains("Host");
    assertThat(policy.refusal("127.0.0.1.attacker.example", null, null, false)).contains("Host");
    assertThat(policy.refusal("127.0.0.1:7480@attacker.example", null, null, false)).contains("Host");
    assertThat(policy.refusal("10.1.2.3:7480", null, null, false)).contains("Host");
    assertThat(policy.refusal("", null, null, false)).contains("Host");
  }

  @Test
  void offLoopbackTheConfiguredNameAndPortAreAccepted() {
    // Only the policy: nothing binds. A name that resolves to this machine, configured as the admin address.
    AccessPolicy policy = AccessPolicy.forBind(new InetSocketAddress("localhost", 7480), TOKEN);
    assertThat(policy.refusal("localhost:7480", null, null, false)).isNull();
    AccessPolicy wildcard = AccessPolicy.forBind(new InetSocketAddress("0.0.0.0", 7480), TOKEN);
    assertThat(wildcard.refusal("127.0.0.1:7480", null, null, false)).isNull();
    assertThat(wildcard.refusal("attacker.example:7480", null, null, false)).contains("Host");
  }

  @Test
  void crossOriginRequestsAreRefusedAndOnlyTheConsolePageMayBeNavigatedTo() {
    AccessPolicy policy = AccessPolicy.forBind(new InetSocketAddress("127.0.0.1", 7480), TOKEN);
    String host = "127.0.0.1:7480";
    assertThat(policy.refusal(host, "http://127.0.0.1:7480", "same-origin", false)).isNull();
    assertThat(policy.refusal(host, null, "none", false)).as("typed in the address bar").isNull();
    assertThat(policy.refusal(host, "http://attacker.example", "cross-site", false)).contains("cross-origin");
    assertThat(policy.refusal(host, "http://127.0.0.1:8080", "same-site", false)).contains("cross-origin");
    assertThat(policy.refusal(host, "null", null, false)).contains("cross-origin");
    assertThat(policy.refusal(host, "https://127.0.0.1:7480", null, false)).contains("cross-origin");
    assertThat(policy.refusal(host, "http://localhost:7480", null, false)).as("another origin, same server")
        .contains("cross-origin");
    assertThat(policy.refusal(host, null, "cross-site", false)).contains("Sec-Fetch-Site");
    assertThat(policy.refusal(host, null, "same-site", false)).contains("Sec-Fetch-Site");
    // a link or a bookmark to the page itself, which holds no data and cannot be framed
    assertThat(policy.refusal(host, null, "cross-site", true)).isNull();
  }
}
