package io.replicator.transport;

import io.netty.buffer.ByteBufUtil;
import io.replicator.proto.Envelope;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Keeps what a connection delivered (headers, payload copies, close reasons) and releases every frame. */
class RecordingListener implements PeerListener {
  final List<Envelope> headers = Collections.synchronizedList(new ArrayList<>());
  final List<byte[]> payloads = Collections.synchronizedList(new ArrayList<>());
  final List<String> closes = new CopyOnWriteArrayList<>();
  final List<String> threads = new CopyOnWriteArrayList<>();
  final List<Boolean> writability = new CopyOnWriteArrayList<>();

  @Override
  public void onFrame(PeerConnection connection, Frame frame) {
    try {
      headers.add(frame.header());
      payloads.add(ByteBufUtil.getBytes(frame.payload()));
    } finally {
      frame.release();
    }
  }

  @Override
  public void onClosed(PeerConnection connection, String reason) {
    closes.add(reason);
  }

  @Override
  public void onWritabilityChanged(PeerConnection connection, boolean writable) {
    writability.add(writable);
  }
}
