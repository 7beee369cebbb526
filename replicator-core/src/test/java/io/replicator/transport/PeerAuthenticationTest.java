package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import io.replicator.LinkSecurity;
import io.replicator.proto.AuthResponse;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.Hello;
import io.replicator.proto.Ping;
import io.replicator.testing.LogCapture;
import io.replicator.testing.TestCertificates;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who may talk to a node on a secured link: the shared-secret proof (mutual) and mutual TLS.
 * Every refusal happens in the handshake, before the acceptor is asked or any frame reaches a
 * listener, is logged once by the refusing side, and never shows the secret.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PeerAuthenticationTest extends TransportFixture {
  private static final String SECRET_TEXT = "correct-horse-battery-staple-7731";
  private static final byte[] SECRET = SECRET_TEXT.getBytes(StandardCharsets.US_ASCII);
  private static final byte[] OTHER_SECRET = "another-cluster-secret-0000".getBytes(StandardCharsets.US_ASCII);

  @TempDir static Path certs;
  private static LinkSecurity serverTls;
  private static LinkSecurity clientTls;
  private static LinkSecurity strangerTls;

  private LogCapture logs;

  @BeforeAll
  static void makeCertificates() throws IOException {
    TestCertificates cluster = TestCertificates.authority(certs.resolve("cluster"), "cluster-ca");
    serverTls = cluster.issue("server");
    clientTls = cluster.issue("client");
    strangerTls = TestCertificates.authority(certs.resolve("stranger"), "stranger-ca").issue("stranger");
  }

  @BeforeEach
  void captureLogs() {
    logs = LogCapture.start();
  }

  @AfterEach
  void checkNoSecretWasLogged() {
    try {
      assertNoSecretIn(logs.lines());
    } finally {
      logs.close();
    }
  }

  private static TransportSettings secured(String nodeId, LinkSecurity security) {
    return Wire.settings(nodeId).withSecurity(security);
  }

  private PeerConnection connect(TransportServer server, TransportSettings client) throws Exception {
    return result(client(client).connect(server.localAddress(), null, new RecordingListener()));
  }

  private static void assertNoSecretIn(List<String> texts) {
    String hex = HexFormat.of().formatHex(SECRET);
    for (String t : texts) {
      assertThat(t).doesNotContain(SECRET_TEXT).doesNotContainIgnoringCase(hex);
    }
  }

  /** Waits for the server's refusal line and checks it is the only one for that connection. */
  private void assertRefusedOnceByServer(TransportServer server, String reason) {
    String serverSide = ":" + server.localAddress().getPort();
    await().atMost(Duration.ofSeconds(10)).until(() -> refusalsByServer(serverSide, reason).size() >= 1);
    assertThat(refusalsByServer(serverSide, reason)).as("%s", logs.warnings()).hasSize(1);
  }

  private List<String> refusalsByServer(String serverSide, String reason) {
    // the server names the client's address, the client names the server's port
    return logs.warnings().stream().filter(l -> l.contains(reason) && !l.contains(serverSide)).toList();
  }

  @Test
  void nodesWithTheSameSecretConnectAndExchangeFrames() throws Exception {
    TransportServer server = server(secured("server", LinkSecurity.sharedSecret(SECRET)));
    PeerConnection c = connect(server, secured("client", LinkSecurity.sharedSecret(SECRET)));
    c.send(Frame.of(Wire.change(1)));
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.headers.size() == 1);
    assertThat(accepted).hasSize(1);
  }

  @Test
  void wrongSecretIsRefusedBeforeAnyFileOperation() throws Exception {
    TransportServer server = server(secured("server", LinkSecurity.sharedSecret(SECRET)));
    assertThatThrownBy(() -> connect(server, secured("client", LinkSecurity.sharedSecret(OTHER_SECRET))))
        .isInstanceOf(PeerRefusedException.class)
        .hasMessageContaining("authentication failed")
        .satisfies(e -> assertNoSecretIn(List.of(e.toString())));
    assertThat(accepted).as("the acceptor never hears of the peer").isEmpty();
    assertThat(serverListener.headers).isEmpty();
    assertRefusedOnceByServer(server, "does not hold this cluster's shared secret");
  }

  @Test
  void peerWithoutSecretIsRefusedByASecuredNode() throws Exception {
    TransportServer server = server(secured("server", LinkSecurity.sharedSecret(SECRET)));
    assertThatThrownBy(() -> connect(server, Wire.settings("client")))
        .isInstanceOf(PeerRefusedException.class)
        .hasMessageContaining("authentication required");
    assertThat(accepted).isEmpty();
    assertRefusedOnceByServer(server, "authentication required");
  }

  @Test
  void securedNodeRefusesAPeerThatCannotProveTheSecret() throws Exception {
    // mutual: a node impersonating the replica without the secret is not sent anything
    TransportServer server = server(Wire.settings("impostor"));
    assertThatThrownBy(() -> connect(server, secured("client", LinkSecurity.sharedSecret(SECRET))))
        .hasMessageContaining("authentication failed")
        .hasMessageContaining("without the shared-secret handshake");
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.closes.size() == 1);
    assertThat(serverListener.headers).as("the client sent nothing after the handshake").isEmpty();
  }

  @Test
  void peerThatSkipsTheProofCannotSendChanges() throws Exception {
    TransportServer server = server(secured("server", LinkSecurity.sharedSecret(SECRET)));
    RawPeer peer = raw(server.localAddress());
    peer.send(helloWithNonce(PeerAuth.nonce()));
    assertThat(peer.read().hasAuthChallenge()).isTrue();
    peer.send(Wire.change(1));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).hasSize(1);
    assertThat(sent.get(0).getGoodbye().getCode()).isEqualTo(Goodbye.Code.PROTOCOL_ERROR);
    assertThat(sent.get(0).getGoodbye().getMessage()).contains("expected AuthResponse, got CHANGE");
    assertThat(accepted).isEmpty();
    assertThat(serverListener.headers).isEmpty();
  }

  @Test
  void aProofRecordedOnOneConnectionIsRefusedOnTheNext() throws Exception {
    TransportServer server = server(secured("server", LinkSecurity.sharedSecret(SECRET)));
    PeerAuth auth = new PeerAuth(SECRET);
    ByteString nonce = PeerAuth.nonce();
    ByteString recorded;
    try (RawPeer first = new RawPeer(server.localAddress())) {
      first.send(helloWithNonce(nonce));
      ByteString challenge = first.read().getAuthChallenge().getNonce();
      recorded = auth.proof(PeerAuth.Role.CONNECTING, Wire.CLUSTER, nonce, challenge);
      first.send(Envelope.newBuilder().setAuthResponse(AuthResponse.newBuilder().setProof(recorded)).build());
      assertThat(first.read().getHelloReply().getAccepted()).as("a correct proof is accepted").isTrue();
    }
    RawPeer replay = raw(server.localAddress());
    replay.send(helloWithNonce(nonce));
    assertThat(replay.read().hasAuthChallenge()).isTrue();
    replay.send(Envelope.newBuilder().setAuthResponse(AuthResponse.newBuilder().setProof(recorded)).build());
    Envelope reply = replay.read();
    assertThat(reply.getHelloReply().getAccepted()).isFalse();
    assertThat(reply.getHelloReply().getReason()).contains("authentication failed");
    assertThat(accepted).hasSize(1);
  }

  @Test
  void proofsAreBoundToRoleClusterAndBothNonces() {
    PeerAuth auth = new PeerAuth(SECRET);
    ByteString a = PeerAuth.nonce();
    ByteString b = PeerAuth.nonce();
    ByteString proof = auth.proof(PeerAuth.Role.CONNECTING, "c", a, b);
    assertThat(auth.verify(proof, PeerAuth.Role.CONNECTING, "c", a, b)).isTrue();
    assertThat(auth.verify(proof, PeerAuth.Role.ACCEPTING, "c", a, b)).as("role").isFalse();
    assertThat(auth.verify(proof, PeerAuth.Role.CONNECTING, "d", a, b)).as("cluster").isFalse();
    assertThat(auth.verify(proof, PeerAuth.Role.CONNECTING, "c", b, a)).as("nonces swapped").isFalse();
    assertThat(new PeerAuth(OTHER_SECRET).verify(proof, PeerAuth.Role.CONNECTING, "c", a, b)).isFalse();
    assertThat(auth.verify(ByteString.EMPTY, PeerAuth.Role.CONNECTING, "c", a, b)).as("empty proof").isFalse();
  }

  @Test
  void mutualTlsConnectsWithCertificatesOfTheClusterAuthority() throws Exception {
    TransportServer server = server(secured("server", serverTls));
    PeerConnection c = connect(server, secured("client", clientTls));
    c.send(Frame.of(Wire.change(1)));
    await().atMost(Duration.ofSeconds(5)).until(() -> serverListener.headers.size() == 1);
  }

  @Test
  void theJdkTlsFallbackConnectsAndRefusesLikeBoringSsl() throws Exception {
    System.setProperty("replicator.tls.jdk", "true");
    try {
      assertThat(TlsContexts.provider()).isEqualTo(io.netty.handler.ssl.SslProvider.JDK);
      TransportServer server = server(secured("server", serverTls));
      PeerConnection c = connect(server, secured("client", clientTls));
      assertThat(c.isActive()).isTrue();
      assertThatThrownBy(() -> connect(server, secured("stranger", LinkSecurity.tls(
          strangerTls.tls().orElseThrow().certificateChain(), strangerTls.tls().orElseThrow().privateKey(),
          serverTls.tls().orElseThrow().trustedCertificates())))).isInstanceOf(IOException.class);
      assertThat(accepted).hasSize(1);
    } finally {
      System.clearProperty("replicator.tls.jdk");
    }
  }

  @Test
  void tlsAndSharedSecretTogetherConnect() throws Exception {
    TransportServer server = server(secured("server", serverTls.withSharedSecret(SECRET)));
    PeerConnection c = connect(server, secured("client", clientTls.withSharedSecret(SECRET)));
    assertThat(c.isActive()).isTrue();
  }

  @Test
  void certificateOfAnotherAuthorityIsRefusedBeforeAnyFileOperation() throws Exception {
    TransportServer server = server(secured("server", serverTls));
    // the stranger trusts the server's authority, but the server does not trust the stranger's
    LinkSecurity stranger = LinkSecurity.tls(strangerTls.tls().orElseThrow().certificateChain(),
        strangerTls.tls().orElseThrow().privateKey(), serverTls.tls().orElseThrow().trustedCertificates());
    assertThatThrownBy(() -> connect(server, secured("stranger", stranger))).isInstanceOf(IOException.class);
    assertThat(accepted).isEmpty();
    assertRefusedOnceByServer(server, "TLS handshake failed");
  }

  @Test
  void serverWithACertificateOfAnotherAuthorityIsRefusedByTheClient() throws Exception {
    TransportServer server = server(secured("server", LinkSecurity.tls(
        strangerTls.tls().orElseThrow().certificateChain(), strangerTls.tls().orElseThrow().privateKey(),
        clientTls.tls().orElseThrow().trustedCertificates())));
    assertThatThrownBy(() -> connect(server, secured("client", clientTls)))
        .isInstanceOf(IOException.class).hasMessageContaining("TLS handshake failed");
    assertThat(serverListener.headers).isEmpty();
  }

  @Test
  void plaintextClientIsRefusedByATlsServer() throws Exception {
    TransportServer server = server(secured("server", serverTls));
    assertThatThrownBy(() -> connect(server, Wire.settings("client"))).isInstanceOf(IOException.class);
    assertThat(accepted).isEmpty();
    assertRefusedOnceByServer(server, "the peer does not speak TLS");
  }

  @Test
  void tlsClientAgainstAPlaintextServerSaysSo() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    assertThatThrownBy(() -> connect(server, secured("client", clientTls))).isInstanceOf(IOException.class);
    assertThat(accepted).isEmpty();
    assertRefusedOnceByServer(server, "the peer speaks TLS and this node does not");
  }

  @Test
  void rawBytesOnATlsPortNeverReachTheHandshake() throws Exception {
    TransportServer server = server(secured("server", serverTls));
    RawPeer peer = raw(server.localAddress());
    peer.send(Wire.frame(Envelope.newBuilder().setPing(Ping.newBuilder().setSentNanos(1)).build()));
    peer.readUntilClosed();
    assertThat(accepted).isEmpty();
    assertThat(serverListener.headers).isEmpty();
  }

  @Test
  void settingsAndSecurityNeverPrintTheSecret() {
    LinkSecurity security = LinkSecurity.sharedSecret(SECRET).withTls(Path.of("a.pem"), Path.of("k.pem"),
        Path.of("ca.pem"));
    assertNoSecretIn(List.of(security.toString(), secured("n", security).toString()));
    assertThat(security.toString()).contains("shared secret").contains("a.pem");
    assertThatThrownBy(() -> LinkSecurity.sharedSecret("tiny1".getBytes(StandardCharsets.US_ASCII)))
        .hasMessageContaining("5 bytes").hasMessageNotContaining("tiny1");
  }

  private static Envelope helloWithNonce(ByteString nonce) {
    return Envelope.newBuilder().setHello(Hello.newBuilder()
        .setProtocolVersion(TransportSettings.PROTOCOL_VERSION).setClusterName(Wire.CLUSTER).setNodeId("raw")
        .setAuthNonce(nonce)).build();
  }
}
