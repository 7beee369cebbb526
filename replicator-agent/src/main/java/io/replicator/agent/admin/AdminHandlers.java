package io.replicator.agent.admin;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.replicator.proto.StatusDocument;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * What the admin endpoint serves: the status document, the metrics registry, and named operations
 * for {@code POST /ops/{name}}. Thread-safe, so the agent may register operations after the
 * server started.
 */
public final class AdminHandlers {
  /** Operation names are one path segment that needs no escaping. */
  private static final Pattern OPERATION_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);
  private static final Set<String> RESERVED_PATHS = Set.of("/status", "/metrics", "/ops");

  private volatile Supplier<StatusDocument> status;
  private volatile PrometheusMeterRegistry registry;
  private volatile Runnable beforeScrape = () -> {};
  private volatile Duration timeout = DEFAULT_TIMEOUT;
  private final Map<String, AdminOperation> operations = new ConcurrentHashMap<>();
  private final Map<String, Query> documents = new ConcurrentHashMap<>();
  private volatile RefusalListener refusals = (operation, code, reason) -> {};
  private final Set<String> routine = ConcurrentHashMap.newKeySet();

  /** Serves {@code GET /status} from {@code status}, called once per request off the event loop. */
  public AdminHandlers status(Supplier<StatusDocument> status) {
    this.status = Objects.requireNonNull(status, "status");
    return this;
  }

  /** Serves {@code GET /metrics} from {@code registry}. */
  public AdminHandlers metrics(PrometheusMeterRegistry registry) {
    return metrics(registry, () -> {});
  }

  /**
   * Serves {@code GET /metrics} from {@code registry}, running {@code beforeScrape} first (for
   * example {@link ReplicationMetrics#refresh()}, so one scrape shows one snapshot).
   */
  public AdminHandlers metrics(PrometheusMeterRegistry registry, Runnable beforeScrape) {
    this.beforeScrape = Objects.requireNonNull(beforeScrape, "beforeScrape");
    this.registry = Objects.requireNonNull(registry, "registry");
    return this;
  }

  /**
   * Registers (or replaces) the operation {@code POST /ops/{name}} runs. Its result is the
   * response's text; what it throws becomes a 500 with the exception's message. Operations run on
   * a small pool and may run concurrently: one that must not overlap itself guards itself.
   */
  public AdminHandlers operation(String name, Callable<String> operation) {
    Objects.requireNonNull(operation, "operation");
    return operation(name, (parameters, body) -> operation.call());
  }

  /** Registers an operation that reads the request's query parameters and body. */
  public AdminHandlers operation(String name, AdminOperation operation) {
    Objects.requireNonNull(operation, "operation");
    if (name == null || !OPERATION_NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("Operation name must match " + OPERATION_NAME + ": " + name);
    }
    operations.put(name, operation);
    return this;
  }

  /**
   * Registers an operation that clients call all the time (a lease renewal every half heartbeat):
   * each call is logged at debug rather than INFO, so it does not drown the log.
   */
  public AdminHandlers routineOperation(String name, AdminOperation operation) {
    operation(name, operation);
    routine.add(name);
    return this;
  }

  /**
   * Serves {@code GET path} (one segment, like {@code /events}) with the JSON {@code document}
   * returns, under the same access rules as {@code /status}.
   */
  public AdminHandlers document(String path, Supplier<String> document) {
    Objects.requireNonNull(document, "document");
    return query(path, parameters -> document.get());
  }

  /**
   * Serves {@code GET path?…} (one segment) with the JSON {@code query} answers for the request's
   * query parameters, under the same access rules as {@code /status}; a {@link BadRequest} is a
   * 400, an {@link OperationFailure} a 409 refusal.
   */
  public AdminHandlers query(String path, Query query) {
    Objects.requireNonNull(query, "query");
    if (path == null || !path.startsWith("/") || !OPERATION_NAME.matcher(path.substring(1)).matches()
        || RESERVED_PATHS.contains(path)) {
      throw new IllegalArgumentException("Document path must be one free segment: " + path);
    }
    documents.put(path, query);
    return this;
  }

  /** Told of every refused operation: a 401 or 403 on {@code /ops/*}, or an {@link OperationFailure}. */
  public AdminHandlers refusals(RefusalListener listener) {
    this.refusals = Objects.requireNonNull(listener, "listener");
    return this;
  }

  /** Hears refused operations (for the refusal counter and the event history). */
  @FunctionalInterface
  public interface RefusalListener {
    /**
     * One refused operation.
     *
     * @param operation the operation's name as requested (printable, cut short)
     * @param code {@code UNAUTHORIZED}, {@code FORBIDDEN}, or an {@link OperationFailure.Code} name
     * @param reason why, in words
     */
    void refused(String operation, String code, String reason);
  }

  /** Removes an operation; later requests for it get 404. */
  public AdminHandlers removeOperation(String name) {
    operations.remove(name);
    routine.remove(name);
    return this;
  }

  /**
   * How long a request waits for its handler (an operation, the status supplier or a scrape)
   * before it gets 504. The handler is not interrupted: a state change half done by an interrupt
   * is worse than one that finishes late. Default 30 seconds.
   */
  public AdminHandlers timeout(Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("Timeout must be positive: " + timeout);
    }
    this.timeout = timeout;
    return this;
  }

  /** The names of the registered operations, sorted. */
  public Set<String> operationNames() {
    return new TreeSet<>(operations.keySet());
  }

  Optional<Supplier<StatusDocument>> status() {
    return Optional.ofNullable(status);
  }

  Optional<PrometheusMeterRegistry> registry() {
    return Optional.ofNullable(registry);
  }

  Runnable beforeScrape() {
    return beforeScrape;
  }

  /** Answers a GET with query parameters. */
  @FunctionalInterface
  public interface Query {
    /** The JSON document for {@code parameters} (the last value of each, decoded). */
    String answer(Map<String, String> parameters) throws BadRequest, OperationFailure;
  }

  Optional<Query> document(String path) {
    return Optional.ofNullable(documents.get(path));
  }

  RefusalListener refusals() {
    return refusals;
  }

  Optional<AdminOperation> operation(String name) {
    return Optional.ofNullable(operations.get(name));
  }

  boolean routine(String name) {
    return routine.contains(name);
  }

  Duration timeout() {
    return timeout;
  }
}
