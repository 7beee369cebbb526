package io.replicator.bench;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * The benchmarks jar's entry point: {@code jmh [JMH options]} runs the micro-benchmarks,
 * {@code resync-figures [MiB] [dir]} the resync figures, {@code tree [options]} the large-tree
 * comparison with rsync, anything else the end-to-end comparison.
 */
public final class BenchMain {
  private BenchMain() {}

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("jmh")) {
      org.openjdk.jmh.Main.main(Arrays.copyOfRange(args, 1, args.length));
      return;
    }
    if (args.length > 0 && args[0].equals("resync-figures")) {
      ResyncFigures.main(Arrays.copyOfRange(args, 1, args.length));
      return;
    }
    // The launcher says where the checkout is, so the default JSON lands in it from any directory.
    String home = System.getenv("REPLICATOR_HOME");
    if (args.length > 0 && args[0].equals("tree")) {
      Path treeJson = (home != null ? Path.of(home) : Path.of("")).resolve("benchmarks/results/tree.json");
      TreeOptions tree;
      try {
        tree = TreeOptions.parse(Arrays.copyOfRange(args, 1, args.length), treeJson);
      } catch (IllegalArgumentException e) {
        System.err.println("replicator bench tree: " + e.getMessage());
        System.err.print(TreeOptions.usage());
        System.exit(2);
        return;
      }
      if (tree.help) {
        System.out.print(TreeOptions.usage());
        return;
      }
      System.exit(new TreeBench(tree, System.out, System.err).run());
    }
    Path json = (home != null ? Path.of(home) : Path.of("")).resolve("benchmarks/results/latest.json");
    BenchOptions options;
    try {
      options = BenchOptions.parse(args, json);
    } catch (IllegalArgumentException e) {
      System.err.println("replicator bench: " + e.getMessage());
      System.err.print(BenchOptions.usage());
      System.exit(2);
      return;
    }
    if (options.help) {
      System.out.print(BenchOptions.usage());
      System.out.println("  jmh [JMH options]     run the JMH micro-benchmarks instead (e.g. jmh -l, jmh FrameCodec)");
      System.out.println("  tree [options]        the large-tree comparison with rsync instead (tree --help)");
      return;
    }
    System.exit(new EndToEnd(options, System.out, System.err).run());
  }
}
