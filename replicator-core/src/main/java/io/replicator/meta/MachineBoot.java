package io.replicator.meta;

import io.replicator.proto.NodeMetadata;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This machine's boot, as Linux's {@code boot_id} names it, and what it says about a copy whose
 * resync data was acknowledged from the page cache: a copy recorded under another boot may have
 * lost those blocks with the machine, and is no longer a consistent copy.
 */
public final class MachineBoot {
  /** This machine's current boot; empty where the kernel does not say. */
  public static final String CURRENT = read();

  private MachineBoot() {}

  private static String read() {
    try {
      return Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip();
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  /**
   * Whether the machine went down while a resync's data was only in its page cache: during the
   * resync, or after its end but before the flush that follows it. The source forgot those blocks
   * once they were applied, so only a comparison of every block finds those that never reached the
   * disk. A process that merely died keeps its page cache, and its copy stands.
   */
  public static boolean resyncLost(NodeMetadata m, String bootNow) {
    return !m.getResyncBootId().isEmpty() && !bootNow.isEmpty() && !m.getResyncBootId().equals(bootNow);
  }
}
