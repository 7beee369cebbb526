package io.replicator.agent.admin;

import java.util.Map;

/** What {@code POST /ops/{name}} runs: the query parameters and the request body in, a text answer out. */
@FunctionalInterface
public interface AdminOperation {
  /**
   * Runs the operation.
   *
   * @throws OperationFailure for a refusal the caller can act on; anything else becomes a 500
   */
  String run(Map<String, String> parameters, String body) throws Exception;
}
