package io.replicator.transport;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.AttributeKey;
import io.replicator.proto.CompressionCodec;
import io.replicator.proto.Envelope;
import io.replicator.proto.Goodbye;
import io.replicator.proto.Hello;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * An established, handshaken connection to a peer. Sends are queued and written by one task per
 * burst on the connection's event loop, with one flush, so many small frames leave in few system
 * calls.
 */
public final class PeerConnection {
  /**
   * How long a closing connection may take: its last frame waiting behind queued output, then the
   * peer closing its side after reading it. Past that we close without waiting any longer.
   */
  static final long GOODBYE_GRACE_MILLIS = 500;
  /** Fired down a channel's pipeline once its last frame is written and our side of it ended. */
  static final Object OUTPUT_ENDED = new Object() {
    @Override
    public String toString() {
      return "OUTPUT_ENDED";
    }
  };
  /** Set on a channel once it is being closed with a last frame: its transport waits for it. */
  private static final AttributeKey<Boolean> CLOSING = AttributeKey.valueOf("replicator.closing");
  /** Frames written per drain before the event loop gets a turn. */
  private static final int MAX_FRAMES_PER_DRAIN = 1024;
  /**
   * Bytes queued but not yet handed to the channel beyond which the connection reads as not
   * writable: the channel's own water marks only count what the event loop has taken, so a sender
   * faster than a busy event loop would otherwise pile frames up in memory unseen.
   */
  static final long MAX_QUEUED_BYTES = 16 << 20;
  /** What a frame counts for in {@link #queuedBytes} besides its payload: its header, roughly. */
  private static final int FRAME_OVERHEAD = 64;

  private final Channel channel;
  private final Hello remoteHello;
  /** Frames sent but not yet written; drained on the event loop by one task per burst. */
  private final Queue<Frame> pending = new ConcurrentLinkedQueue<>();
  private final AtomicBoolean drainScheduled = new AtomicBoolean();
  /** Bytes of the frames in {@link #pending}, as {@link #weight} counts them. */
  private final AtomicLong queuedBytes = new AtomicLong();
  private final AtomicReference<String> closeReason = new AtomicReference<>();
  private final Runnable drainTask = this::drain;
  private final LinkCounters counters;
  private final CompressionCodec compression;

  PeerConnection(Channel channel, Hello remoteHello) {
    this(channel, remoteHello, new LinkCounters(), CompressionCodec.COMPRESSION_NONE);
  }

  PeerConnection(Channel channel, Hello remoteHello, LinkCounters counters, CompressionCodec compression) {
    this.channel = channel;
    this.remoteHello = remoteHello;
    this.counters = counters;
    this.compression = compression;
  }

  /** What the peer said about itself in the handshake (its node id, incarnation, generations). */
  public Hello remoteHello() {
    return remoteHello;
  }

  public String remoteNodeId() {
    return remoteHello.getNodeId();
  }

  public SocketAddress remoteAddress() {
    return channel.remoteAddress();
  }

  public InetSocketAddress localAddress() {
    return (InetSocketAddress) channel.localAddress();
  }

  /** The frame compression both sides agreed on in the handshake. */
  public CompressionCodec compression() {
    return compression;
  }

  /** Bytes of the frames sent so far as they were before compression (length prefixes included). */
  public long rawBytesSent() {
    return counters.rawSent();
  }

  /**
   * Bytes of the frames sent so far as they went out, compressed or not (before TLS); with
   * {@link #rawBytesSent} it gives the compression ratio.
   */
  public long wireBytesSent() {
    return counters.wireSent();
  }

  /** Bytes of the frames received so far once decompressed. */
  public long rawBytesReceived() {
    return counters.rawReceived();
  }

  /** Bytes of the frames received so far as they arrived (before decompression, after TLS). */
  public long wireBytesReceived() {
    return counters.wireReceived();
  }

  /**
   * Whether the connection still carries frames: open, and not being closed by either side. A
   * closing channel can stay open a little longer (see {@link #writeLastAndClose}), but is over.
   */
  public boolean isActive() {
    return channel.isActive() && !closing();
  }

  /**
   * Whether a sender should send more now: the channel's buffer is below its high water mark and
   * little is queued for the event loop. A sender that waits while this is false (for
   * {@link PeerListener#onWritabilityChanged}) keeps the memory a connection holds bounded.
   */
  public boolean isWritable() {
    return channel.isWritable() && queuedBytes.get() < MAX_QUEUED_BYTES;
  }

  /**
   * Stops or resumes reading from the peer: the receiving side's back-pressure, so a fast peer
   * fills its own send buffer instead of our memory.
   */
  public void setAutoRead(boolean autoRead) {
    channel.config().setAutoRead(autoRead);
  }

  /** The thread that handles this connection; use it to run code in order with its events. */
  public EventLoop eventLoop() {
    return channel.eventLoop();
  }

  /**
   * Queues a frame and makes sure a flush follows. Frames sent from one thread (or under one
   * lock) leave in the order they were sent. The frame's payload is released once written, or
   * at once when the connection is already closed.
   */
  public void send(Frame frame) {
    if (queue(frame)) {
      flushQueued();
    }
  }

  /**
   * The first half of {@link #send}: queues the frame, in order with frames queued before it, and
   * says whether {@link #flushQueued} must follow. A sender that numbers frames under a lock
   * queues under it and flushes after it, so waking the I/O thread (a system call) happens
   * outside the lock.
   */
  public boolean queue(Frame frame) {
    queuedBytes.addAndGet(weight(frame));
    pending.add(frame);
    // the flag is cleared before the drain polls, so a frame queued after that poll schedules
    // a new drain, and a frame queued before it is written (and flushed) by the running one
    return drainScheduled.compareAndSet(false, true);
  }

  /** The second half of {@link #send}: makes the I/O thread write what is queued. */
  public void flushQueued() {
    try {
      channel.eventLoop().execute(drainTask);
    } catch (RejectedExecutionException e) {
      // the I/O thread is gone, and with it the connection
      releasePending();
    }
  }

  private void drain() {
    drainScheduled.set(false);
    if (!channel.isActive()) {
      // after the channel is torn down a frame would reach the socket unencoded, and nothing
      // there knows how to release its payload
      releasePending();
      return;
    }
    // bounded, so a sender that never pauses cannot keep the event loop from reading and flushing
    boolean wasFull = queuedBytes.get() >= MAX_QUEUED_BYTES;
    int written = writePending(MAX_FRAMES_PER_DRAIN);
    if (written > 0) {
      channel.flush();
    }
    if (wasFull && queuedBytes.get() < MAX_QUEUED_BYTES) {
      // the channel's own events do not see this queue: tell the listener it may send again
      channel.pipeline().fireChannelWritabilityChanged();
    }
    if (!pending.isEmpty() && drainScheduled.compareAndSet(false, true)) {
      channel.eventLoop().execute(drainTask);
    }
  }

  private int writePending(int max) {
    int n = 0;
    for (Frame f; n < max && (f = pending.poll()) != null; n++) {
      queuedBytes.addAndGet(-weight(f));
      channel.write(f, channel.voidPromise());
    }
    return n;
  }

  private void releasePending() {
    for (Frame f = pending.poll(); f != null; f = pending.poll()) {
      queuedBytes.addAndGet(-weight(f));
      f.release();
    }
  }

  private static long weight(Frame f) {
    return f.payload().readableBytes() + FRAME_OVERHEAD;
  }

  /**
   * Sends a goodbye with a reason, then closes; frames sent before still go out first.
   * Idempotent; the first reason wins.
   */
  public void close(Goodbye.Code code, String reason) {
    if (!closeReason.compareAndSet(null, "closed by us: " + reason)) {
      return;
    }
    // nothing the peer sends from now on is reported (the handler drops it), but it is still read:
    // see writeLastAndClose
    channel.attr(CLOSING).set(Boolean.TRUE);
    Envelope bye = Envelope.newBuilder()
        .setGoodbye(Goodbye.newBuilder().setCode(code).setMessage(reason))
        .build();
    Runnable last = () -> {
      if (channel.isActive()) {
        writePending(Integer.MAX_VALUE);
        writeLastAndClose(channel, Frame.of(bye));
      } else {
        releasePending();
        channel.close();
      }
    };
    // on the event loop, behind any drain already queued, so queued frames precede the goodbye
    if (channel.eventLoop().inEventLoop()) {
      last.run();
    } else {
      try {
        channel.eventLoop().execute(last);
      } catch (RejectedExecutionException e) {
        releasePending();
        channel.close();
      }
    }
  }

  /**
   * Writes a last frame (a goodbye or a refusal), ends our side of the stream once it is written,
   * and closes when the peer closes its side, or after {@link #GOODBYE_GRACE_MILLIS} whatever
   * happened: behind a full send buffer to a peer that stopped reading, the write would never
   * complete, and a peer may never close.
   */
  static void writeLastAndClose(Channel channel, Frame last) {
    channel.attr(CLOSING).set(Boolean.TRUE);
    ChannelFuture written = channel.writeAndFlush(last);
    // one bound for the write and for the peer's answer to it
    if (!closeAfterGrace(channel)) {
      return;
    }
    written.addListener(f -> {
      if (!f.isSuccess() || !channel.isActive() || !(channel instanceof DuplexChannel duplex)) {
        channel.close();
        return;
      }
      // A socket closed with the peer's bytes unread (a heartbeat, an acknowledgement) sends a
      // reset instead of an end of stream, and a reset can destroy what the peer has not read yet:
      // this last frame and those before it, such as a hand-over's final copy marks. So only our
      // side ends here; what the peer still sends is read and dropped, and the channel closes when
      // the peer closes its side, having read everything (or when the bound above runs out).
      channel.config().setAutoRead(true);
      duplex.shutdownOutput().addListener(s -> {
        if (s.isSuccess()) {
          channel.pipeline().fireUserEventTriggered(OUTPUT_ENDED);
        } else {
          channel.close();
        }
      });
    });
  }

  /**
   * Closes {@code channel} {@link #GOODBYE_GRACE_MILLIS} from now unless it closed by then; closes
   * it at once, returning false, when its event loop is already gone.
   */
  static boolean closeAfterGrace(Channel channel) {
    try {
      ScheduledFuture<?> force = channel.eventLoop().schedule(
          () -> { channel.close(); }, GOODBYE_GRACE_MILLIS, TimeUnit.MILLISECONDS);
      channel.closeFuture().addListener(f -> force.cancel(false));
      return true;
    } catch (RejectedExecutionException e) {
      channel.close();
      return false;
    }
  }

  /**
   * Waits until every channel of {@code channels} that is closing with a last frame has closed, at
   * most {@link #GOODBYE_GRACE_MILLIS} and a little: before its I/O threads stop, a transport lets
   * those closes finish as the peer sees them, since stopping the threads would cut them short.
   */
  static void awaitClosing(Iterable<Channel> channels) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(GOODBYE_GRACE_MILLIS + 100);
    for (Channel ch : channels) {
      if (!Boolean.TRUE.equals(ch.attr(CLOSING).get())) {
        continue;
      }
      long left = deadline - System.nanoTime();
      if (left <= 0 || !ch.closeFuture().awaitUninterruptibly(TimeUnit.NANOSECONDS.toMillis(left))) {
        return;
      }
    }
  }

  /** True once the connection is being closed (by either side): later input is ignored. */
  boolean closing() {
    return closeReason.get() != null;
  }

  /** Records why the connection is closing if no reason was recorded yet. */
  void noteCloseReason(String reason) {
    closeReason.compareAndSet(null, reason);
  }

  String closeReason() {
    String r = closeReason.get();
    return r == null ? "connection closed" : r;
  }

  Channel channel() {
    return channel;
  }

  @Override
  public String toString() {
    return "peer " + remoteHello.getNodeId() + " at " + channel.remoteAddress();
  }
}
