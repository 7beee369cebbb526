package io.replicator.cli;

import java.util.Locale;

/** Byte counts, rates and durations as an operator reads them. */
final class Units {
  private static final String[] BINARY = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

  private Units() {}

  /** 1536 → "1.5 KiB"; below 1 KiB the exact count. */
  static String bytes(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    double value = bytes;
    int unit = 0;
    while (value >= 1024 && unit < BINARY.length - 1) {
      value /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", value, BINARY[unit]);
  }

  static String rate(long bytesPerSecond) {
    return bytes(bytesPerSecond) + "/s";
  }

  /** 75 → "1 min 15 s"; negative means unknown. */
  static String seconds(long seconds) {
    if (seconds < 0) {
      return "unknown";
    }
    if (seconds < 60) {
      return seconds + " s";
    }
    if (seconds < 3600) {
      return (seconds / 60) + " min " + (seconds % 60) + " s";
    }
    return (seconds / 3600) + " h " + (seconds % 3600 / 60) + " min";
  }

  static String percent(long done, long total) {
    return total > 0 ? String.format(Locale.ROOT, "%.1f%%", 100.0 * done / total) : "-";
  }
}
