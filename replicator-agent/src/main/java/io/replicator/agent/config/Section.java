package io.replicator.agent.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigList;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigOrigin;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.net.InetSocketAddress;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Typed, validating access to the keys of one HOCON object. A bad value is reported to
 * {@link Problems} with its line and full key, and the getter returns the default (or empty), so
 * parsing continues and every error is found in one pass.
 */
final class Section {
  private static final ConfigRenderOptions CONCISE = ConfigRenderOptions.concise();

  private final ConfigObject object;
  /** The full key of this object followed by a dot, or "" at the top: error messages show it. */
  private final String prefix;
  /** The line reported for a missing key: the line where this object starts. */
  private final int line;
  private final ConfigOrigin origin;
  private final Problems problems;

  /**
   * @param missingLine the line reported for keys missing from this object (its own line, or the
   *     parent's line when the object itself is absent)
   */
  Section(ConfigObject object, String prefix, Problems problems, int missingLine) {
    this.object = object;
    this.prefix = prefix;
    this.origin = object.origin();
    this.line = origin.lineNumber() > 0 ? origin.lineNumber() : Math.max(1, missingLine);
    this.problems = problems;
  }

  /** The full key of {@code key} in this object, quoted where HOCON needs it. */
  String fullKey(String key) {
    return prefix + ConfigUtil.joinPath(key);
  }

  int line() {
    return line;
  }

  ConfigOrigin origin() {
    return origin;
  }

  /** Reports an error about {@code key}, at its line if it is present, else at this object's line. */
  void error(String key, String message) {
    ConfigValue value = object.get(key);
    problems.add(value != null ? value.origin() : origin, line, fullKey(key), message);
  }

  /** The value of {@code key}; empty when absent or {@code null}, which HOCON uses for "unset". */
  Optional<ConfigValue> value(String key) {
    ConfigValue value = object.get(key);
    return value == null || value.valueType() == ConfigValueType.NULL
        ? Optional.empty() : Optional.of(value);
  }

  /** Reports an error about element {@code index} of the list {@code key}. */
  void elementError(String key, int index, ConfigValue element, String message) {
    problems.add(element.origin(), line, fullKey(key) + "[" + index + "]", message);
  }

  /** Element {@code index} of the list {@code key}, which is an object. */
  Section element(String key, int index, ConfigObject element) {
    return new Section(element, fullKey(key) + "[" + index + "].", problems, line);
  }

  /**
   * Reports every key not in {@code known}: a typo must not silently leave a default in force. The
   * message suggests a known key close in spelling, or the full key when it belongs in another
   * section.
   */
  void allowOnly(List<String> known, String what) {
    for (String key : object.keySet()) {
      if (!known.contains(key)) {
        String hint = suggestion(key, known);
        // A key at the wrong level ("heartbeat" at the top) is pointed to its section; not for
        // checkers, whose keys depend on their type and are listed in {@code what} instead.
        if (hint.isEmpty() && what.isEmpty()) {
          List<String> elsewhere = ConfigKeys.documentedKeys().stream()
              .filter(k -> k.endsWith("." + key))
              .toList();
          hint = elsewhere.size() == 1 ? " (did you mean '" + elsewhere.get(0) + "'?)" : "";
        }
        error(key, "unknown key" + what + hint);
      }
    }
  }

  /** The nested object {@code key}, or an empty one (at this object's line) when it is absent. */
  Section section(String key) {
    Optional<ConfigValue> value = value(key);
    if (value.isPresent() && value.get().valueType() == ConfigValueType.OBJECT) {
      return new Section((ConfigObject) value.get(), fullKey(key) + ".", problems, line);
    }
    value.ifPresent(v -> error(key, "expected an object { ... }, found " + describe(v)));
    return new Section(ConfigFactory.empty().root(), fullKey(key) + ".", problems, line);
  }

  ConfigObject object() {
    return object;
  }

  /** A string value (numbers and booleans are taken as written); empty when absent or wrong. */
  Optional<String> string(String key) {
    Optional<ConfigValue> value = value(key);
    if (value.isEmpty()) {
      return Optional.empty();
    }
    return switch (value.get().valueType()) {
      case STRING, NUMBER, BOOLEAN -> Optional.of(String.valueOf(value.get().unwrapped()));
      default -> {
        error(key, "expected a string, found " + describe(value.get()));
        yield Optional.empty();
      }
    };
  }

  /** A required, non-blank string; null (with an error) when absent or blank. */
  String requiredString(String key, String expected) {
    if (value(key).isEmpty()) {
      error(key, "missing (required: " + expected + ")");
      return null;
    }
    String text = string(key).orElse(null);
    if (text != null && text.isBlank()) {
      error(key, "must not be empty (expected " + expected + ")");
      return null;
    }
    return text;
  }

  /** An enum value, case-insensitive, with '-' accepted for '_'. */
  <E extends Enum<E>> E enumValue(String key, Class<E> type, E defaultValue) {
    Optional<String> text = string(key);
    if (text.isEmpty()) {
      return defaultValue;
    }
    String wanted = text.get().trim().toUpperCase(Locale.ROOT).replace('-', '_');
    for (E constant : type.getEnumConstants()) {
      if (constant.name().equals(wanted)) {
        return constant;
      }
    }
    error(key, quote(text.get()) + " is not one of "
        + Arrays.stream(type.getEnumConstants()).map(Enum::name).collect(Collectors.joining(", ")));
    return defaultValue;
  }

  /** A positive duration with a unit (500ms, 3s, 1m). */
  Duration duration(String key, Duration defaultValue) {
    Optional<ConfigValue> value = value(key);
    if (value.isEmpty()) {
      return defaultValue;
    }
    // A bare number means milliseconds to HOCON; "peer-timeout = 3" would then silently be 3 ms.
    if (value.get().valueType() == ConfigValueType.NUMBER) {
      error(key, render(value.get()) + " has no unit (write e.g. 500ms, 3s or 1m)");
      return defaultValue;
    }
    Duration duration;
    try {
      duration = object.toConfig().getDuration(ConfigUtil.joinPath(key));
    } catch (ConfigException e) {
      error(key, render(value.get()) + " is not a duration (write e.g. 500ms, 3s or 1m)");
      return defaultValue;
    }
    if (duration.isNegative() || duration.isZero()) {
      error(key, render(value.get()) + " must be a positive duration");
      return defaultValue;
    }
    return duration;
  }

  /** A size in bytes, as a number or with a unit ("50 MiB"); must not be negative. */
  long bytes(String key, long defaultValue) {
    Optional<ConfigValue> value = value(key);
    if (value.isEmpty()) {
      return defaultValue;
    }
    // Typesafe Config refuses negative sizes as unparseable; say what is actually wrong.
    if (String.valueOf(value.get().unwrapped()).trim().startsWith("-")) {
      error(key, render(value.get()) + " must not be negative");
      return defaultValue;
    }
    long bytes;
    try {
      bytes = object.toConfig().getBytes(ConfigUtil.joinPath(key));
    } catch (ConfigException e) {
      error(key, render(value.get()) + " is not a size in bytes (write e.g. 0, 50 MiB or 1 GiB)");
      return defaultValue;
    }
    if (bytes < 0) {
      error(key, render(value.get()) + " must not be negative");
      return defaultValue;
    }
    return bytes;
  }

  /** A whole number that is at least {@code min}. */
  int integer(String key, int min, int defaultValue) {
    Optional<ConfigValue> value = value(key);
    if (value.isEmpty()) {
      return defaultValue;
    }
    long number;
    try {
      Number raw = object.toConfig().getNumber(ConfigUtil.joinPath(key));
      if (raw.doubleValue() != Math.rint(raw.doubleValue())
          || raw.doubleValue() > Integer.MAX_VALUE || raw.doubleValue() < Integer.MIN_VALUE) {
        throw new NumberFormatException();
      }
      number = raw.longValue();
    } catch (ConfigException | NumberFormatException e) {
      error(key, render(value.get()) + " is not a whole number");
      return defaultValue;
    }
    if (number < min) {
      error(key, render(value.get()) + " must be at least " + min);
      return defaultValue;
    }
    return (int) number;
  }

  boolean bool(String key, boolean defaultValue) {
    Optional<ConfigValue> value = value(key);
    if (value.isEmpty()) {
      return defaultValue;
    }
    try {
      return object.toConfig().getBoolean(ConfigUtil.joinPath(key));
    } catch (ConfigException e) {
      error(key, render(value.get()) + " is not true or false");
      return defaultValue;
    }
  }

  /** An absolute path; empty (with an error) when relative or malformed. */
  Optional<Path> absolutePath(String key) {
    Optional<String> text = string(key);
    if (text.isEmpty()) {
      return Optional.empty();
    }
    // Relative paths would depend on the agent's working directory, which differs between a
    // service manager and a shell: the same file would mean different things.
    if (text.get().isBlank()) {
      error(key, "must not be empty (expected an absolute path)");
      return Optional.empty();
    }
    try {
      Path path = Path.of(text.get());
      if (!path.isAbsolute()) {
        error(key, quote(text.get()) + " is not an absolute path");
        return Optional.empty();
      }
      return Optional.of(path.normalize());
    } catch (InvalidPathException e) {
      error(key, quote(text.get()) + " is not a valid path: " + e.getReason());
      return Optional.empty();
    }
  }

  /** A required absolute path; null (with an error) when absent or bad. */
  Path requiredAbsolutePath(String key) {
    if (value(key).isEmpty()) {
      error(key, "missing (required: an absolute path)");
      return null;
    }
    return absolutePath(key).orElse(null);
  }

  /** A "host:port" address; empty (with an error) when malformed. */
  Optional<InetSocketAddress> address(String key) {
    Optional<String> text = string(key);
    if (text.isEmpty()) {
      return Optional.empty();
    }
    try {
      return Optional.of(Addresses.parse(text.get()));
    } catch (IllegalArgumentException e) {
      error(key, e.getMessage());
      return Optional.empty();
    }
  }

  /** A required "host:port" address; null (with an error) when absent or malformed. */
  InetSocketAddress requiredAddress(String key) {
    if (value(key).isEmpty()) {
      error(key, "missing (required: host:port)");
      return null;
    }
    return address(key).orElse(null);
  }

  /** The elements of a list value, or an empty list (with an error) when it is not a list. */
  List<ConfigValue> list(String key) {
    Optional<ConfigValue> value = value(key);
    if (value.isEmpty()) {
      return List.of();
    }
    if (value.get().valueType() != ConfigValueType.LIST) {
      error(key, "expected a list [ ... ], found " + describe(value.get()));
      return List.of();
    }
    return new ArrayList<>((ConfigList) value.get());
  }

  /** How a value reads in a message: strings quoted, numbers as written. */
  static String render(ConfigValue value) {
    return value.render(CONCISE);
  }

  static String quote(String text) {
    return ConfigUtil.quoteString(text);
  }

  static String describe(ConfigValue value) {
    return switch (value.valueType()) {
      case OBJECT -> "an object";
      case LIST -> "a list";
      case NUMBER -> "a number (" + render(value) + ")";
      case BOOLEAN -> "a boolean (" + render(value) + ")";
      case NULL -> "null";
      case STRING -> "a string (" + render(value) + ")";
    };
  }

  /** " (did you mean 'x'?)" for the closest known key within two edits, else "". */
  static String suggestion(String key, List<String> known) {
    String best = null;
    int bestDistance = 3;
    for (String candidate : known) {
      int distance = editDistance(key, candidate);
      if (distance < bestDistance) {
        best = candidate;
        bestDistance = distance;
      }
    }
    return best == null ? "" : " (did you mean '" + best + "'?)";
  }

  /** Levenshtein distance: insertions, deletions and substitutions each cost one. */
  static int editDistance(String a, String b) {
    int[] previous = new int[b.length() + 1];
    int[] current = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      previous[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      current[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
      }
      int[] swap = previous;
      previous = current;
      current = swap;
    }
    return previous[b.length()];
  }
}
