package io.replicator.testing;

import com.google.protobuf.ByteString;
import io.replicator.proto.Change;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.Hello;
import io.replicator.proto.HelloReply;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.Optional;

/**
 * A hand-driven peer on a plain socket that writes exact bytes: well-formed frames, or whatever
 * malformed input a test wants to throw at a server.
 */
public final class RawPeer implements Closeable {
  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;

  public RawPeer(InetSocketAddress address) throws IOException {
    socket = new Socket();
    socket.connect(address, 5000);
    socket.setSoTimeout(10_000);
    in = new DataInputStream(socket.getInputStream());
    out = socket.getOutputStream();
  }

  /** Encodes a frame exactly as the protocol says. */
  public static byte[] frame(Envelope header, byte[] payload) {
    byte[] h = header.toByteArray();
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + payload.length);
    b.putInt(4 + h.length + payload.length).putInt(h.length).put(h).put(payload);
    return b.array();
  }

  public static Envelope hello(int version, String cluster, String nodeId) {
    return Envelope.newBuilder().setHello(Hello.newBuilder().setProtocolVersion(version)
        .setClusterName(cluster).setNodeId(nodeId).setIncarnation(ByteString.copyFromUtf8("raw"))).build();
  }

  public void send(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
  }

  public void send(Envelope header, byte[] payload) throws IOException {
    send(frame(header, payload));
  }

  /** Sends a Hello and returns the reply. */
  public HelloReply handshake(int version, String cluster, String nodeId) throws IOException {
    send(hello(version, cluster, nodeId), new byte[0]);
    Envelope reply = readFrame().orElseThrow(() -> new EOFException("closed during handshake"));
    if (!reply.hasHelloReply()) {
      throw new IOException("expected HelloReply, got " + reply);
    }
    return reply.getHelloReply();
  }

  public void sendChange(Change change, byte[] payload) throws IOException {
    send(Envelope.newBuilder().setChange(change).build(), payload);
  }

  /** Reads one frame's header; empty at end of stream. */
  public Optional<Envelope> readFrame() throws IOException {
    int length;
    try {
      length = in.readInt();
    } catch (EOFException e) {
      return Optional.empty();
    }
    int headerLength = in.readInt();
    byte[] h = new byte[headerLength];
    in.readFully(h);
    in.skipNBytes(length - 4L - headerLength);
    return Optional.of(Envelope.parseFrom(h));
  }

  /**
   * Reads until the server closes the connection (skipping acks and pings) and returns its
   * goodbye, if it sent one. Fails if the server keeps the connection open for 10 s.
   */
  public Optional<Goodbye> awaitClosed() throws IOException {
    Goodbye bye = null;
    try {
      while (true) {
        Optional<Envelope> e = readFrame();
        if (e.isEmpty()) {
          return Optional.ofNullable(bye);
        }
        if (e.get().hasGoodbye()) {
          bye = e.get().getGoodbye();
        }
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("server did not close the connection within 10 s");
    } catch (java.net.SocketException e) {
      return Optional.ofNullable(bye); // reset: closed
    }
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
