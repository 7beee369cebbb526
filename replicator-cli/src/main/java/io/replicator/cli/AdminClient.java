package io.replicator.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import io.replicator.agent.admin.AdminJson;
import io.replicator.proto.AdminRefusal;
import io.replicator.proto.StatusDocument;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Collectors;

/**
 * Talks HTTP to the local agent's admin endpoint and turns every way it can go wrong into a
 * {@link CommandFailure} with one line and its exit code: connection trouble is "agent
 * unreachable", 401 "unauthorized", a 409 refusal maps its code, the rest is a failure.
 */
final class AdminClient implements AutoCloseable {
  static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(3);
  /** A status is built from in-memory state; longer than this means the agent is stuck. */
  static final Duration STATUS_TIMEOUT = Duration.ofSeconds(15);
  /** The longest an error line quotes from a response body. */
  private static final int MAX_QUOTED = 300;

  private final AdminEndpoint endpoint;
  private final ExecutorService executor;
  private final HttpClient client;

  AdminClient(AdminEndpoint endpoint) {
    this.endpoint = endpoint;
    // Our own daemon executor, shut down on close, so no client thread outlives the command.
    this.executor = Executors.newCachedThreadPool(runnable -> {
      Thread thread = new Thread(runnable, "replicator-admin-client");
      thread.setDaemon(true);
      return thread;
    });
    this.client = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(CONNECT_TIMEOUT)
        .followRedirects(HttpClient.Redirect.NEVER)
        .executor(executor)
        .build();
  }

  AdminEndpoint endpoint() {
    return endpoint;
  }

  /** {@code GET /status}: the status document's JSON text as the agent sent it. */
  String status() {
    HttpResponse<String> response = send(request("/status", STATUS_TIMEOUT).GET().build(), "status");
    if (response.statusCode() != 200) {
      throw failure(response, "status");
    }
    return response.body();
  }

  /**
   * {@code GET /status} read into the status document. A document with a bad value (a word where
   * a count belongs) is refused with the reason, never read as 0.
   */
  StatusDocument statusDocument() {
    return parseStatus(status(), endpoint.address().toString());
  }

  /** The status document in {@code json}, from the agent at {@code address}. */
  static StatusDocument parseStatus(String json, String address) {
    try {
      return AdminJson.parse(json, StatusDocument.newBuilder()).build();
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      throw new CommandFailure(ExitCodes.FAILURE, "the agent at " + address
          + " sent a status that is not a status document: " + oneLine(e.getMessage()), e);
    }
  }

  /**
   * {@code POST /ops/{name}} with {@code parameters} as the query.
   *
   * @return the agent's text answer
   */
  String operation(String name, Map<String, String> parameters, Duration timeout) {
    String query = parameters.entrySet().stream()
        .map(e -> URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8) + "="
            + URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8))
        .collect(Collectors.joining("&"));
    String target = "/ops/" + name + (query.isEmpty() ? "" : "?" + query);
    HttpResponse<String> response =
        send(request(target, timeout).POST(HttpRequest.BodyPublishers.noBody()).build(), name);
    if (response.statusCode() != 200) {
      throw failure(response, name);
    }
    return response.body();
  }

  /**
   * {@code GET path?query}: a JSON document other than the status (a follower's log).
   *
   * @return the agent's answer as it was sent
   */
  String get(String path, Map<String, String> parameters, String what) {
    String query = query(parameters);
    HttpResponse<String> response = send(request(path + (query.isEmpty() ? "" : "?" + query), STATUS_TIMEOUT)
        .GET().build(), what);
    if (response.statusCode() != 200) {
      throw failure(response, what);
    }
    return response.body();
  }

  /** {@code POST /ops/{name}} with a JSON body (a typed request such as {@code ApplyUntilRequest}). */
  String operation(String name, String jsonBody, Duration timeout) {
    HttpResponse<String> response = send(request("/ops/" + name, timeout)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(jsonBody, StandardCharsets.UTF_8)).build(), name);
    if (response.statusCode() != 200) {
      throw failure(response, name);
    }
    return response.body();
  }

  private static String query(Map<String, String> parameters) {
    return parameters.entrySet().stream()
        .map(e -> URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8) + "="
            + URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8))
        .collect(Collectors.joining("&"));
  }

  private HttpRequest.Builder request(String pathAndQuery, Duration timeout) {
    HttpRequest.Builder builder = HttpRequest.newBuilder(endpoint.uri(pathAndQuery)).timeout(timeout)
        .header("Accept", "application/json, text/plain");
    endpoint.token().ifPresent(token -> builder.header("Authorization", "Bearer " + token));
    return builder;
  }

  private HttpResponse<String> send(HttpRequest request, String what) {
    try {
      return client.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    } catch (HttpConnectTimeoutException e) {
      throw new CommandFailure(ExitCodes.AGENT_UNREACHABLE, "cannot reach the agent's admin endpoint at "
          + endpoint.address() + ": no answer to the connection within " + CONNECT_TIMEOUT.toSeconds() + " s", e);
    } catch (HttpTimeoutException e) {
      throw new CommandFailure(ExitCodes.FAILURE, "the agent at " + endpoint.address() + " did not answer the "
          + what + " within " + Units.seconds(request.timeout().orElseThrow().toSeconds())
          + "; it may still complete: check 'replicator status'", e);
    } catch (ConnectException e) {
      throw new CommandFailure(ExitCodes.AGENT_UNREACHABLE, "cannot reach the agent's admin endpoint at "
          + endpoint.address() + ": " + connectProblem(e) + " (is the agent running? --admin or --config "
          + "choose the address)", e);
    } catch (IOException e) {
      throw new CommandFailure(ExitCodes.FAILURE, "the connection to the agent at " + endpoint.address()
          + " failed during the " + what + ": " + describe(e), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CommandFailure(ExitCodes.FAILURE, "interrupted while waiting for the agent", e);
    }
  }

  private CommandFailure failure(HttpResponse<String> response, String what) {
    String address = endpoint.address().toString();
    String text = oneLine(response.body());
    return switch (response.statusCode()) {
      case 401 -> new CommandFailure(ExitCodes.UNAUTHORIZED, endpoint.token().isPresent()
          ? "the agent at " + address + " refused the admin token (401): check --token-file or $"
              + AdminOptions.TOKEN_VARIABLE
          : "the agent at " + address + " wants an admin token (401): run as the agent's user (its token is in "
              + "~/.replicator/admin-PORT.token), or pass --token-file FILE or set $" + AdminOptions.TOKEN_VARIABLE);
      case 409 -> refusal(what, response.body());
      case 400 -> new CommandFailure(ExitCodes.FAILURE, what + " refused as malformed by the agent at " + address
          + ": " + text);
      case 404 -> new CommandFailure(ExitCodes.FAILURE, "the agent at " + address + " does not serve the "
          + what + " (404: " + text + ")");
      case 504 -> new CommandFailure(ExitCodes.FAILURE, "the " + what + " did not finish in the agent's time ("
          + text + "); check 'replicator status'");
      default -> new CommandFailure(ExitCodes.FAILURE, what + " failed: the agent at " + address + " answered "
          + response.statusCode() + (text.isEmpty() ? "" : ": " + text));
    };
  }

  /** A 409 {@code {"error": CODE, "message": ...}}: the code picks the exit code. */
  static CommandFailure refusal(String what, String body) {
    String code;
    String message;
    try {
      AdminRefusal refusal = AdminJson.parse(body, AdminRefusal.newBuilder()).build();
      code = refusal.getError() == AdminRefusal.Code.CODE_UNSPECIFIED ? "" : refusal.getError().name();
      message = refusal.getMessage();
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      code = "";
      message = oneLine(body);
    }
    return switch (code) {
      case "PEER_UNREACHABLE" -> new CommandFailure(ExitCodes.PEER_UNREACHABLE,
          what + " refused, peer unreachable: " + message);
      case "SPLIT_BRAIN" -> new CommandFailure(ExitCodes.SPLIT_BRAIN, what + " refused, split brain: " + message);
      case "REFUSED" -> new CommandFailure(ExitCodes.REFUSED, what + " refused: " + message);
      default -> new CommandFailure(ExitCodes.FAILURE, what + " failed: " + message
          + (code.isEmpty() || code.equals("FAILED") ? "" : " (" + code + ")"));
    };
  }

  private static String connectProblem(ConnectException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof UnresolvedAddressException) {
        return "the host name does not resolve";
      }
    }
    String message = e.getMessage();
    return message != null && !message.isBlank() ? message.toLowerCase(java.util.Locale.ROOT)
        : "connection refused";
  }

  private static String describe(IOException e) {
    return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  /** The text on one line, cut short: an error line must stay one line whatever the agent sent. */
  static String oneLine(String text) {
    String flat = text == null ? "" : text.strip().replaceAll("\\s+", " ");
    return flat.length() > MAX_QUOTED ? flat.substring(0, MAX_QUOTED) + "..." : flat;
  }

  @Override
  public void close() {
    // HttpClient is AutoCloseable from JDK 21 on; on 17 its threads end with the executor.
    if (client instanceof AutoCloseable closeable) {
      try {
        closeable.close();
      } catch (Exception ignored) {
        // Closing a client that is done with its exchanges has nothing to report.
      }
    }
    executor.shutdownNow();
  }
}
