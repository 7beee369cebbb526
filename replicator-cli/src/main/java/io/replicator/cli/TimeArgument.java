package io.replicator.cli;

import java.time.Clock;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;

/**
 * A point in time on the command line: an ISO-8601 instant ({@code 2026-12-03T10:15:00Z}) or a
 * time ago ({@code -10m}, {@code -90s}, {@code -2h}, {@code -1d}). Anything else is a usage error.
 */
final class TimeArgument {
  private static final Pattern AGO = Pattern.compile("-(\\d{1,9})(s|m|h|d)");

  private TimeArgument() {}

  /** The instant {@code text} names, a time ago counted back from {@code clock}'s now. */
  static Instant parse(String text, Clock clock) {
    String t = text.strip();
    Matcher ago = AGO.matcher(t);
    if (ago.matches()) {
      long n = Long.parseLong(ago.group(1));
      Duration back = switch (ago.group(2)) {
        case "s" -> Duration.ofSeconds(n);
        case "m" -> Duration.ofMinutes(n);
        case "h" -> Duration.ofHours(n);
        default -> Duration.ofDays(n);
      };
      return clock.instant().minus(back);
    }
    try {
      Instant at = Instant.parse(t);
      // the range a protobuf Timestamp carries: years 1..9999
      if (at.getEpochSecond() < -62_135_596_800L || at.getEpochSecond() > 253_402_300_799L) {
        throw new DateTimeException("out of range");
      }
      return at;
    } catch (DateTimeException e) {
      throw new IllegalArgumentException("'" + AdminClient.oneLine(text) + "' is not a time: write an ISO-8601 "
          + "instant such as 2026-12-03T10:15:00Z, or a time ago such as -10m, -90s, -2h or -1d");
    }
  }

  /** Picocli's converter: a bad time is a parameter error (exit code 2) with the message above. */
  static final class Converter implements CommandLine.ITypeConverter<Instant> {
    @Override
    public Instant convert(String value) {
      try {
        return parse(value, Clock.systemUTC());
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }
}
