package io.replicator.agent.admin;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Seeded HTTP inputs for the admin endpoint: valid requests from a small corpus (reads, the
 * operations, with and without the token), mutated in their structure (methods, targets,
 * versions, headers, lengths, chunking) and in their bytes (flips, truncations, insertions,
 * splices), pipelined, or plain noise. The same seed gives the same inputs.
 */
final class AdminRequestFuzzer {
  /** Operations that change the node's state: only a request with the token may reach them. */
  static final List<String> STATE_CHANGING = List.of("swap", "promote", "demote", "resync", "lease", "release");
  /** Guarded like the others but read-only. */
  static final String READ_ONLY_OPERATION = "verify";

  /** One input: its bytes, what made it, and the statuses a correct server answers when unmutated. */
  record Input(byte[] bytes, String kind, List<Integer> expected) {
    boolean mutated() {
      return expected == null;
    }
  }

  private enum Auth { NONE, VALID, VALID_LOWER_CASE, WRONG_SUFFIX, WRONG_PREFIX, BASIC, EMPTY_BEARER, OTHER_HEADER, IN_QUERY }

  /** A request before it becomes bytes, so mutations can work on its parts. */
  private static final class Req {
    String method;
    String target;
    String version = "HTTP/1.1";
    final List<String[]> headers = new ArrayList<>();
    byte[] body = new byte[0];
    boolean chunked;
    String eol = "\r\n";
    Auth auth;
    boolean close;
    /** Raw chunked body to send instead of a well-formed one, or null. */
    String rawChunks;
  }

  private static final String[] READ_PATHS = {"/status", "/metrics"};
  private static final String[] OPERATION_TARGETS = {
      "/ops/swap", "/ops/promote", "/ops/promote?force=true", "/ops/demote", "/ops/demote?force=true",
      "/ops/resync", "/ops/resync?full=true", "/ops/resync?full=true&discard-local=true", "/ops/lease",
      "/ops/release", "/ops/verify"};
  private static final String[] METHODS = {
      "get", "post", "GeT", "PoSt", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH", "POSTX", "GETT",
      "P0ST", "\u0000POST", "PO ST", "PRI", "BREW", "-", "G\u00c9T", "POST\u0000", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"};
  private static final String[] TARGETS = {
      "/ops/../status", "/status/../ops/swap", "/ops/%2e%2e/swap", "/ops/..%2fswap", "//ops/swap", "/ops//swap",
      "/OPS/swap", "/ops/SWAP", "/ops/swap/", "/ops/swap%00", "/ops/sw%61p", "/%6fps/swap", "/ops/swap%2f..",
      "/ops/swap;x=1", "/ops/swap#frag", "http://127.0.0.1/ops/swap", "*", "", "ops/swap", "/ops/", "/ops", "/",
      "/status/", "/status%00", "/status?", "/metrics?x", "/ops/%", "/ops/%z", "/ops/%zz", "/ops/swap?full=%",
      "/ops/resync?full=%zz", "/ops/resync?%%%=1", "/ops/resync?full=%c0%ae", "/ops/%c0%ae%c0%ae/swap",
      "/ops/sw\u00e4p", "/ops/\u00ff\u00fe", "/st\u0000atus", "/status\t", "/ops/swap?\u0001=\u0002",
      "/../../../../etc/passwd", "/ops/..\\swap", "/ops/%5c..%5cswap", "/ops/swap?token=", "/ops/resync?full=true&full=false"};
  private static final String[] VERSIONS = {
      "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3", "http/1.1", "HTTP/1.1 ", "HTTP/11", "HTTP/1.", "FOO/1.1",
      "HTTP/9.9", "HTTP/1.1x", "", "HTTP/-1.1", "HTTP/1.01", "HTTP /1.1", "HTTP/1.1\u0000"};
  private static final String[] CONTENT_LENGTHS = {
      "-1", "-0", "abc", "1e3", "0x10", " 12 ", "+5", "99999999999999999999999", "9223372036854775807",
      "9223372036854775808", "2147483647", "2147483648", "4294967296", "65537", "65536", "1000000000", "",
      "1, 2", "0,0", "\u00b9", "\u0000"};
  private static final String[] CHUNK_GARBAGE = {
      "zz\r\nhello\r\n0\r\n\r\n", "-1\r\nx\r\n0\r\n\r\n", "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n",
      "5\r\nhello0\r\n\r\n", "5;ext=\u0000\r\nhello\r\n0\r\n\r\n", "5 ; x\r\nhello\r\n0\r\n\r\n",
      "7fffffff\r\nabc", "10000\r\n", "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", "0\r\nContent-Length: 5\r\n\r\n",
      "0\r\n", "\r\n\r\n", "5\nhello\n0\n\n", "0x5\r\nhello\r\n0\r\n\r\n", "5\r\nhel", "1\r\n\u0000\r\n0\r\n\r\n",
      "3\r\nabc\r\n3\r\ndef\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"};
  private static final String[] TRANSFER_ENCODINGS = {
      "chunked", "gzip, chunked", "chunked, gzip", "identity", "Chunked", " chunked", "chunked\u0000", "xchunked", "",
      "chunked;q=1"};
  private static final byte[] INTERESTING_BYTES = {0, '\r', '\n', ' ', '\t', ':', '%', '/', '?', '&', '=', '.', '"',
      (byte) 0x7f, (byte) 0x80, (byte) 0xc0, (byte) 0xff, (byte) 0x85, (byte) 0xe2};

  private final Random random;
  private final String token;
  /** Matches one {@code Authorization} header carrying the token, in any form the server may accept. */
  private final Pattern validHeader;

  AdminRequestFuzzer(long seed, String token) {
    this.random = new Random(seed);
    this.token = token;
    // Generous on purpose, so it never counts fewer than the server may accept: any case, blanks
    // around the colon, folded lines, a line that ends in CR, LF or both.
    // Character-class loops only: Java matches a repeated group by recursion, which a mutation that
    // inserts thousands of blanks turns into a StackOverflowError.
    String blanks = "[ \t]*+(?:\r?\n[ \t]++)*+";
    this.validHeader = Pattern.compile("(?i)(?:^|[\r\n])authorization[ \t]*+:" + blanks + "bearer[ \t]*+"
        + "(?:\r?\n[ \t]++)*+" + Pattern.quote(token) + "(?=[ \t]*+[\r\n])");
  }

  /**
   * The most state-changing requests an input can hold that the server may honour: the headers
   * carrying the exact token. A server that runs more operations than this for an input let one
   * through without the token.
   */
  int validTokenHeaders(byte[] input) {
    Matcher m = validHeader.matcher(new String(input, StandardCharsets.ISO_8859_1));
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  /**
   * Whether every copy of the token in the input sits where a client puts a credential (a header
   * value, the query string), so the server must never repeat it. A mutation may also move it into
   * the path, which the server logs and may echo, as it must: it keeps only the token's digest.
   */
  boolean tokenOnlyInCredentialPlaces(byte[] input) {
    String text = new String(input, StandardCharsets.ISO_8859_1);
    for (int at = text.indexOf(token); at >= 0; at = text.indexOf(token, at + 1)) {
      String before = text.substring(Math.max(0, at - 16), at);
      if (CREDENTIAL_HEADER.matcher(before).find()) {
        continue;
      }
      // in the query only when a '?' comes before it in the same request target
      int targetStart = Math.max(text.lastIndexOf(' ', at), Math.max(text.lastIndexOf('\n', at),
          text.lastIndexOf('\r', at)));
      int question = text.indexOf('?', targetStart + 1);
      if (!before.endsWith("access_token=") || question < 0 || question >= at) {
        return false;
      }
    }
    return true;
  }

  private static final Pattern CREDENTIAL_HEADER = Pattern.compile(
      "(?i)(?:(?:bearer|basic)[ \t]+|bearer\r?\n[ \t]+|x-token:[ \t]*)$");

  /** The next input; {@code readsNeedToken} tells what a correct server answers to unmutated reads. */
  Input next(boolean readsNeedToken) {
    int dice = random.nextInt(100);
    if (dice < 10) {
      return valid(readsNeedToken);
    }
    if (dice < 45) {
      Req r = corpus();
      String kind = mutateStructure(r);
      byte[] bytes = serialize(r);
      if (random.nextInt(4) == 0) {
        bytes = mutateBytes(bytes);
        kind += "+bytes";
      }
      return new Input(bytes, kind, null);
    }
    if (dice < 80) {
      return new Input(mutateBytes(serialize(corpus())), "bytes", null);
    }
    if (dice < 88) {
      return pipelined();
    }
    if (dice < 90) {
      return burst();
    }
    return new Input(noise(), "noise", null);
  }

  private Input valid(boolean readsNeedToken) {
    int n = random.nextInt(4) == 0 ? 2 + random.nextInt(4) : 1;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    List<Integer> expected = new ArrayList<>();
    boolean closed = false;
    for (int i = 0; i < n; i++) {
      Req r = corpus();
      out.writeBytes(serialize(r));
      if (!closed) {
        expected.add(expectedStatus(r, readsNeedToken));
        closed = r.close;
      }
    }
    return new Input(out.toByteArray(), n == 1 ? "valid" : "valid-pipelined", List.copyOf(expected));
  }

  private static int expectedStatus(Req r, boolean readsNeedToken) {
    boolean granted = r.auth == Auth.VALID || r.auth == Auth.VALID_LOWER_CASE;
    boolean read = r.target.startsWith("/status") || r.target.startsWith("/metrics");
    if (read && !readsNeedToken) {
      return 200;
    }
    return granted ? 200 : 401;
  }

  private Input pipelined() {
    int n = 2 + random.nextInt(random.nextInt(8) == 0 ? 30 : 5);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < n; i++) {
      Req r = corpus();
      if (random.nextInt(3) == 0) {
        mutateStructure(r);
      }
      byte[] bytes = serialize(r);
      if (random.nextInt(4) == 0) {
        bytes = mutateBytes(bytes);
      }
      out.writeBytes(bytes);
    }
    return new Input(out.toByteArray(), "pipelined", null);
  }

  /** Many small valid requests at once: more than the endpoint queues for one connection. */
  private Input burst() {
    int n = 10 + random.nextInt(60);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < n; i++) {
      out.writeBytes((random.nextBoolean() ? "GET /status HTTP/1.1\r\n\r\n"
          : "POST /ops/verify HTTP/1.1\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 0\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
    }
    return new Input(out.toByteArray(), "burst", null);
  }

  private Req corpus() {
    Req r = new Req();
    if (random.nextInt(4) == 0) {
      r.method = "GET";
      r.target = pick(READ_PATHS);
    } else {
      r.method = "POST";
      r.target = pick(OPERATION_TARGETS);
      if (r.target.equals("/ops/lease")) {
        r.body = ("holder=app-" + random.nextInt(10) + "\nttl=" + random.nextInt(120) + "\n")
            .getBytes(StandardCharsets.US_ASCII);
        r.headers.add(new String[] {"Content-Type", "text/plain; charset=utf-8"});
      }
    }
    r.headers.add(0, new String[] {"Host", "127.0.0.1"});
    Auth[] auths = Auth.values();
    // half the inputs carry the valid token, so mutations act on requests that would be honoured
    r.auth = random.nextBoolean() ? Auth.VALID : auths[random.nextInt(auths.length)];
    switch (r.auth) {
      case NONE -> { }
      case VALID -> r.headers.add(new String[] {"Authorization", "Bearer " + token});
      case VALID_LOWER_CASE -> r.headers.add(new String[] {"authorization", "bearer " + token});
      case WRONG_SUFFIX -> r.headers.add(new String[] {"Authorization", "Bearer " + token + "x"});
      case WRONG_PREFIX -> r.headers.add(new String[] {"Authorization", "Bearer " + token.substring(1)});
      case BASIC -> r.headers.add(new String[] {"Authorization", "Basic " + token});
      case EMPTY_BEARER -> r.headers.add(new String[] {"Authorization", "Bearer"});
      case OTHER_HEADER -> r.headers.add(new String[] {"X-Token", token});
      case IN_QUERY -> r.target += (r.target.contains("?") ? "&" : "?") + "access_token=" + token;
      default -> throw new AssertionError(r.auth);
    }
    int style = random.nextInt(10);
    if (style == 0) {
      r.version = "HTTP/1.0";
      r.close = true;
    } else if (style == 1) {
      r.version = "HTTP/1.0";
      r.headers.add(new String[] {"Connection", "keep-alive"});
    } else if (style == 2) {
      r.headers.add(new String[] {"Connection", "close"});
      r.close = true;
    } else if (style == 3 && r.method.equals("POST")) {
      r.chunked = true;
      if (r.body.length == 0) {
        r.body = "full=true".getBytes(StandardCharsets.US_ASCII);
      }
    } else if (style == 4 && r.method.equals("POST")) {
      r.headers.add(new String[] {"Expect", "100-continue"});
    }
    return r;
  }

  /** Changes one to three parts of the request; returns what it did. */
  private String mutateStructure(Req r) {
    StringBuilder kind = new StringBuilder();
    int n = 1 + (random.nextInt(4) == 0 ? random.nextInt(3) : 0);
    for (int i = 0; i < n; i++) {
      int what = random.nextInt(16);
      kind.append(kind.length() == 0 ? "" : ",");
      switch (what) {
        case 0 -> {
          r.method = random.nextInt(5) == 0 ? randomToken(1 + random.nextInt(20)) : pick(METHODS);
          kind.append("method");
        }
        case 1 -> {
          r.target = pick(TARGETS);
          kind.append("target");
        }
        case 2 -> {
          // around the decoder's 4 KiB request line limit, and far past it
          int length = random.nextBoolean() ? 4000 + random.nextInt(200) : 1 + random.nextInt(20_000);
          r.target = (random.nextBoolean() ? "/ops/" : "/status?q=") + repeat('a' + random.nextInt(26), length);
          kind.append("long-target");
        }
        case 3 -> {
          r.version = pick(VERSIONS);
          kind.append("version");
        }
        case 4 -> {
          int count = random.nextBoolean() ? 1 + random.nextInt(200) : 200 + random.nextInt(3000);
          for (int k = 0; k < count; k++) {
            r.headers.add(random.nextInt(r.headers.size() + 1), new String[] {"X-Fuzz-" + k, "v" + k});
          }
          kind.append("many-headers");
        }
        case 5 -> {
          int length = random.nextBoolean() ? 8000 + random.nextInt(400) : 1 + random.nextInt(40_000);
          r.headers.add(new String[] {"X-Long", repeat('b', length)});
          kind.append("long-header");
        }
        case 6 -> {
          setHeader(r, "Content-Length", pick(CONTENT_LENGTHS), random.nextBoolean());
          kind.append("content-length");
        }
        case 7 -> {
          // a declared length that does not match the body: the rest waits, or becomes the next request
          int declared = Math.max(0, r.body.length + random.nextInt(41) - 20);
          setHeader(r, "Content-Length", Integer.toString(declared), random.nextBoolean());
          kind.append("length-mismatch");
        }
        case 8 -> {
          r.chunked = false;
          r.rawChunks = pick(CHUNK_GARBAGE);
          setHeader(r, "Transfer-Encoding", random.nextInt(3) == 0 ? pick(TRANSFER_ENCODINGS) : "chunked", false);
          if (random.nextInt(3) == 0) {
            r.headers.add(new String[] {"Content-Length", Integer.toString(random.nextInt(100))});
          }
          kind.append("chunk-garbage");
        }
        case 9 -> {
          if (r.headers.isEmpty()) {
            r.headers.add(new String[] {"X-Empty", ""});
          }
          String[] header = r.headers.get(random.nextInt(r.headers.size()));
          int part = header[1] == null ? 0 : random.nextInt(2);
          header[part] = insertAt(header[part],
              String.valueOf((char) (random.nextBoolean() ? random.nextInt(0x20) : 0x80 + random.nextInt(0x80))));
          kind.append("header-bytes");
        }
        case 10 -> {
          int style = random.nextInt(5);
          switch (style) {
            case 0 -> r.headers.add(new String[] {"Authorization", "Bearer " + token});
            case 1 -> r.headers.add(0, new String[] {"Authorization", "Bearer wrong"});
            case 2 -> r.headers.add(new String[] {"Authorization", "Bearer\r\n\t" + token});
            case 3 -> r.headers.add(new String[] {"Authorization ", "Bearer " + token});
            default -> r.headers.add(new String[] {"Authorization", "Bearer " + token + "\r\n extra"});
          }
          kind.append("auth-").append(style);
        }
        case 11 -> {
          r.eol = random.nextBoolean() ? "\n" : random.nextBoolean() ? "\r" : "\r\r\n";
          kind.append("line-ends");
        }
        case 12 -> {
          r.headers.add(random.nextInt(r.headers.size() + 1), switch (random.nextInt(6)) {
            case 0 -> new String[] {"NoColonHere", null};
            case 1 -> new String[] {"", "empty name"};
            case 2 -> new String[] {" Folded", "value"};
            case 3 -> new String[] {"Bad Name", "x"};
            case 4 -> new String[] {"Expect", random.nextBoolean() ? "100-continue" : "teapot"};
            default -> new String[] {"Connection", random.nextBoolean() ? "close" : "upgrade, keep-alive"};
          });
          kind.append("odd-header");
        }
        case 13 -> {
          byte[] body = new byte[random.nextBoolean() ? random.nextInt(64) : 65_000 + random.nextInt(1200)];
          random.nextBytes(body);
          r.body = body;
          r.chunked = random.nextInt(3) == 0;
          kind.append("body");
        }
        case 14 -> {
          r.target = insertAt(r.target, random.nextBoolean() ? "%" + hex2() : String.valueOf((char) random.nextInt(256)));
          kind.append("target-bytes");
        }
        default -> {
          r.headers.removeIf(h -> h[0].equalsIgnoreCase("Host") || random.nextInt(3) == 0);
          kind.append("drop-headers");
        }
      }
    }
    return kind.toString();
  }

  private void setHeader(Req r, String name, String value, boolean alsoKeepOld) {
    if (!alsoKeepOld) {
      r.headers.removeIf(h -> h[0].equalsIgnoreCase(name));
    }
    r.headers.add(random.nextInt(r.headers.size() + 1), new String[] {name, value});
  }

  /** The request as bytes; characters above 0xff never occur, so ISO-8859-1 keeps each as one byte. */
  private static byte[] serialize(Req r) {
    StringBuilder s = new StringBuilder(256);
    s.append(r.method).append(' ').append(r.target);
    if (!r.version.isEmpty()) {
      s.append(' ').append(r.version);
    }
    s.append(r.eol);
    boolean hasLength = false;
    boolean hasEncoding = false;
    for (String[] h : r.headers) {
      hasLength |= h[0].equalsIgnoreCase("Content-Length");
      hasEncoding |= h[0].equalsIgnoreCase("Transfer-Encoding");
      s.append(h[0]);
      if (h[1] != null) {
        s.append(": ").append(h[1]);
      }
      s.append(r.eol);
    }
    byte[] body = r.body;
    if (r.rawChunks != null) {
      body = r.rawChunks.getBytes(StandardCharsets.ISO_8859_1);
    } else if (r.chunked) {
      if (!hasEncoding) {
        s.append("Transfer-Encoding: chunked").append(r.eol);
      }
      ByteArrayOutputStream chunks = new ByteArrayOutputStream();
      int half = body.length / 2;
      if (half > 0) {
        chunks.writeBytes((Integer.toHexString(half) + "\r\n").getBytes(StandardCharsets.US_ASCII));
        chunks.write(body, 0, half);
        chunks.writeBytes("\r\n".getBytes(StandardCharsets.US_ASCII));
      }
      chunks.writeBytes((Integer.toHexString(body.length - half) + "\r\n").getBytes(StandardCharsets.US_ASCII));
      chunks.write(body, half, body.length - half);
      chunks.writeBytes("\r\n0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      body = chunks.toByteArray();
    } else if (!hasLength && !hasEncoding && (body.length > 0 || r.method.equals("POST"))) {
      s.append("Content-Length: ").append(body.length).append(r.eol);
    }
    s.append(r.eol);
    byte[] head = s.toString().getBytes(StandardCharsets.ISO_8859_1);
    byte[] out = Arrays.copyOf(head, head.length + body.length);
    System.arraycopy(body, 0, out, head.length, body.length);
    return out;
  }

  /** One to four byte-level mutations. */
  private byte[] mutateBytes(byte[] in) {
    byte[] b = in;
    int n = 1 + random.nextInt(4);
    for (int i = 0; i < n; i++) {
      if (b.length == 0) {
        b = noise();
        continue;
      }
      int at = random.nextInt(b.length);
      switch (random.nextInt(9)) {
        case 0, 1 -> {
          b = b.clone();
          for (int k = random.nextInt(8); k >= 0; k--) {
            int p = random.nextInt(b.length);
            b[p] ^= (byte) (1 << random.nextInt(8));
          }
        }
        case 2 -> {
          b = b.clone();
          b[at] = INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)];
        }
        case 3 -> b = Arrays.copyOf(b, at);
        case 4 -> {
          int end = Math.min(b.length, at + 1 + random.nextInt(32));
          byte[] cut = new byte[b.length - (end - at)];
          System.arraycopy(b, 0, cut, 0, at);
          System.arraycopy(b, end, cut, at, b.length - end);
          b = cut;
        }
        case 5 -> {
          byte[] insert = new byte[1 + random.nextInt(random.nextInt(20) == 0 ? 20_000 : 16)];
          if (random.nextBoolean()) {
            random.nextBytes(insert);
          } else {
            Arrays.fill(insert, INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)]);
          }
          b = splice(b, at, insert);
        }
        case 6 -> {
          int end = Math.min(b.length, at + 1 + random.nextInt(64));
          b = splice(b, at, Arrays.copyOfRange(b, at, end));
        }
        case 7 -> b = splice(b, at, serialize(corpus()));
        default -> {
          // cut at a line end: a request that stops between headers or before its body
          int cr = indexOf(b, (byte) '\n', at);
          b = Arrays.copyOf(b, cr < 0 ? at : cr + 1);
        }
      }
    }
    return b;
  }

  private byte[] noise() {
    byte[] b = new byte[random.nextInt(random.nextInt(10) == 0 ? 10_000 : 300)];
    if (random.nextBoolean()) {
      random.nextBytes(b);
    } else {
      // printable lines: gets further into the decoder than binary
      for (int i = 0; i < b.length; i++) {
        int c = random.nextInt(100);
        b[i] = (byte) (c < 5 ? '\r' : c < 10 ? '\n' : c < 20 ? ' ' : c < 25 ? ':' : 0x21 + random.nextInt(94));
      }
    }
    return b;
  }

  private static byte[] splice(byte[] b, int at, byte[] insert) {
    byte[] out = new byte[b.length + insert.length];
    System.arraycopy(b, 0, out, 0, at);
    System.arraycopy(insert, 0, out, at, insert.length);
    System.arraycopy(b, at, out, at + insert.length, b.length - at);
    return out;
  }

  private static int indexOf(byte[] b, byte value, int from) {
    for (int i = from; i < b.length; i++) {
      if (b[i] == value) {
        return i;
      }
    }
    return -1;
  }

  private String insertAt(String s, String insert) {
    int at = s.isEmpty() ? 0 : random.nextInt(s.length() + 1);
    return s.substring(0, at) + insert + s.substring(at);
  }

  private String hex2() {
    String digits = "0123456789abcdefXYZ%";
    return "" + digits.charAt(random.nextInt(digits.length())) + digits.charAt(random.nextInt(digits.length()));
  }

  private String randomToken(int length) {
    StringBuilder s = new StringBuilder(length);
    for (int i = 0; i < length; i++) {
      s.append((char) (0x21 + random.nextInt(94)));
    }
    return s.toString();
  }

  private static String repeat(int c, int n) {
    return String.valueOf((char) c).repeat(n);
  }

  private String pick(String[] values) {
    return values[random.nextInt(values.length)];
  }
}
