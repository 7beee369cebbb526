package io.replicator.testing;

import io.netty.util.internal.PlatformDependent;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;

/**
 * Heap and direct memory in use, for tests that must show memory stays bounded under hostile
 * input. Direct memory counts both Netty's own accounting and the JDK's buffer pool.
 */
public final class MemoryGauge {
  private MemoryGauge() {}

  /** Heap in use after a collection, in bytes (approximate: a collection is only requested). */
  public static long heapAfterGc() {
    System.gc();
    Runtime rt = Runtime.getRuntime();
    return rt.totalMemory() - rt.freeMemory();
  }

  /** Direct memory in use, in bytes. */
  public static long direct() {
    long netty = Math.max(0, PlatformDependent.usedDirectMemory());
    long jdk = 0;
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        jdk = pool.getMemoryUsed();
      }
    }
    return netty + jdk;
  }

  public static String mib(long bytes) {
    return String.format("%.1f MiB", bytes / (1024.0 * 1024.0));
  }
}
