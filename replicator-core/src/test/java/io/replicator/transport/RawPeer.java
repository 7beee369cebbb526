package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.proto.Envelope;
import io.replicator.proto.HelloReply;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import net.jpountz.lz4.LZ4Factory;

/** A misbehaving peer: a plain blocking socket that writes whatever bytes a test wants. */
final class RawPeer implements Closeable {
  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;

  RawPeer(InetSocketAddress address) throws IOException {
    this(address, 0);
  }

  /** With a small receive buffer, a peer that stops reading backs up the sender quickly. */
  RawPeer(InetSocketAddress address, int receiveBuffer) throws IOException {
    socket = new Socket();
    if (receiveBuffer > 0) {
      socket.setReceiveBufferSize(receiveBuffer);
    }
    socket.connect(address, 5_000);
    socket.setSoTimeout(10_000);
    in = new DataInputStream(socket.getInputStream());
    out = new BufferedOutputStream(socket.getOutputStream());
  }

  RawPeer(Socket accepted) throws IOException {
    socket = accepted;
    socket.setSoTimeout(10_000);
    in = new DataInputStream(socket.getInputStream());
    out = new BufferedOutputStream(socket.getOutputStream());
  }

  void readTimeout(Duration timeout) throws SocketException {
    socket.setSoTimeout((int) timeout.toMillis());
  }

  void send(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
  }

  void send(Envelope header) throws IOException {
    send(Wire.frame(header));
  }

  /**
   * The next frame's header, or null once the other side closed (end of stream or reset). A
   * compressed frame (top bit of the length) is expanded with the reference LZ4 decoder.
   */
  Envelope read() throws IOException {
    try {
      int length = in.readInt();
      if (length < 0) {
        int rawLength = in.readInt();
        byte[] packed = new byte[(length & 0x7FFF_FFFF) - 4];
        in.readFully(packed);
        ByteBuffer body = ByteBuffer.wrap(LZ4Factory.safeInstance().safeDecompressor().decompress(packed, rawLength));
        byte[] header = new byte[body.getInt()];
        body.get(header);
        return Envelope.parseFrom(header);
      }
      int headerLength = in.readInt();
      byte[] header = new byte[headerLength];
      in.readFully(header);
      in.skipNBytes(length - 4 - headerLength);
      return Envelope.parseFrom(header);
    } catch (EOFException | SocketException e) {
      return null;
    }
  }

  /** Every frame the other side sent until it closed; a read timeout fails the test. */
  List<Envelope> readUntilClosed() throws IOException {
    List<Envelope> frames = new ArrayList<>();
    for (Envelope e = read(); e != null; e = read()) {
      frames.add(e);
    }
    return frames;
  }

  /** Sends a Hello as {@code nodeId} and expects an accepting reply. */
  HelloReply handshake(String nodeId) throws IOException {
    send(Wire.hello(nodeId));
    Envelope reply = read();
    assertThat(reply).isNotNull();
    assertThat(reply.getHelloReply().getAccepted()).as("reply %s", reply).isTrue();
    return reply.getHelloReply();
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
