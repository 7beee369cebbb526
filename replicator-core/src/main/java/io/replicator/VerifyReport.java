package io.replicator;

import java.util.List;

/**
 * What an online verify found: the paths and bytes compared by checksum against the peer, and
 * what differed. Differing blocks and paths are marked dirty, so {@link ReplicatedFileSystem#resync()}
 * repairs them.
 *
 * @param pathsCompared entries compared (files, directories, links)
 * @param bytesCompared bytes of file data compared block by block
 * @param blocksDiffering blocks whose checksums differed (or that one side lacked)
 * @param pathsDiffering entries that differed in kind, size, link target or permissions, or exist on one side only
 * @param examples up to 20 differing paths, for the operator
 */
public record VerifyReport(long pathsCompared, long bytesCompared, long blocksDiffering, long pathsDiffering,
    List<String> examples) {

  public VerifyReport {
    examples = List.copyOf(examples);
  }

  /** True when nothing differed. */
  public boolean identical() {
    return blocksDiffering == 0 && pathsDiffering == 0;
  }
}
