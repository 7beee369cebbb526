package io.replicator.transport;

/**
 * Bytes of one connection's frames before and after compression, each way. Only the connection's
 * I/O thread adds (so a volatile field needs no lock or atomic add); any thread reads.
 */
final class LinkCounters {
  private volatile long rawSent;
  private volatile long wireSent;
  private volatile long rawReceived;
  private volatile long wireReceived;

  void sent(long raw, long wire) {
    rawSent = rawSent + raw;
    wireSent = wireSent + wire;
  }

  void received(long raw, long wire) {
    rawReceived = rawReceived + raw;
    wireReceived = wireReceived + wire;
  }

  long rawSent() {
    return rawSent;
  }

  long wireSent() {
    return wireSent;
  }

  long rawReceived() {
    return rawReceived;
  }

  long wireReceived() {
    return wireReceived;
  }
}
