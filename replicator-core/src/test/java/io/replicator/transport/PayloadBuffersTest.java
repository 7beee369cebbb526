package io.replicator.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import org.junit.jupiter.api.Test;

class PayloadBuffersTest {
  @Test
  void aReleasedCopyIsReusedAndHoldsOnlyWhatWasWritten() {
    PayloadBuffers buffers = new PayloadBuffers(4L << 20);
    ByteBuf first = buffers.take(600_000);
    assertThat(first.readableBytes()).isZero();
    assertThat(first.writableBytes()).isGreaterThanOrEqualTo(600_000);
    first.writeBytes(new byte[600_000]);
    long address = first.memoryAddress();
    first.release();
    assertThat(buffers.keptBytes()).isEqualTo(1 << 20);
    ByteBuf second = buffers.take(700_000);
    assertThat(second.memoryAddress()).as("the same memory again").isEqualTo(address);
    assertThat(second.readableBytes()).isZero();
    assertThat(buffers.keptBytes()).isZero();
    second.release();
  }

  @Test
  void whatIsKeptStaysWithinItsBound() {
    PayloadBuffers buffers = new PayloadBuffers(2L << 20);
    ByteBuf[] taken = new ByteBuf[5];
    for (int i = 0; i < taken.length; i++) {
      taken[i] = buffers.take(TransportSettings.MAX_PAYLOAD);
    }
    for (ByteBuf b : taken) {
      b.release();
    }
    assertThat(buffers.keptBytes()).isEqualTo(2L << 20);
  }

  @Test
  void sizesGoToTheSmallestClassThatHoldsThem() {
    assertThat(PayloadBuffers.sizeClass(1)).isZero();
    assertThat(PayloadBuffers.sizeClass(PayloadBuffers.MIN_SIZE)).isZero();
    assertThat(PayloadBuffers.sizeClass(PayloadBuffers.MIN_SIZE + 1)).isEqualTo(1);
    assertThat(PayloadBuffers.sizeClass(TransportSettings.MAX_PAYLOAD)).isEqualTo(3);
    assertThat(PayloadBuffers.sizeClass(TransportSettings.MAX_PAYLOAD + 1)).isEqualTo(4);
    assertThat(PayloadBuffers.sizeClass(PayloadBuffers.MAX_SIZE)).isEqualTo(4);
    assertThat(PayloadBuffers.sizeClass(PayloadBuffers.MAX_SIZE + 1)).isEqualTo(-1);
  }
}
