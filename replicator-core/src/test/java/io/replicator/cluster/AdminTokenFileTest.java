package io.replicator.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An agent's own admin token: made once, readable only by its user, found from the admin address alone. */
class AdminTokenFileTest {
  @TempDir Path home;

  private Function<String, String> environment() {
    return Map.of(AdminTokenFile.RUNTIME_DIRECTORY_VARIABLE, home.resolve("run").toString())::get;
  }

  @Test
  void theAgentMakesAnOwnerOnlyTokenOnceAndTheLocalClientsFindIt() throws IOException {
    Path file = AdminTokenFile.forPort(environment(), 7480);
    String token = AdminTokenFile.readOrCreate(file);
    assertThat(token).matches("[A-Za-z0-9_-]{43}");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file.getParent()))).isEqualTo("rwx------");
    assertThat(AdminTokenFile.readOrCreate(file)).as("a restart keeps the token").isEqualTo(token);
    assertThat(AdminTokenFile.find(environment(), new InetSocketAddress("127.0.0.1", 7480))).contains(token);
    assertThat(AdminTokenFile.find(environment(), InetSocketAddress.createUnresolved("localhost", 7480))).contains(token);
    assertThat(AdminTokenFile.find(environment(), new InetSocketAddress("127.0.0.1", 7481))).isEmpty();
  }

  @Test
  void aTokenIsNeverSentToAnAddressOfAnotherMachine() throws IOException {
    AdminTokenFile.readOrCreate(AdminTokenFile.forPort(environment(), 7480));
    // TEST-NET-1 (RFC 5737): never an address of this machine
    assertThat(AdminTokenFile.find(environment(), new InetSocketAddress("192.0.2.1", 7480))).isEmpty();
  }

  @Test
  void aTokenFileOthersMayReadIsRefused() throws IOException {
    Path file = AdminTokenFile.forPort(environment(), 7480);
    AdminTokenFile.readOrCreate(file);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    assertThatThrownBy(() -> AdminTokenFile.readOrCreate(file)).isInstanceOf(IOException.class)
        .hasMessageContaining("may be read by others").hasMessageNotContaining(Files.readString(file).strip());
  }
}
