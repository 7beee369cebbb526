package io.replicator.cli;

import com.google.protobuf.Value;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * What a finished verify reported in {@code extra.verify.result}: either a text, or an object with
 * the figures of the library's {@code VerifyReport} ({@code pathsCompared}, {@code bytesCompared},
 * {@code blocksDiffering}, {@code pathsDiffering}, {@code examples}, optionally {@code identical})
 * or an {@code error}.
 *
 * @param kind what the verify found
 * @param summary one line for the operator
 */
record VerifyResult(Kind kind, String summary) {
  private static final int MAX_EXAMPLES = 5;

  /** What the verify found; {@code TEXT} when the agent reported only words. */
  enum Kind { IDENTICAL, DIFFERENT, ERROR, TEXT }

  static VerifyResult of(Value result) {
    if (!result.hasStructValue()) {
      return new VerifyResult(Kind.TEXT, Json.render(result));
    }
    Json report = Json.of(result.getStructValue());
    Optional<String> error = report.string("error");
    if (error.isPresent()) {
      return new VerifyResult(Kind.ERROR, "verify failed: " + error.get());
    }
    long blocks = report.integer("blocksDiffering").orElse(0L);
    long paths = report.integer("pathsDiffering").orElse(0L);
    boolean identical = report.bool("identical").orElse(blocks == 0 && paths == 0);
    String compared = report.integer("pathsCompared").map(n -> n + " paths").orElse("?")
        + " and " + report.integer("bytesCompared").map(Units::bytes).orElse("?") + " compared";
    if (identical) {
      return new VerifyResult(Kind.IDENTICAL, "identical: " + compared);
    }
    List<String> examples = report.value("examples").filter(Value::hasListValue)
        .map(v -> v.getListValue().getValuesList().stream().map(Json::render).collect(Collectors.toList()))
        .orElse(List.of());
    String shown = examples.isEmpty() ? ""
        : " (" + String.join(", ", examples.subList(0, Math.min(MAX_EXAMPLES, examples.size())))
            + (examples.size() > MAX_EXAMPLES ? ", ..." : "") + ")";
    return new VerifyResult(Kind.DIFFERENT, "DIFFERENT: " + blocks + (blocks == 1 ? " block" : " blocks") + " and "
        + paths + (paths == 1 ? " path" : " paths") + " differ" + shown + "; " + compared
        + "; they are marked dirty: 'replicator resync' repairs them");
  }

  static String describe(Value result) {
    return of(result).summary();
  }
}
