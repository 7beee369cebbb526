package io.replicator.agent.admin;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.Counter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.internal.PlatformDependent;
import io.replicator.agent.admin.AdminRequestFuzzer.Input;
import io.replicator.agent.admin.StrictResponseReader.Response;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Mutated and random HTTP requests against the admin endpoint: its real pipeline in-process for
 * every input, and a share of the inputs over real sockets to a running {@link AdminServer}, each
 * compared with the in-process answer. Per input: only well-formed responses (or a close), never
 * a 5xx nor a stack trace, no guarded handler run unless the input carried the exact token, one
 * log line per refusal, and the token in no response and no log line. Afterwards the server still
 * serves, and heap and threads are back where they were.
 *
 * <p>Seeded; the seed is printed with the figures (surefire keeps them in
 * {@code target/surefire-reports/io.replicator.agent.admin.AdminEndpointFuzzTest-output.txt}).
 * {@code -Dreplicator.fuzz.seed=N} replays a run, {@code -Dreplicator.fuzz.admin.inputs=N} sets
 * the in-process count (a twentieth of it, at least 2,000, also goes over sockets;
 * {@code -Dreplicator.fuzz.admin.socketInputs=N} overrides that).
 */
@Timeout(value = 14, unit = TimeUnit.MINUTES)
class AdminEndpointFuzzTest {
  private static final String TOKEN = "fuzz-T0ken-7c3e91d2a85b4f06";
  /** The CI default runs the class in about ten seconds on two cores. */
  private static final long INPUTS = Long.getLong("replicator.fuzz.admin.inputs", 50_000);
  private static final long SOCKET_INPUTS = Long.getLong("replicator.fuzz.admin.socketInputs",
      Math.max(2_000, INPUTS / 20));
  private static final int SOCKET_CLIENTS = 2;
  private static final InetSocketAddress LOOPBACK = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
  /** Loopback with a token: reads open, operations need it. */
  private static final AccessPolicy ON_LOOPBACK = AccessPolicy.forBind(LOOPBACK, TOKEN);
  /** Bound elsewhere (only the policy: nothing binds there): everything needs the token. */
  private static final AccessPolicy ELSEWHERE = AccessPolicy.forBind(new InetSocketAddress("0.0.0.0", 0),
      TOKEN);
  private static long seed;

  @BeforeAll
  static void pickSeed() {
    seed = Long.getLong("replicator.fuzz.seed", new Random().nextLong());
    System.out.printf("admin fuzz: seed %d, %d inputs in-process, %d over sockets "
        + "(rerun with -Dreplicator.fuzz.seed=%d -Dreplicator.fuzz.admin.inputs=%d)%n",
        seed, INPUTS, SOCKET_INPUTS, seed, INPUTS);
  }

  /** Handlers that count their calls: the guarded operations, and the reads. */
  static final class Fakes {
    final Map<String, AtomicLong> calls = new ConcurrentHashMap<>();
    final AtomicLong reads = new AtomicLong();
    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    final AdminHandlers handlers;

    Fakes() {
      Counter scrapes = registry.counter("fuzz_scrapes");
      handlers = new AdminHandlers()
          .status(() -> {
            reads.incrementAndGet();
            return StatusDocuments.of("fuzz", Statuses.primaryInSync()).build();
          })
          .metrics(registry, () -> {
            reads.incrementAndGet();
            scrapes.increment();
          });
      for (String name : AdminRequestFuzzer.STATE_CHANGING) {
        handlers.operation(name, (parameters, body) -> {
          calls.computeIfAbsent(name, n -> new AtomicLong()).incrementAndGet();
          return name + " done " + parameters.keySet();
        });
      }
      handlers.operation(AdminRequestFuzzer.READ_ONLY_OPERATION, (parameters, body) -> {
        calls.computeIfAbsent(AdminRequestFuzzer.READ_ONLY_OPERATION, n -> new AtomicLong()).incrementAndGet();
        return "verified";
      });
    }

    /** Calls of every operation the token guards. */
    long guarded() {
      return calls.values().stream().mapToLong(AtomicLong::get).sum();
    }
  }

  /** What the pipeline did with one input. */
  record Outcome(List<Response> responses, boolean closed, boolean tokenInResponse, long guardedCalls, long readCalls,
      long refusalLines, long dropLines, long troubleLines, long secretShown, String malformed) {
    List<Integer> statuses() {
      return StrictResponseReader.finalStatuses(responses);
    }

    long refused() {
      return statuses().stream().filter(s -> s >= 400).count();
    }
  }

  /** Feeds one input through the real pipeline on an embedded channel, handlers run inline. */
  private static Outcome inProcess(byte[] input, AccessPolicy policy, Fakes fakes, AdminLogCapture logs,
      Random split) {
    long guardedBefore = fakes.guarded();
    long readsBefore = fakes.reads.get();
    long refusalsBefore = logs.refusalsOfThisThread();
    long dropsBefore = logs.dropsOfThisThread();
    long troubleBefore = logs.troubleOfThisThread();
    long secretBefore = logs.secretShownOfThisThread();
    EmbeddedChannel ch = new EmbeddedChannel(new ChannelInitializer<Channel>() {
      @Override
      protected void initChannel(Channel c) {
        AdminServer.configure(c.pipeline(), policy, fakes.handlers, Runnable::run, AdminServer.Timeouts.DEFAULT);
      }
    });
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    boolean closed;
    try {
      for (ByteBuf piece : fragments(input, split)) {
        if (!ch.isOpen()) {
          piece.release();
          continue;
        }
        ch.writeInbound(piece);
        ch.runPendingTasks();
      }
      ch.checkException();
      closed = !ch.isOpen();
      drain(ch, out);
    } finally {
      ch.finishAndReleaseAll();
    }
    String malformed = null;
    List<Response> responses = List.of();
    try {
      responses = StrictResponseReader.readAll(out.toByteArray());
    } catch (StrictResponseReader.Malformed e) {
      malformed = e.getMessage();
    }
    boolean tokenInResponse = new String(out.toByteArray(), StandardCharsets.ISO_8859_1).contains(TOKEN);
    return new Outcome(responses, closed, tokenInResponse, fakes.guarded() - guardedBefore,
        fakes.reads.get() - readsBefore,
        logs.refusalsOfThisThread() - refusalsBefore, logs.dropsOfThisThread() - dropsBefore,
        logs.troubleOfThisThread() - troubleBefore, logs.secretShownOfThisThread() - secretBefore, malformed);
  }

  private static void drain(EmbeddedChannel ch, ByteArrayOutputStream out) {
    for (Object o = ch.readOutbound(); o != null; o = ch.readOutbound()) {
      ByteBuf b = (ByteBuf) o;
      try {
        byte[] bytes = new byte[b.readableBytes()];
        b.readBytes(bytes);
        out.writeBytes(bytes);
      } finally {
        b.release();
      }
    }
  }

  private static ByteBuf[] fragments(byte[] input, Random split) {
    int n = input.length < 2 || split.nextBoolean() ? 1 : 2 + split.nextInt(3);
    ByteBuf[] out = new ByteBuf[n];
    int start = 0;
    for (int k = 0; k < n; k++) {
      int end = k == n - 1 ? input.length : start + split.nextInt(input.length - start + 1);
      // a copy: the decoder owns what it is given and may compact it in place, which would change the input
      out[k] = Unpooled.copiedBuffer(input, start, end - start);
      start = end;
    }
    return out;
  }

  /** A failed check: which one, and the particulars. */
  record Violation(String check, String detail) {
    @Override
    public String toString() {
      return check + ": " + detail;
    }
  }

  /** The checks every input's outcome must pass, whatever the input; null when it passes. */
  private static Violation violation(AdminRequestFuzzer fuzzer, Input input, AccessPolicy policy, Outcome o) {
    if (o.malformed() != null) {
      return new Violation("bad response", o.malformed());
    }
    for (Response r : o.responses()) {
      // 505 (not HTTP/1.x) is the client's doing; any other 5xx is the endpoint failing
      if (r.status() >= 500 && r.status() != 505) {
        return new Violation("5xx", r.status() + " " + r.body());
      }
      if (r.body().contains("Exception") || r.body().contains("\tat ") || r.body().contains("java.")) {
        return new Violation("internals in a response", r.body());
      }
    }
    long operationAnswers = o.responses().stream().filter(AdminEndpointFuzzTest::answersAnOperation).count();
    if (operationAnswers != o.guardedCalls()) {
      return new Violation("an operation ran without its answer",
          o.guardedCalls() + " operations ran, " + operationAnswers + " answers to them written");
    }
    int tokens = fuzzer.validTokenHeaders(input.bytes());
    if (o.guardedCalls() > tokens) {
      return new Violation("operation without the token",
          o.guardedCalls() + " guarded operations ran for an input with " + tokens + " valid token headers");
    }
    if (policy.readsNeedToken() && o.readCalls() > tokens) {
      return new Violation("read without the token off loopback",
          o.readCalls() + " reads served for an input with " + tokens + " valid token headers");
    }
    if (o.troubleLines() > 0) {
      return new Violation("stack trace or Netty warning logged", o.troubleLines() + " lines");
    }
    if ((o.secretShown() > 0 || o.tokenInResponse()) && fuzzer.tokenOnlyInCredentialPlaces(input.bytes())) {
      return new Violation("token repeated", o.secretShown() + " log lines"
          + (o.tokenInResponse() ? " and a response" : ""));
    }
    // A connection closed for its client's behaviour gets one line of its own, besides those for the
    // requests it had sent, each answered before the close.
    if (o.refusalLines() != o.refused() || o.dropLines() > 1 || (o.dropLines() == 1 && !o.closed())) {
      return new Violation("not one line per refusal", o.refused() + " requests refused but "
          + o.refusalLines() + " refusal lines logged, and " + o.dropLines() + " lines for dropping the connection");
    }
    if (!input.mutated() && !o.statuses().equals(input.expected())) {
      return new Violation("valid input misanswered", o.statuses() + ", expected " + input.expected());
    }
    return null;
  }

  private static String describe(long index, Input input, Outcome o, String what) {
    byte[] b = input.bytes();
    String text = StrictResponseReader.printable(new String(b, 0, Math.min(b.length, 600), StandardCharsets.ISO_8859_1));
    return "seed " + seed + ", input " + index + " (" + input.kind() + "): " + what
        + "\ninput (" + b.length + " bytes): " + text
        + "\nhex: " + HexFormat.of().formatHex(b, 0, Math.min(b.length, 256))
        + (o == null ? "" : "\nanswered " + o.statuses() + (o.closed() ? ", then closed" : ", left open"));
  }

  @Test
  void mutatedRequestsThroughTheRealPipeline() {
    Fakes fakes = new Fakes();
    AdminRequestFuzzer fuzzer = new AdminRequestFuzzer(seed, TOKEN);
    Random split = new Random(seed ^ 0x5DEECE66DL);
    Map<Integer, Long> statusCounts = new TreeMap<>();
    Map<String, Long> violations = new TreeMap<>();
    Map<String, String> firstOfEach = new TreeMap<>();
    long closedCount = 0;
    long validInputs = 0;
    long validTokenHeaders = 0;
    long heapBefore = heapAfterGc();
    int threadsBefore = threads();
    long t0 = System.nanoTime();
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN)) {
      for (long i = 0; i < INPUTS; i++) {
        AccessPolicy policy = (i & 1) == 0 ? ON_LOOPBACK : ELSEWHERE;
        Input input = fuzzer.next(policy.readsNeedToken());
        Outcome o;
        try {
          o = inProcess(input.bytes(), policy, fakes, logs, split);
        } catch (Throwable t) {
          throw new AssertionError(describe(i, input, null, "the pipeline threw " + t), t);
        }
        Violation bad = violation(fuzzer, input, policy, o);
        if (bad != null) {
          // go on: one example of each kind of failure tells more than the first alone
          violations.merge(bad.check(), 1L, Long::sum);
          firstOfEach.putIfAbsent(bad.check(), describe(i, input, o, bad.toString()));
          if (violations.values().stream().mapToLong(Long::longValue).sum() >= 10_000) {
            break;
          }
        }
        for (int s : o.statuses()) {
          statusCounts.merge(s, 1L, Long::sum);
        }
        closedCount += o.closed() ? 1 : 0;
        validInputs += input.mutated() ? 0 : 1;
        validTokenHeaders += fuzzer.validTokenHeaders(input.bytes());
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      long heapAfter = heapAfterGc();
      System.out.printf("admin fuzz in-process: %d inputs (%d unmutated) in %.1f s (%.0f/s); statuses %s; "
              + "%d connections closed by the server; %d guarded operations run, %d valid token headers sent; "
              + "%d refusal lines; heap %s -> %s; threads %d -> %d%n",
          INPUTS, validInputs, seconds, INPUTS / seconds, statusCounts, closedCount, fakes.guarded(),
          validTokenHeaders, logs.refusals(), mib(heapBefore), mib(heapAfter), threadsBefore, threads());
      System.out.printf("admin fuzz refusal lines by message: %s%n", logs.byTemplate());
      assertThat(violations).as("failed checks, with the first input of each:%n%s%nlog problems: %s",
          String.join("\n\n", firstOfEach.values()), logs.problems()).isEmpty();
      assertThat(heapAfter - heapBefore).as("heap growth over the run").isLessThan(64L << 20);
      assertThat(fakes.guarded()).as("some inputs reached the operations").isPositive();
    } finally {
      fakes.registry.close();
    }
  }

  @Test
  void mutatedRequestsOverSocketsAnswerAsInProcessAndLeaveTheServerServing() throws Exception {
    warmUp();
    int threadsBefore = threads();
    long heapBefore = heapAfterGc();
    long directBefore = direct();
    Fakes serverFakes = new Fakes();
    AdminServer server = AdminServer.start(LOOPBACK, TOKEN, serverFakes.handlers);
    ExecutorService clients = Executors.newFixedThreadPool(SOCKET_CLIENTS);
    long t0 = System.nanoTime();
    List<SocketRun> runs = new ArrayList<>();
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN)) {
      List<Future<SocketRun>> futures = new ArrayList<>();
      for (int c = 0; c < SOCKET_CLIENTS; c++) {
        long count = SOCKET_INPUTS / SOCKET_CLIENTS + (c < SOCKET_INPUTS % SOCKET_CLIENTS ? 1 : 0);
        long clientSeed = seed + 1 + c;
        futures.add(clients.submit(() -> socketClient(server.localAddress(), clientSeed, count, logs)));
      }
      try {
        for (Future<SocketRun> f : futures) {
          runs.add(f.get(10, TimeUnit.MINUTES));
        }
      } finally {
        // stopped while the logs are still captured, also when one client failed
        clients.shutdownNow();
        assertThat(clients.awaitTermination(10, TimeUnit.SECONDS)).as("clients stopped").isTrue();
      }
      double seconds = (System.nanoTime() - t0) / 1e9;

      SocketRun total = runs.stream().reduce(new SocketRun(), SocketRun::plus);
      long serverLines = logs.refusals() - total.oracleLines;
      System.out.printf("admin fuzz over sockets: %d inputs on %d clients in %.1f s (%.0f/s); %d answered as "
              + "in-process, %d decided otherwise at Netty's size limits, "
              + "%d closed early by the server %s (%d connections dropped, in-process %d); "
              + "%d guarded operations run (in-process %d); %d refusal lines from the server for %d expected "
              + "(+ up to %d)%n",
          total.inputs, SOCKET_CLIENTS, seconds, total.inputs / seconds, total.same, total.atLimits, total.closedEarly,
          total.earlyExamples, logs.refusalsLike(AdminLogCapture.DROP_PREFIX) - total.oracleDrops, total.oracleDrops,
          serverFakes.guarded(), total.oracleGuarded, serverLines,
          total.expectedLines, total.slackLines);
      assertThat(logs.problems()).as("stack traces, Netty warnings").isEmpty();
      // the server logs what the in-process run logged, the token only where a mutation put it in the path
      assertThat(logs.secretShown() - total.oracleSecret).as("server log lines with the token")
          .isLessThanOrEqualTo(total.oracleSecret);
      assertThat(serverFakes.guarded()).as("guarded operations the server ran")
          .isBetween(total.oracleGuardedSame, total.oracleGuarded + total.extraGuarded);
      assertThat(serverLines).as("refusal lines: one per refused request or dropped connection; sample %s",
          logs.sample().stream().limit(20).toList())
          .isBetween(total.expectedLines, total.expectedLines + total.slackLines);

      // still serving, on a fresh connection
      Response status = exchange(server.localAddress(),
          "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
      assertThat(status.status()).isEqualTo(200);
      assertThat(Statuses.parse(status.body()).getNode()).isEqualTo("fuzz");
    } finally {
      clients.shutdownNow();
      server.close();
      serverFakes.registry.close();
    }
    long heapAfter = heapAfterGc();
    long directAfter = direct();
    boolean threadsBack = pollUntil(Duration.ofSeconds(15), () -> threads() <= threadsBefore);
    System.out.printf("admin fuzz over sockets: heap %s -> %s, direct %s -> %s, threads %d -> %d%n",
        mib(heapBefore), mib(heapAfter), mib(directBefore), mib(directAfter), threadsBefore, threads());
    assertThat(threadsBack).as("threads back to %d: %s", threadsBefore, threadNames()).isTrue();
    assertThat(heapAfter - heapBefore).as("heap growth").isLessThan(64L << 20);
    assertThat(directAfter - directBefore).as("direct memory growth").isLessThan(32L << 20);
  }

  /**
   * Fifty clients send part of a request and stall (half a request line, half the headers, half
   * a body, half a chunk) or trickle it a byte every 100 ms, which the idle timer alone never
   * ends; five more send nothing. Each slow one gets 408 and is closed within the request limit
   * plus slack, with one log line; the silent ones are closed quietly at the idle limit; other
   * clients are served throughout, one that is slow but within the limit included.
   */
  @Test
  void slowLorisClientsAreDroppedInBoundedTimeWhileOthersAreServed() throws Exception {
    Duration requestLimit = Duration.ofMillis(1000);
    Duration idleLimit = Duration.ofMillis(1500);
    String trickle = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ";
    String[] halves = {
        "GET /sta",
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        "POST /ops/swap HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN + "\r\nContent-Length: 100\r\n\r\nfull=",
        "POST /ops/lease HTTP/1.1\r\nAuthorization: Bearer " + TOKEN + "\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "10\r\nholder=",
        trickle};
    warmUp();
    int threadsBefore = threads();
    long heapBefore = heapAfterGc();
    Fakes fakes = new Fakes();
    AdminServer server = AdminServer.start(LOOPBACK, TOKEN, fakes.handlers,
        new AdminServer.Timeouts(requestLimit, idleLimit));
    ScheduledExecutorService trickler = Executors.newSingleThreadScheduledExecutor();
    List<Socket> slow = new ArrayList<>();
    List<Socket> silent = new ArrayList<>();
    long heapWithLorises;
    try (AdminLogCapture logs = new AdminLogCapture(TOKEN)) {
      long start = System.nanoTime();
      for (int i = 0; i < 50; i++) {
        Socket s = new Socket();
        slow.add(s);
        s.connect(server.localAddress(), 5_000);
        s.setSoTimeout(10_000);
        String half = halves[i % halves.length];
        s.getOutputStream().write(half.getBytes(StandardCharsets.US_ASCII));
        if (half.equals(trickle)) {
          OutputStream out = s.getOutputStream();
          // the injected slowness: one byte every 100 ms, for as long as the server keeps the connection
          trickler.scheduleAtFixedRate(() -> {
            try {
              out.write('a');
            } catch (IOException closed) {
              throw new IllegalStateException("closed"); // ends this task only
            }
          }, 100, 100, TimeUnit.MILLISECONDS);
        }
      }
      for (int i = 0; i < 5; i++) {
        Socket s = new Socket();
        silent.add(s);
        s.connect(server.localAddress(), 5_000);
        s.setSoTimeout(10_000);
      }
      heapWithLorises = heapAfterGc();

      // meanwhile: others are served, quickly, and so is a client slow but within the limit
      long worst = 0;
      for (int i = 0; i < 20; i++) {
        long t = System.nanoTime();
        assertThat(exchange(server.localAddress(), "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .status()).isEqualTo(200);
        worst = Math.max(worst, System.nanoTime() - t);
      }
      try (Socket patient = new Socket()) {
        patient.connect(server.localAddress(), 5_000);
        patient.setSoTimeout(10_000);
        patient.getOutputStream().write("GET /metrics HTTP/1.1\r\nHo".getBytes(StandardCharsets.US_ASCII));
        TimeUnit.MILLISECONDS.sleep(requestLimit.toMillis() / 3); // the injected pause, well within the limit
        patient.getOutputStream().write("st: 127.0.0.1\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        assertThat(StrictResponseReader.read(new BufferedInputStream(patient.getInputStream())).status())
            .isEqualTo(200);
      }

      // every slow client: 408, then the close
      for (Socket s : slow) {
        InputStream in = new BufferedInputStream(s.getInputStream());
        Response r = StrictResponseReader.read(in);
        assertThat(r).as("answer to a slow client").isNotNull();
        assertThat(r.status()).isEqualTo(408);
        assertThat(r.closes()).isTrue();
        assertThat(readToEnd(in)).as("the server closes after the 408").isTrue();
      }
      double slowGone = (System.nanoTime() - start) / 1e9;
      for (Socket s : silent) {
        assertThat(readToEnd(s.getInputStream())).as("an idle connection is closed").isTrue();
      }
      double silentGone = (System.nanoTime() - start) / 1e9;
      System.out.printf("slow loris: 50 slow connections dropped %.2f s after the first opened (limit %d ms), "
              + "5 silent ones after %.2f s (idle limit %d ms); worst of 20 other requests meanwhile %.1f ms; "
              + "heap %s before, %s with them open%n", slowGone, requestLimit.toMillis(), silentGone,
          idleLimit.toMillis(), worst / 1e6, mib(heapBefore), mib(heapWithLorises));

      assertThat(slowGone).as("seconds until every slow client was dropped")
          .isLessThan(requestLimit.toMillis() / 1000.0 + 3);
      assertThat(worst).as("worst latency of a normal request meanwhile, ns").isLessThan(requestLimit.toNanos());
      assertThat(fakes.guarded()).as("operations run from half requests").isZero();
      assertThat(logs.refusalsLike("no complete request within")).as("one line per slow client: %s",
          logs.sample()).isEqualTo(50);
      assertThat(logs.refusals()).as("no other refusal lines: %s", logs.sample()).isEqualTo(50);
      assertThat(logs.problems()).isEmpty();
      assertThat(logs.secretShown()).isZero();
    } finally {
      trickler.shutdownNow();
      for (Socket s : slow) {
        s.close();
      }
      for (Socket s : silent) {
        s.close();
      }
      server.close();
      fakes.registry.close();
    }
    assertThat(trickler.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    boolean threadsBack = pollUntil(Duration.ofSeconds(15), () -> threads() <= threadsBefore);
    assertThat(threadsBack).as("threads back to %d: %s", threadsBefore, threadNames()).isTrue();
    assertThat(heapWithLorises - heapBefore).as("heap held by 55 stalled connections").isLessThan(16L << 20);
  }

  /** Reads until the end of the stream (true) or a reset (true as well: closed); false on a timeout. */
  private static boolean readToEnd(InputStream in) throws IOException {
    byte[] sink = new byte[1024];
    try {
      while (in.read(sink) >= 0) {
        // anything after the 408 is ignored; there should be nothing
      }
      return true;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (SocketException reset) {
      return true;
    }
  }

  /** Figures from one client's share of the socket run. */
  static final class SocketRun {
    long inputs;
    long same;
    long closedEarly;
    long oracleLines;
    long oracleGuarded;
    long oracleSecret;
    /** Guarded calls the in-process pipeline made for inputs the server answered in full. */
    long oracleGuardedSame;
    long expectedLines;
    long slackLines;
    long oracleDrops;
    /** Inputs decided differently at Netty's size limits, and the operations the server answered for them. */
    long atLimits;
    long extraGuarded;
    final List<String> earlyExamples = new ArrayList<>();

    SocketRun plus(SocketRun o) {
      SocketRun s = new SocketRun();
      s.atLimits = atLimits + o.atLimits;
      s.extraGuarded = extraGuarded + o.extraGuarded;
      s.earlyExamples.addAll(earlyExamples);
      s.earlyExamples.addAll(o.earlyExamples);
      s.oracleDrops = oracleDrops + o.oracleDrops;
      s.inputs = inputs + o.inputs;
      s.same = same + o.same;
      s.closedEarly = closedEarly + o.closedEarly;
      s.oracleLines = oracleLines + o.oracleLines;
      s.oracleGuarded = oracleGuarded + o.oracleGuarded;
      s.oracleSecret = oracleSecret + o.oracleSecret;
      s.oracleGuardedSame = oracleGuardedSame + o.oracleGuardedSame;
      s.expectedLines = expectedLines + o.expectedLines;
      s.slackLines = slackLines + o.slackLines;
      return s;
    }
  }

  /**
   * Sends {@code count} inputs, each on its own connection, and holds the server's answer to the
   * in-process one: the same statuses; fewer only when the server closed the connection.
   */
  private static SocketRun socketClient(InetSocketAddress address, long clientSeed, long count,
      AdminLogCapture logs) throws IOException {
    AdminRequestFuzzer fuzzer = new AdminRequestFuzzer(clientSeed, TOKEN);
    Fakes oracleFakes = new Fakes();
    Random split = new Random(clientSeed);
    SocketRun run = new SocketRun();
    try {
      for (long i = 0; i < count; i++) {
        Input input = fuzzer.next(false);
        Outcome expected = inProcess(input.bytes(), ON_LOOPBACK, oracleFakes, logs, split);
        Violation bad = violation(fuzzer, input, ON_LOOPBACK, expected);
        if (bad != null) {
          throw new AssertionError(describe(i, input, expected, "in-process: " + bad));
        }
        run.inputs++;
        run.oracleLines += expected.refusalLines() + expected.dropLines();
        run.oracleDrops += expected.dropLines();
        run.oracleGuarded += expected.guardedCalls();
        run.oracleSecret += expected.secretShown();
        List<Integer> want = expected.statuses();
        Exchange got;
        try {
          got = send(address, input.bytes(), expected.responses(), expected.closed());
        } catch (IOException | RuntimeException e) {
          throw new AssertionError(describe(i, input, expected, "over the socket: " + e), e);
        }
        List<Integer> statuses = StrictResponseReader.finalStatuses(got.responses);
        for (Response r : got.responses) {
          if ((r.status() >= 500 && r.status() != 505)
              || (r.body().contains(TOKEN) && fuzzer.tokenOnlyInCredentialPlaces(input.bytes()))) {
            throw new AssertionError(describe(i, input, expected, "over the socket answered " + r));
          }
        }
        long operationAnswers = got.responses.stream().filter(AdminEndpointFuzzTest::answersAnOperation).count();
        if (operationAnswers > fuzzer.validTokenHeaders(input.bytes())) {
          throw new AssertionError(describe(i, input, expected, "over the socket, " + operationAnswers
              + " operations answered for " + fuzzer.validTokenHeaders(input.bytes()) + " valid token headers"));
        }
        int differ = firstDifference(statuses, want);
        if (differ >= 0 && differ < Math.min(statuses.size(), want.size())
            && (atSizeLimit(statuses.get(differ)) || atSizeLimit(want.get(differ)))) {
          // Netty's line and header limits are exact only to a byte or two, depending on where a read
          // ends: a request at the very limit may pass in one read and fail when split before its
          // CR LF. Then the rest differs too. Accounted from what the server answered.
          run.atLimits++;
          run.expectedLines += statuses.stream().filter(st -> st >= 400).count();
          run.slackLines += 1;
          run.extraGuarded += operationAnswers;
        } else if (statuses.equals(want) && (got.closed || !expected.closed())) {
          run.same++;
          run.oracleGuardedSame += expected.guardedCalls();
          run.expectedLines += expected.refusalLines() + expected.dropLines();
        } else if (got.closed && statuses.size() < want.size() && want.subList(0, statuses.size()).equals(statuses)) {
          // The server may stop early, for one, when more requests are pipelined than it queues:
          // then it logs one line for the connection instead of one per refused request.
          run.closedEarly++;
          if (run.earlyExamples.size() < 3) {
            run.earlyExamples.add(input.kind() + ": " + statuses.size() + " of " + want.size() + " answered");
          }
          run.expectedLines += statuses.stream().filter(s -> s >= 400).count();
          run.slackLines += expected.refusalLines() + expected.dropLines() + 1;
        } else {
          throw new AssertionError(describe(i, input, expected, "over the socket answered " + statuses
              + (got.closed ? " and closed" : " and stayed open")));
        }
      }
    } finally {
      oracleFakes.registry.close();
    }
    return run;
  }

  record Exchange(List<Response> responses, boolean closed) {}

  /** Whether a response is a guarded operation's answer (the fakes answer "NAME done [...]" or "verified"). */
  static boolean answersAnOperation(Response r) {
    return r.status() == 200 && (r.body().contains(" done [") || r.body().equals("verified\n"));
  }

  private static boolean atSizeLimit(int status) {
    return status == 414 || status == 431;
  }

  /** The first index where the lists differ, -1 when equal. */
  private static int firstDifference(List<Integer> a, List<Integer> b) {
    for (int k = 0; k < Math.min(a.size(), b.size()); k++) {
      if (!a.get(k).equals(b.get(k))) {
        return k;
      }
    }
    return a.size() == b.size() ? -1 : Math.min(a.size(), b.size());
  }

  /**
   * Writes the input and reads the answers the in-process run gave; then, when that run ended
   * closed, the close. A reset counts as a close: the server may close on bytes it did not read.
   */
  private static Exchange send(InetSocketAddress address, byte[] input, List<Response> expected, boolean expectClose)
      throws IOException {
    int finalResponses = StrictResponseReader.finalStatuses(expected).size();
    try (Socket s = new Socket()) {
      // Reset rather than linger: a million short connections must not exhaust ephemeral ports.
      s.setSoLinger(true, 0);
      s.setTcpNoDelay(true);
      s.connect(address, 5_000);
      s.setSoTimeout(10_000);
      try {
        OutputStream out = s.getOutputStream();
        out.write(input);
        out.flush();
      } catch (SocketException closedAlready) {
        // the server answered and closed before it read everything: what it sent is still to read
      }
      InputStream in = new BufferedInputStream(s.getInputStream());
      List<Response> responses = new ArrayList<>();
      int finals = 0;
      boolean closed = false;
      try {
        while (finals < finalResponses) {
          // whether it answers HEAD, as in-process; an interim answer may come at another place, never HEAD's
          Response r = StrictResponseReader.read(in, bodiless(expected, finals));
          if (r == null) {
            closed = true;
            break;
          }
          responses.add(r);
          finals += r.interim() ? 0 : 1;
        }
        if (!closed && expectClose) {
          Response extra = StrictResponseReader.read(in);
          if (extra != null) {
            throw new IOException("a response more than in-process: " + extra);
          }
          closed = true;
        }
      } catch (SocketTimeoutException e) {
        throw new IOException("neither answered nor closed within 10 s; got " + responses, e);
      } catch (StrictResponseReader.Malformed e) {
        throw e;
      } catch (SocketException reset) {
        closed = true;
      }
      return new Exchange(responses, closed);
    }
  }

  /** Whether the {@code n}th final response in-process had no body. */
  private static boolean bodiless(List<Response> responses, int n) {
    int seen = 0;
    for (Response r : responses) {
      if (!r.interim() && seen++ == n) {
        return r.bodiless();
      }
    }
    return false;
  }

  private static Response exchange(InetSocketAddress address, String request) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(address, 5_000);
      s.setSoTimeout(10_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      return StrictResponseReader.read(new BufferedInputStream(s.getInputStream()));
    }
  }

  /**
   * Starts the JDK's and Netty's lazily created threads that outlive a server (the
   * CompletableFuture delayer), so the thread count measured after is comparable.
   */
  private static void warmUp() throws IOException {
    Fakes fakes = new Fakes();
    try (AdminServer server = AdminServer.start(LOOPBACK, TOKEN, fakes.handlers)) {
      assertThat(exchange(server.localAddress(), "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
          .status()).isEqualTo(200);
    } finally {
      fakes.registry.close();
    }
    pollUntil(Duration.ofSeconds(10), () -> threadNames().stream().noneMatch(n -> n.startsWith("replicator-admin")));
  }

  static boolean pollUntil(Duration limit, BooleanSupplier condition) {
    try {
      // in this thread: the callers count threads, and a polling thread of its own would be one of them
      org.awaitility.Awaitility.await().atMost(limit).pollInterval(Duration.ofMillis(20)).pollInSameThread()
          .until(condition::getAsBoolean);
      return true;
    } catch (org.awaitility.core.ConditionTimeoutException e) {
      return false;
    }
  }


  static int threads() {
    return ManagementFactory.getThreadMXBean().getThreadCount();
  }

  static List<String> threadNames() {
    return Thread.getAllStackTraces().keySet().stream().map(Thread::getName).sorted().toList();
  }

  static long heapAfterGc() {
    System.gc();
    Runtime rt = Runtime.getRuntime();
    return rt.totalMemory() - rt.freeMemory();
  }

  static long direct() {
    long jdk = 0;
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        jdk = pool.getMemoryUsed();
      }
    }
    return Math.max(0, PlatformDependent.usedDirectMemory()) + jdk;
  }

  static String mib(long bytes) {
    return String.format("%.1f MiB", bytes / (1024.0 * 1024.0));
  }
}
