package io.replicator.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.replicator.proto.ManifestEntry;
import io.replicator.proto.ManifestRequest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The replica's manifest: sorted pre-order, every entry saying how far changes were applied when it
 * was read, and never a step through a symbolic link, so a primary learns nothing of what lies
 * outside the root.
 */
class ReplicaManifestTest {
  @TempDir Path base;
  private Path root;
  private final AtomicLong applied = new AtomicLong(100);

  @BeforeEach
  void tree() throws IOException {
    root = Files.createDirectories(base.resolve("root"));
    Path outside = Files.createDirectories(base.resolve("outside"));
    Files.writeString(outside.resolve("secret"), "not yours");
    Files.createDirectories(root.resolve("a/b"));
    Files.writeString(root.resolve("a/b/f"), "x".repeat(10_000));
    Files.writeString(root.resolve("a-z"), "sorts after a/ in walk order");
    Files.createDirectories(root.resolve(".replicator"));
    Files.writeString(root.resolve(".replicator/node"), "metadata");
    Files.createSymbolicLink(root.resolve("out"), outside);
    Files.createSymbolicLink(root.resolve("a/in"), root.resolve("a/b"));
  }

  private List<ManifestEntry> manifest(ManifestRequest.Builder request) throws IOException {
    List<ManifestEntry> entries = new ArrayList<>();
    if (request.getBlockSize() == 0) {
      request.setBlockSize(4096);
    }
    ReplicaManifest.write(root, request.setRequestId(1).build(), e -> {
      entries.add(e);
      applied.incrementAndGet(); // changes keep being applied while the walk goes on
    }, applied::get);
    return entries;
  }

  private static List<String> paths(List<ManifestEntry> entries) {
    return entries.stream().map(e -> e.getPath() + ":" + e.getKind()).toList();
  }

  @Test
  void theWholeTreeInWalkOrderWithoutTheMetadataOrWhatLinksLeadTo() throws Exception {
    List<ManifestEntry> entries = manifest(ManifestRequest.newBuilder().setAll(true));
    assertThat(paths(entries)).containsExactly(
        ":DIRECTORY", "a:DIRECTORY", "a/b:DIRECTORY", "a/b/f:FILE", "a/in:SYMBOLIC_LINK", "a-z:FILE",
        "out:SYMBOLIC_LINK");
    ManifestEntry file = entries.get(3);
    assertThat(file.getSize()).isEqualTo(10_000);
    assertThat(file.getBlockHashes().size()).isEqualTo(3 * 16);
    assertThat(entries.get(4).getLinkTarget()).isEqualTo("/a/b");
    // each entry read after the ones before it were handed on: how far changes were applied grows
    assertThat(entries.stream().mapToLong(ManifestEntry::getAppliedBefore)).isSorted();
    assertThat(entries.get(0).getAppliedBefore()).isEqualTo(100);
    assertThat(entries.get(6).getAppliedBefore()).isGreaterThan(100);
  }

  @Test
  void requestedPathsAreNeverReachedThroughALink() throws Exception {
    List<ManifestEntry> entries = manifest(ManifestRequest.newBuilder()
        .addPaths("a/in/f").addPaths("out/secret").addPaths("a/b").setNoDescent(true));
    assertThat(paths(entries)).containsExactly("a/in/f:MISSING", "out/secret:MISSING", "a/b:DIRECTORY");
  }

  @Test
  void theMetadataDirectoryAndMalformedPathsAreRefused() {
    assertThatThrownBy(() -> manifest(ManifestRequest.newBuilder().addPaths(".replicator/node")))
        .isInstanceOf(IOException.class).hasMessageContaining("metadata");
    assertThatThrownBy(() -> manifest(ManifestRequest.newBuilder().addPaths("../outside")))
        .isInstanceOf(IOException.class);
    assertThatThrownBy(() -> manifest(ManifestRequest.newBuilder().setAll(true).setBlockSize(1000)))
        .isInstanceOf(IOException.class).hasMessageContaining("power of two");
  }
}
