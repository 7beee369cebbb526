package io.replicator.bench;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The floor: the least that any synchronous mirror can do on this machine, to measure Replicator
 * against. Plain blocking sockets on loopback with {@code TCP_NODELAY}; on the far side one thread
 * per connection that reads a request, does {@code pwrite} (or {@code fdatasync}) and answers; no
 * framing library, no metadata, no hand-offs between threads. The contract is SYNC's: a write is
 * made locally, then sent, and returns once the far side wrote it; a force is sent, the local
 * {@code fdatasync} runs while the far side does its own, and it returns once both are done.
 *
 * <p>Requests are a fixed header {@code byte op, int handle, long position, int length} and
 * {@code length} bytes (the data of a write, the UTF-8 name of an open, mkdir or delete); every
 * request but a close is answered with one status byte (a failure adds an int length and a
 * message). Each client thread has its own connection, so the far side runs one thread per writer.
 */
final class Floor {
  private static final byte OPEN = 1;
  private static final byte WRITE = 2;
  private static final byte FORCE = 3;
  private static final byte CLOSE = 4;
  private static final byte MKDIR = 5;
  private static final byte DELETE = 6;
  private static final int HEADER = 1 + 4 + 8 + 4;
  private static final int OPEN_CREATE = 1;
  private static final int OPEN_TRUNCATE = 2;
  private static final int MAX_PAYLOAD = 2 << 20;

  private Floor() {}

  /** The far side: accepts connections and serves each on its own thread, under {@code root}. */
  static final class Server implements Closeable {
    private final Path root;
    private final ServerSocketChannel listener;
    private final Thread acceptor;
    private final List<SocketChannel> connections = new CopyOnWriteArrayList<>();
    private volatile boolean closed;

    Server(Path root) throws IOException {
      this.root = Files.createDirectories(root).toAbsolutePath().normalize();
      this.listener = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
      this.acceptor = new Thread(this::accept, "floor-accept");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    InetSocketAddress address() throws IOException {
      return (InetSocketAddress) listener.getLocalAddress();
    }

    private void accept() {
      while (!closed) {
        try {
          SocketChannel c = listener.accept();
          c.setOption(StandardSocketOptions.TCP_NODELAY, true);
          connections.add(c);
          Thread t = new Thread(() -> serve(c), "floor-serve");
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return; // closed
        }
      }
    }

    private void serve(SocketChannel c) {
      Map<Integer, FileChannel> files = new HashMap<>();
      ByteBuffer header = ByteBuffer.allocateDirect(HEADER);
      ByteBuffer payload = ByteBuffer.allocateDirect(64 * 1024);
      ByteBuffer ok = ByteBuffer.allocateDirect(1);
      try {
        while (true) {
          header.clear();
          if (!readFully(c, header)) {
            return;
          }
          header.flip();
          byte op = header.get();
          int handle = header.getInt();
          long position = header.getLong();
          int length = header.getInt();
          if (length < 0 || length > MAX_PAYLOAD) {
            throw new IOException("floor request with " + length + " payload bytes");
          }
          if (payload.capacity() < length) {
            payload = ByteBuffer.allocateDirect(Math.max(length, payload.capacity() * 2));
          }
          payload.clear().limit(length);
          if (!readFully(c, payload)) {
            return;
          }
          payload.flip();
          String failure = null;
          try {
            switch (op) {
              case OPEN -> {
                Path p = resolve(payload);
                FileChannel f = (position & OPEN_TRUNCATE) != 0
                    ? FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        StandardOpenOption.TRUNCATE_EXISTING)
                    : FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                FileChannel old = files.put(handle, f);
                if (old != null) {
                  old.close();
                }
              }
              case WRITE -> {
                FileChannel f = file(files, handle);
                long at = position;
                while (payload.hasRemaining()) {
                  at += f.write(payload, at);
                }
              }
              case FORCE -> file(files, handle).force(position != 0);
              case CLOSE -> {
                FileChannel f = files.remove(handle);
                if (f != null) {
                  f.close();
                }
                continue; // one way: nothing waits for a close
              }
              case MKDIR -> Files.createDirectories(resolve(payload));
              case DELETE -> Files.deleteIfExists(resolve(payload));
              default -> throw new IOException("unknown floor request " + op);
            }
          } catch (IOException e) {
            failure = e.toString();
          }
          if (failure == null) {
            ok.clear().put((byte) 0).flip();
            writeFully(c, ok);
          } else {
            byte[] m = failure.getBytes(StandardCharsets.UTF_8);
            writeFully(c, ByteBuffer.allocate(5 + m.length).put((byte) 1).putInt(m.length).put(m).flip());
          }
        }
      } catch (IOException e) {
        if (!closed) {
          System.err.println("floor: connection failed: " + e);
        }
      } finally {
        for (FileChannel f : files.values()) {
          try {
            f.close();
          } catch (IOException ignored) {
            // closing after a failure
          }
        }
        try {
          c.close();
        } catch (IOException ignored) {
          // already gone
        }
      }
    }

    private static FileChannel file(Map<Integer, FileChannel> files, int handle) throws IOException {
      FileChannel f = files.get(handle);
      if (f == null) {
        throw new IOException("no open file " + handle);
      }
      return f;
    }

    private Path resolve(ByteBuffer name) throws IOException {
      byte[] b = new byte[name.remaining()];
      name.get(b);
      Path p = root.resolve(new String(b, StandardCharsets.UTF_8)).normalize();
      if (!p.startsWith(root)) {
        throw new IOException("floor path outside its root: " + p);
      }
      return p;
    }

    @Override
    public void close() throws IOException {
      closed = true;
      listener.close();
      for (SocketChannel c : connections) {
        c.close();
      }
    }
  }

  /** The near side: local files under {@code root}, each change mirrored on this thread's connection. */
  static final class Client implements Closeable {
    private final Path root;
    private final InetSocketAddress server;
    private final ThreadLocal<Connection> connection = new ThreadLocal<>();
    private final List<Connection> all = new CopyOnWriteArrayList<>();

    Client(Path root, InetSocketAddress server) throws IOException {
      this.root = Files.createDirectories(root);
      this.server = server;
    }

    private Connection connection() throws IOException {
      Connection c = connection.get();
      if (c == null) {
        c = new Connection(SocketChannel.open(server));
        c.socket.setOption(StandardSocketOptions.TCP_NODELAY, true);
        connection.set(c);
        all.add(c);
      }
      return c;
    }

    /** Opens {@code relative} for writing on both sides (created when missing), waiting for the far side. */
    File open(String relative, boolean truncate) throws IOException {
      Connection c = connection();
      FileChannel local = truncate
          ? FileChannel.open(root.resolve(relative), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
              StandardOpenOption.TRUNCATE_EXISTING)
          : FileChannel.open(root.resolve(relative), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      int handle = ++c.handles;
      try {
        c.call(OPEN, handle, OPEN_CREATE | (truncate ? OPEN_TRUNCATE : 0), name(relative));
      } catch (IOException e) {
        local.close();
        throw e;
      }
      return new File(c, handle, local);
    }

    void createDirectories(String relative) throws IOException {
      Files.createDirectories(root.resolve(relative));
      connection().call(MKDIR, 0, 0, name(relative));
    }

    void delete(String relative) throws IOException {
      Files.deleteIfExists(root.resolve(relative));
      connection().call(DELETE, 0, 0, name(relative));
    }

    private static ByteBuffer name(String relative) {
      return ByteBuffer.wrap(relative.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void close() throws IOException {
      for (Connection c : all) {
        c.socket.close();
      }
    }
  }

  /** One client thread's connection: requests go out and answers come back in order. */
  private static final class Connection {
    final SocketChannel socket;
    final ByteBuffer header = ByteBuffer.allocateDirect(HEADER);
    final ByteBuffer status = ByteBuffer.allocateDirect(1);
    final ByteBuffer[] gather = new ByteBuffer[2];
    int handles;

    Connection(SocketChannel socket) {
      this.socket = socket;
    }

    /** Sends a request (header and payload in one system call). */
    void send(byte op, int handle, long position, ByteBuffer payload) throws IOException {
      header.clear().put(op).putInt(handle).putLong(position).putInt(payload == null ? 0 : payload.remaining())
          .flip();
      if (payload == null || !payload.hasRemaining()) {
        writeFully(socket, header);
        return;
      }
      gather[0] = header;
      gather[1] = payload;
      while (payload.hasRemaining()) {
        socket.write(gather);
      }
    }

    /** Reads the answer to the oldest request; a failure on the far side becomes an IOException. */
    void answer() throws IOException {
      status.clear();
      if (!readFully(socket, status)) {
        throw new EOFException("floor server closed the connection");
      }
      if (status.get(0) != 0) {
        ByteBuffer len = ByteBuffer.allocate(4);
        readFully(socket, len);
        ByteBuffer m = ByteBuffer.allocate(len.flip().getInt());
        readFully(socket, m);
        throw new IOException("floor server: " + new String(m.array(), StandardCharsets.UTF_8));
      }
    }

    void call(byte op, int handle, long position, ByteBuffer payload) throws IOException {
      send(op, handle, position, payload);
      answer();
    }
  }

  /** A file open on both sides. */
  static final class File implements Closeable {
    private final Connection c;
    private final int handle;
    private final FileChannel local;
    private long position;

    private File(Connection c, int handle, FileChannel local) {
      this.c = c;
      this.handle = handle;
      this.local = local;
    }

    /** Writes locally, then on the far side; returns once the far side wrote it. */
    int write(ByteBuffer src, long at) throws IOException {
      ByteBuffer copy = src.duplicate();
      int n = 0;
      while (src.hasRemaining()) {
        n += local.write(src, at + n);
      }
      c.call(WRITE, handle, at, copy);
      return n;
    }

    /** A write at the current position, which then moves past it. */
    int write(ByteBuffer src) throws IOException {
      int n = write(src, position);
      position += n;
      return n;
    }

    /** Both sides' fdatasync at once; returns once both are done. */
    void force(boolean metadata) throws IOException {
      c.send(FORCE, handle, metadata ? 1 : 0, null);
      IOException localFailure = null;
      try {
        local.force(metadata);
      } catch (IOException e) {
        localFailure = e;
      }
      c.answer();
      if (localFailure != null) {
        throw localFailure;
      }
    }

    @Override
    public void close() throws IOException {
      try {
        local.close();
      } finally {
        c.send(CLOSE, handle, 0, null);
      }
    }
  }

  private static boolean readFully(SocketChannel c, ByteBuffer into) throws IOException {
    while (into.hasRemaining()) {
      if (c.read(into) < 0) {
        if (into.position() == 0) {
          return false;
        }
        throw new EOFException("connection closed mid-request");
      }
    }
    return true;
  }

  private static void writeFully(SocketChannel c, ByteBuffer from) throws IOException {
    while (from.hasRemaining()) {
      c.write(from);
    }
  }
}
