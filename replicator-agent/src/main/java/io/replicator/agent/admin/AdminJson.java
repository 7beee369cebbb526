package io.replicator.agent.admin;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;

/**
 * How the admin endpoint's JSON documents are written and read: proto messages through JsonFormat,
 * on one line, with every field that has no presence printed even at its default (so a script
 * finds {@code "dirtyBytes":"0"} rather than nothing). Readers skip fields they do not know, so a
 * newer agent's additions do not break an older reader, but refuse a known field with a bad value.
 */
public final class AdminJson {
  private static final JsonFormat.Printer PRINTER =
      JsonFormat.printer().omittingInsignificantWhitespace().alwaysPrintFieldsWithNoPresence();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();

  private AdminJson() {}

  /** The message as one line of JSON. */
  public static String print(MessageOrBuilder message) {
    try {
      return PRINTER.print(message);
    } catch (InvalidProtocolBufferException e) {
      // Only an Any without its type registry fails to print, and no admin document holds one.
      throw new IllegalStateException("an admin document always prints", e);
    }
  }

  /**
   * Reads {@code json} into {@code into} and returns it.
   *
   * @throws InvalidProtocolBufferException when the text is not JSON, not an object, or a known
   *     field holds a value of the wrong kind (a word where a number belongs, a negative count)
   */
  public static <B extends Message.Builder> B parse(String json, B into) throws InvalidProtocolBufferException {
    PARSER.merge(json, into);
    return into;
  }
}
