package io.replicator.agent.admin;

import java.util.Iterator;
import java.util.Map;
import java.util.Optional;

/**
 * A minimal JSON writer for the admin documents: objects, arrays, strings, numbers and booleans,
 * with the escaping RFC 8259 requires. The project has no JSON library for the agent, and one
 * status document does not justify adding one.
 */
final class JsonWriter {
  private final StringBuilder out = new StringBuilder(256);
  /** Whether the next value in the current object or array needs a comma before it. */
  private boolean needsComma;

  JsonWriter beginObject() {
    separator();
    out.append('{');
    needsComma = false;
    return this;
  }

  JsonWriter endObject() {
    out.append('}');
    needsComma = true;
    return this;
  }

  JsonWriter beginArray() {
    separator();
    out.append('[');
    needsComma = false;
    return this;
  }

  JsonWriter endArray() {
    out.append(']');
    needsComma = true;
    return this;
  }

  /** Writes a member name; the next call writes its value. */
  JsonWriter name(String name) {
    separator();
    quote(name);
    out.append(':');
    needsComma = false;
    return this;
  }

  JsonWriter value(String value) {
    separator();
    if (value == null) {
      out.append("null");
    } else {
      quote(value);
    }
    needsComma = true;
    return this;
  }

  JsonWriter value(long value) {
    separator();
    out.append(value);
    needsComma = true;
    return this;
  }

  JsonWriter value(double value) {
    separator();
    // JSON has no NaN or Infinity; null is what parsers accept.
    if (Double.isFinite(value)) {
      out.append(value);
    } else {
      out.append("null");
    }
    needsComma = true;
    return this;
  }

  JsonWriter value(boolean value) {
    separator();
    out.append(value);
    needsComma = true;
    return this;
  }

  JsonWriter nullValue() {
    separator();
    out.append("null");
    needsComma = true;
    return this;
  }

  /**
   * Writes a free-form value: null, strings, numbers, booleans, optionals, maps (keys as strings),
   * iterables and arrays of objects; anything else (enums, instants, paths) as its string form.
   */
  JsonWriter anyValue(Object value) {
    if (value == null) {
      return nullValue();
    } else if (value instanceof Optional<?> optional) {
      return anyValue(optional.orElse(null));
    } else if (value instanceof CharSequence text) {
      return value(text.toString());
    } else if (value instanceof Boolean bool) {
      return value(bool.booleanValue());
    } else if (value instanceof Byte || value instanceof Short || value instanceof Integer || value instanceof Long) {
      return value(((Number) value).longValue());
    } else if (value instanceof Float || value instanceof Double) {
      return value(((Number) value).doubleValue());
    } else if (value instanceof Number number) {
      // BigDecimal and BigInteger print as plain JSON numbers; other Number types are unknown.
      String text = number instanceof java.math.BigDecimal big ? big.toPlainString() : number.toString();
      return text.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?") ? raw(text) : value(text);
    } else if (value instanceof Map<?, ?> map) {
      beginObject();
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        name(String.valueOf(entry.getKey())).anyValue(entry.getValue());
      }
      return endObject();
    } else if (value instanceof Iterable<?> iterable) {
      beginArray();
      for (Iterator<?> it = iterable.iterator(); it.hasNext(); ) {
        anyValue(it.next());
      }
      return endArray();
    } else if (value instanceof Object[] array) {
      return anyValue(java.util.Arrays.asList(array));
    }
    return value(value.toString());
  }

  private JsonWriter raw(String number) {
    separator();
    out.append(number);
    needsComma = true;
    return this;
  }

  private void separator() {
    if (needsComma) {
      out.append(',');
    }
  }

  private void quote(String text) {
    out.append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        default -> {
          // Control characters must be escaped; U+2028/2029 too, so the document is also valid
          // JavaScript; a lone surrogate is escaped so it survives UTF-8 encoding as itself.
          boolean loneSurrogate = Character.isSurrogate(c) && !pairedSurrogate(text, i);
          if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029' || loneSurrogate) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }

  private static boolean pairedSurrogate(String text, int i) {
    char c = text.charAt(i);
    if (Character.isHighSurrogate(c)) {
      return i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1));
    }
    return i > 0 && Character.isHighSurrogate(text.charAt(i - 1));
  }

  @Override
  public String toString() {
    return out.toString();
  }
}
