package io.replicator.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * A JSON object from the admin endpoint, read into a protobuf {@link Struct}, with typed look-ups
 * along a path of keys. A missing key and a JSON {@code null} both read as empty.
 */
final class Json {
  private final Struct root;

  private Json(Struct root) {
    this.root = root;
  }

  /**
   * Parses one JSON object.
   *
   * @throws IllegalArgumentException when {@code text} is not a JSON object
   */
  static Json parse(String text) {
    Struct.Builder builder = Struct.newBuilder();
    try {
      JsonFormat.parser().merge(text, builder);
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      throw new IllegalArgumentException("not a JSON object: " + e.getMessage(), e);
    }
    return new Json(builder.build());
  }

  static Json of(Struct struct) {
    return new Json(struct);
  }

  Struct struct() {
    return root;
  }

  /** The value at {@code path}, empty when a key is missing, a step is not an object, or it is null. */
  Optional<Value> value(String... path) {
    Struct current = root;
    Value found = null;
    for (int i = 0; i < path.length; i++) {
      found = current.getFieldsMap().get(path[i]);
      if (found == null || found.hasNullValue()) {
        return Optional.empty();
      }
      if (i < path.length - 1) {
        if (!found.hasStructValue()) {
          return Optional.empty();
        }
        current = found.getStructValue();
      }
    }
    return Optional.ofNullable(found);
  }

  Optional<Json> object(String... path) {
    return value(path).filter(Value::hasStructValue).map(v -> new Json(v.getStructValue()));
  }

  Optional<String> string(String... path) {
    return value(path).filter(Value::hasStringValue).map(Value::getStringValue);
  }

  Optional<Double> number(String... path) {
    return value(path).filter(Value::hasNumberValue).map(Value::getNumberValue);
  }

  Optional<Long> integer(String... path) {
    return number(path).map(Math::round);
  }

  Optional<Boolean> bool(String... path) {
    return value(path).filter(Value::hasBoolValue).map(Value::getBoolValue);
  }

  /** A value as a person reads it: strings bare, whole numbers without a fraction, objects as {k: v}. */
  static String render(Value value) {
    return switch (value.getKindCase()) {
      case NULL_VALUE, KIND_NOT_SET -> "-";
      case BOOL_VALUE -> Boolean.toString(value.getBoolValue());
      case NUMBER_VALUE -> renderNumber(value.getNumberValue());
      case STRING_VALUE -> value.getStringValue();
      case LIST_VALUE -> value.getListValue().getValuesList().stream().map(Json::render)
          .collect(Collectors.joining(", ", "[", "]"));
      case STRUCT_VALUE -> value.getStructValue().getFieldsMap().entrySet().stream()
          .map(e -> e.getKey() + ": " + render(e.getValue()))
          .collect(Collectors.joining(", ", "{", "}"));
    };
  }

  static String renderNumber(double number) {
    if (number == Math.rint(number) && Math.abs(number) < 1e15) {
      return Long.toString((long) number);
    }
    return Double.toString(number);
  }
}
