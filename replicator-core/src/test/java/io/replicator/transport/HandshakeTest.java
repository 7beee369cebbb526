package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.replicator.proto.Envelope;
import io.replicator.proto.GenerationIds;
import io.replicator.proto.Goodbye;
import io.replicator.proto.HelloReply;
import io.replicator.proto.Ping;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Who may connect: version, cluster and node-id checks, acceptor refusals, and a good handshake. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HandshakeTest extends TransportFixture {

  private HelloReply refusalFor(Envelope hello) throws Exception {
    TransportServer server = server(Wire.settings("server"));
    RawPeer peer = raw(server.localAddress());
    peer.send(hello);
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).hasSize(1);
    assertThat(sent.get(0).hasHelloReply()).as("%s", sent).isTrue();
    HelloReply reply = sent.get(0).getHelloReply();
    assertThat(reply.getAccepted()).isFalse();
    assertThat(accepted).as("the acceptor is not asked").isEmpty();
    return reply;
  }

  @Test
  void wrongProtocolVersionIsRefused() throws Exception {
    int other = TransportSettings.PROTOCOL_VERSION + 1;
    assertThat(refusalFor(Wire.hello(other, Wire.CLUSTER, "client")).getReason())
        .contains("protocol version " + other + " is not supported");
  }

  @Test
  void emptyNodeIdIsRefused() throws Exception {
    assertThat(refusalFor(Wire.hello("")).getReason()).contains("no node id");
  }

  @Test
  void rawHelloFromAnotherClusterIsRefused() throws Exception {
    assertThat(refusalFor(Wire.hello(TransportSettings.PROTOCOL_VERSION, "elsewhere", "client")).getReason())
        .contains("cluster 'elsewhere' is not this node's cluster");
  }

  @Test
  void nonHelloFirstFrameIsAProtocolError() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    RawPeer peer = raw(server.localAddress());
    peer.send(Envelope.newBuilder().setPing(Ping.newBuilder().setSentNanos(1)).build());
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).hasSize(1);
    assertThat(sent.get(0).getGoodbye().getCode()).isEqualTo(Goodbye.Code.PROTOCOL_ERROR);
    assertThat(sent.get(0).getGoodbye().getMessage()).contains("expected Hello first, got PING");
  }

  @Test
  void secondHelloAfterTheHandshakeIsAProtocolError() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    RawPeer peer = raw(server.localAddress());
    peer.handshake("client");
    peer.send(Wire.hello("client"));
    List<Envelope> sent = peer.readUntilClosed();
    assertThat(sent).last().satisfies(e -> assertThat(e.getGoodbye().getMessage()).contains("second handshake"));
  }

  @Test
  void clientOfAnotherClusterIsRefusedWithTheReason() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    CompletableFuture<PeerConnection> f = client(Wire.settings("other-cluster", "client"))
        .connect(server.localAddress(), null, new RecordingListener());
    assertThatThrownBy(() -> result(f)).isInstanceOf(PeerRefusedException.class)
        .hasMessageContaining("cluster 'other-cluster' is not this node's cluster 'test-cluster'");
  }

  @Test
  void clientUsingTheServersNodeIdIsRefused() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    CompletableFuture<PeerConnection> f = client(Wire.settings("server"))
        .connect(server.localAddress(), null, new RecordingListener());
    assertThatThrownBy(() -> result(f)).isInstanceOf(PeerRefusedException.class)
        .hasMessageContaining("peer uses this node's own id 'server'");
  }

  @Test
  void acceptorRefusalReachesTheClient() throws Exception {
    TransportServer server = server(Wire.settings("server"),
        c -> PeerAcceptor.Decision.refuse("already connected to " + c.remoteNodeId()));
    CompletableFuture<PeerConnection> f = client(Wire.settings("client"))
        .connect(server.localAddress(), null, new RecordingListener());
    assertThatThrownBy(() -> result(f)).isInstanceOf(PeerRefusedException.class)
        .hasMessageContaining("already connected to client");
  }

  @Test
  void acceptorThatThrowsRefusesInsteadOfBreakingTheServer() throws Exception {
    boolean[] first = {true};
    TransportServer server = server(Wire.settings("server"), c -> {
      if (first[0]) {
        first[0] = false;
        throw new IllegalStateException("boom");
      }
      accepted.add(c);
      return PeerAcceptor.Decision.accept(serverListener, null);
    });
    TransportClient client = client(Wire.settings("client"));
    assertThatThrownBy(() -> result(client.connect(server.localAddress(), null, new RecordingListener())))
        .isInstanceOf(PeerRefusedException.class).hasMessageContaining("internal error while accepting")
        .hasMessageContaining("boom");
    assertThat(result(client.connect(server.localAddress(), null, new RecordingListener())).isActive()).isTrue();
  }

  @Test
  void successfulHandshakeTellsBothSidesWhoTheOtherIs() throws Exception {
    TransportServer server = server(Wire.settings("server"));
    GenerationIds clientGenerations = GenerationIds.newBuilder().setCurrent(7).addHistory(3).build();
    PeerConnection c = result(client(Wire.settings("client"))
        .connect(server.localAddress(), clientGenerations, new RecordingListener()));
    assertThat(c.remoteNodeId()).isEqualTo("server");
    assertThat(c.remoteHello().getGenerations().getCurrent()).isEqualTo(42);
    assertThat(c.remoteHello().getIncarnation().size()).isEqualTo(16);
    assertThat(accepted).hasSize(1);
    PeerConnection s = accepted.get(0);
    assertThat(s.remoteNodeId()).isEqualTo("client");
    assertThat(s.remoteHello().getGenerations()).isEqualTo(clientGenerations);
    assertThat(s.remoteHello().getClusterName()).isEqualTo(Wire.CLUSTER);
  }

  // --- the client's side of the handshake, against a raw server socket

  private ServerSocket rawServer() throws IOException {
    ServerSocket ss = closeLater(new ServerSocket(0, 10, Wire.loopback().getAddress()));
    ss.setSoTimeout(10_000);
    return ss;
  }

  private java.net.InetSocketAddress address(ServerSocket ss) {
    return new java.net.InetSocketAddress(ss.getInetAddress(), ss.getLocalPort());
  }

  @Test
  void clientRejectsAReplyFromAnotherCluster() throws Exception {
    ServerSocket ss = rawServer();
    CompletableFuture<PeerConnection> f = client(Wire.settings("client"))
        .connect(address(ss), null, new RecordingListener());
    RawPeer server = closeLater(new RawPeer(ss.accept()));
    assertThat(server.read().hasHello()).isTrue();
    server.send(Envelope.newBuilder().setHelloReply(HelloReply.newBuilder().setAccepted(true)
        .setProtocolVersion(TransportSettings.PROTOCOL_VERSION).setClusterName("elsewhere").setNodeId("server")).build());
    assertThatThrownBy(() -> result(f)).isInstanceOf(IOException.class)
        .hasMessageContaining("cluster 'elsewhere'");
    List<Envelope> sent = server.readUntilClosed();
    assertThat(sent).hasSize(1);
    assertThat(sent.get(0).getGoodbye().getCode()).isEqualTo(Goodbye.Code.REFUSED);
  }

  @Test
  void goodbyeDuringTheHandshakeFailsTheClientWithThePeersReason() throws Exception {
    ServerSocket ss = rawServer();
    CompletableFuture<PeerConnection> f = client(Wire.settings("client"))
        .connect(address(ss), null, new RecordingListener());
    RawPeer server = closeLater(new RawPeer(ss.accept()));
    assertThat(server.read().hasHello()).isTrue();
    server.send(Envelope.newBuilder().setGoodbye(Goodbye.newBuilder()
        .setCode(Goodbye.Code.SHUTDOWN).setMessage("node is shutting down")).build());
    assertThatThrownBy(() -> result(f)).isInstanceOf(IOException.class)
        .hasMessageContaining("node is shutting down");
  }

  @Test
  void silentServerFailsTheClientAfterTheHandshakeTimeout() throws Exception {
    ServerSocket ss = rawServer();
    TransportSettings settings = Wire.settings("client", Duration.ofMillis(100), Duration.ofSeconds(5),
        Duration.ofMillis(400));
    long start = System.nanoTime();
    CompletableFuture<PeerConnection> f = client(settings).connect(address(ss), null, new RecordingListener());
    RawPeer server = closeLater(new RawPeer(ss.accept()));
    assertThat(server.read().hasHello()).isTrue();
    assertThatThrownBy(() -> result(f)).isInstanceOf(IOException.class).hasMessageContaining("no handshake within 400 ms");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isBetween(Duration.ofMillis(350), Duration.ofSeconds(3));
  }

  @Test
  void connectionRefusedFailsTheFuture() throws Exception {
    ServerSocket ss = new ServerSocket(0, 10, Wire.loopback().getAddress());
    java.net.InetSocketAddress gone = address(ss);
    ss.close();
    CompletableFuture<PeerConnection> f = client(Wire.settings("client")).connect(gone, null, new RecordingListener());
    assertThatThrownBy(() -> result(f)).isInstanceOf(IOException.class).hasMessageContaining("cannot connect");
  }
}
