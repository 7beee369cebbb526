package io.replicator.agent.admin;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads HTTP/1.x responses and refuses anything a careful client would not accept: a status line
 * other than {@code HTTP/1.0|1.1 NNN reason}, a header that is not {@code token: visible text},
 * a final response without {@code Content-Length}, a body cut short, or bytes after the last
 * response.
 */
final class StrictResponseReader {
  private static final Pattern STATUS_LINE = Pattern.compile("HTTP/1\\.[01] ([1-5][0-9][0-9]) [\\x20-\\x7e]*");
  private static final Pattern HEADER = Pattern.compile("([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([\\x20-\\x7e\\t]*)");
  private static final int MAX_LINE = 8 * 1024;
  private static final int MAX_BODY = 4 << 20;

  /** A response that does not hold together. */
  static final class Malformed extends IOException {
    Malformed(String message) {
      super(message);
    }
  }

  /**
   * One response. {@code bodiless}: it declared a length but sent no body, as an answer to HEAD
   * must (RFC 9110, section 9.3.2).
   */
  record Response(int status, Map<String, String> headers, String body, boolean bodiless) {
    boolean interim() {
      return status < 200;
    }

    boolean closes() {
      return "close".equalsIgnoreCase(headers.get("connection"));
    }
  }

  private StrictResponseReader() {}

  /** Every response in {@code bytes}, which must end exactly where the last one does. */
  static List<Response> readAll(byte[] bytes) throws Malformed {
    ByteArrayInputStream in = new ByteArrayInputStream(bytes);
    List<Response> responses = new ArrayList<>();
    try {
      for (Response r = read(in, null); r != null; r = read(in, null)) {
        responses.add(r);
      }
    } catch (Malformed e) {
      throw e;
    } catch (IOException e) {
      throw new Malformed(e.toString());
    }
    return responses;
  }

  /** One response with a body as long as it declares (the request was not HEAD). */
  static Response read(InputStream in) throws IOException {
    return read(in, false);
  }

  /**
   * One response, or null when the stream ends before its first byte (a close between responses).
   *
   * @param bodiless whether it answers HEAD; null to tell by looking ahead, for a stream that holds
   *     everything (a HEAD answer is followed by the next status line or by the end)
   * @throws Malformed when what arrives is not a well-formed response
   * @throws IOException when reading fails (a timeout, a reset)
   */
  static Response read(InputStream in, Boolean bodiless) throws IOException {
    String statusLine = line(in, true);
    if (statusLine == null) {
      return null;
    }
    Matcher status = STATUS_LINE.matcher(statusLine);
    if (!status.matches()) {
      throw new Malformed("bad status line: " + printable(statusLine));
    }
    int code = Integer.parseInt(status.group(1));
    Map<String, String> headers = new LinkedHashMap<>();
    for (String line = line(in, false); !line.isEmpty(); line = line(in, false)) {
      Matcher header = HEADER.matcher(line);
      if (!header.matches()) {
        throw new Malformed("bad header line: " + printable(line));
      }
      String name = header.group(1).toLowerCase(Locale.ROOT);
      if (headers.put(name, header.group(2).trim()) != null && name.equals("content-length")) {
        throw new Malformed("two Content-Length headers");
      }
      if (headers.size() > 50) {
        throw new Malformed("more than 50 headers");
      }
    }
    if (code < 200) {
      return new Response(code, headers, "", false);
    }
    String length = headers.get("content-length");
    if (length == null || !length.matches("[0-9]{1,9}") || Integer.parseInt(length) > MAX_BODY) {
      throw new Malformed("final response " + code + " without a usable Content-Length: " + length);
    }
    if (bodiless == null) {
      in.mark(8);
      byte[] next = in.readNBytes(7);
      in.reset();
      bodiless = Integer.parseInt(length) > 0
          && (next.length == 0 || new String(next, StandardCharsets.ISO_8859_1).equals("HTTP/1."));
    }
    if (bodiless) {
      return new Response(code, headers, "", true);
    }
    byte[] body = in.readNBytes(Integer.parseInt(length));
    if (body.length != Integer.parseInt(length)) {
      throw new Malformed("body of " + code + " cut short at " + body.length + " of " + length + " bytes");
    }
    return new Response(code, headers, new String(body, StandardCharsets.UTF_8), false);
  }

  /** A CRLF-terminated line without its CRLF; null at end of stream when {@code eofAllowed} and nothing was read. */
  private static String line(InputStream in, boolean eofAllowed) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream(64);
    while (true) {
      int b = in.read();
      if (b < 0) {
        if (eofAllowed && line.size() == 0) {
          return null;
        }
        throw new Malformed("stream ended mid-line after: " + printable(line.toString(StandardCharsets.ISO_8859_1)));
      }
      if (b == '\r') {
        if (in.read() != '\n') {
          throw new Malformed("CR without LF");
        }
        return line.toString(StandardCharsets.ISO_8859_1);
      }
      if (b == '\n') {
        throw new Malformed("bare LF");
      }
      line.write(b);
      if (line.size() > MAX_LINE) {
        throw new Malformed("line longer than " + MAX_LINE);
      }
    }
  }

  static List<Integer> finalStatuses(List<Response> responses) {
    List<Integer> statuses = new ArrayList<>(responses.size());
    for (Response r : responses) {
      if (!r.interim()) {
        statuses.add(r.status());
      }
    }
    return statuses;
  }

  static String printable(String s) {
    String cut = s.length() > 200 ? s.substring(0, 200) + "..." : s;
    StringBuilder b = new StringBuilder(cut.length());
    for (char c : cut.toCharArray()) {
      b.append(c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\x%02x", (int) c));
    }
    return b.toString();
  }
}
