package io.replicator.meta;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.jimfs.Configuration;
import com.google.common.jimfs.Jimfs;
import io.replicator.proto.GenerationIds;
import io.replicator.proto.NodeMetadata;
import java.io.IOException;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The two-slot metadata store: round trips, alternation, and falling back past torn or corrupt slots. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class NodeMetadataStoreTest {
  enum Disk { JIMFS, REAL }

  @TempDir
  Path tmp;
  private FileSystem jimfs;

  @AfterEach
  void closeJimfs() throws IOException {
    if (jimfs != null) {
      jimfs.close();
    }
  }

  private Path dir(Disk disk) {
    if (disk == Disk.REAL) {
      return tmp.resolve("meta");
    }
    jimfs = Jimfs.newFileSystem(Configuration.unix());
    return jimfs.getPath("/var/replicator/meta");
  }

  private static NodeMetadata meta(long generation) {
    return NodeMetadata.newBuilder().setFormat(1).setNodeId("node-a")
        .setGenerations(GenerationIds.newBuilder().setCurrent(generation).addHistory(generation - 1))
        .setPeerOutOfDate(generation % 2 == 0).setOutOfDateReason("reason " + generation)
        .setOutOfDateSinceMillis(generation * 1000).build();
  }

  private static Path slot(Path dir, int i) {
    return dir.resolve(NodeMetadataStore.SLOTS[i]);
  }

  /** The slot the write with this counter goes to (the first write has counter 1). */
  private static Path slotOfWrite(Path dir, long counter) {
    return slot(dir, (int) (counter % 2));
  }

  private static void flipBit(Path file, int index, int bit) throws IOException {
    byte[] b = Files.readAllBytes(file);
    b[index] ^= (byte) (1 << bit);
    Files.write(file, b);
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void emptyDirectoryHasNone(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    assertThat(store.found()).isEqualTo(NodeMetadataStore.Found.NONE);
    assertThat(store.current()).isEqualTo(NodeMetadata.getDefaultInstance());
    assertThat(Files.isDirectory(dir)).as("created").isTrue();
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void writeThenReadBack(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    assertThat(store.current()).isEqualTo(meta(1));
    NodeMetadataStore reopened = NodeMetadataStore.open(dir);
    assertThat(reopened.found()).isEqualTo(NodeMetadataStore.Found.VALID);
    assertThat(reopened.current()).isEqualTo(meta(1));
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void writesAlternateBetweenTheSlots(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    assertThat(slotOfWrite(dir, 1)).exists();
    assertThat(slotOfWrite(dir, 2)).doesNotExist();
    store.write(meta(2));
    byte[] first = Files.readAllBytes(slotOfWrite(dir, 1));
    byte[] second = Files.readAllBytes(slotOfWrite(dir, 2));
    store.write(meta(3));
    assertThat(Files.readAllBytes(slotOfWrite(dir, 2))).as("the newest slot is left alone").isEqualTo(second);
    assertThat(Files.readAllBytes(slotOfWrite(dir, 3))).as("the older slot is rewritten").isNotEqualTo(first);
    assertThat(NodeMetadataStore.open(dir).current()).isEqualTo(meta(3));
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void reopenPicksTheNewestAndKeepsCounting(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    for (int i = 1; i <= 5; i++) {
      store.write(meta(i));
    }
    NodeMetadataStore reopened = NodeMetadataStore.open(dir);
    assertThat(reopened.current()).isEqualTo(meta(5));
    // the next write must go to the older slot (counter 6), never over the newest one
    reopened.write(meta(6));
    Files.write(slotOfWrite(dir, 6), new byte[0]);
    assertThat(NodeMetadataStore.open(dir).current()).isEqualTo(meta(5));
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void truncatedNewestSlotFallsBackToTheOlder(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    store.write(meta(2));
    Path newest = slotOfWrite(dir, 2);
    byte[] b = Files.readAllBytes(newest);
    for (int keep : new int[] {0, 3, 20, b.length / 2, b.length - 1}) {
      Files.write(newest, Arrays.copyOf(b, keep));
      NodeMetadataStore reopened = NodeMetadataStore.open(dir);
      assertThat(reopened.found()).as("kept %d bytes", keep).isEqualTo(NodeMetadataStore.Found.VALID);
      assertThat(reopened.current()).as("kept %d bytes", keep).isEqualTo(meta(1));
    }
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void aTornWriteAfterFallingBackOverwritesTheTornSlot(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    store.write(meta(2));
    Files.write(slotOfWrite(dir, 2), new byte[7]);
    NodeMetadataStore reopened = NodeMetadataStore.open(dir);
    reopened.write(meta(3));
    assertThat(Files.readAllBytes(slotOfWrite(dir, 1))).as("the valid older slot survives").isNotEmpty();
    assertThat(NodeMetadataStore.open(dir).current()).isEqualTo(meta(3));
    Files.write(slotOfWrite(dir, 2), new byte[0]);
    assertThat(NodeMetadataStore.open(dir).current()).isEqualTo(meta(1));
  }

  @Test
  void aBitFlipAnywhereInTheNewestSlotFallsBack() throws IOException {
    Path dir = dir(Disk.JIMFS);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    store.write(meta(2));
    Path newest = slotOfWrite(dir, 2);
    byte[] original = Files.readAllBytes(newest);
    for (int i = 0; i < original.length; i++) {
      for (int bit = 0; bit < 8; bit++) {
        Files.write(newest, original);
        flipBit(newest, i, bit);
        NodeMetadataStore reopened = NodeMetadataStore.open(dir);
        assertThat(reopened.current()).as("byte %d bit %d", i, bit).isEqualTo(meta(1));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void aBitFlipInTheOlderSlotKeepsTheNewest(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    store.write(meta(2));
    flipBit(slotOfWrite(dir, 1), 25, 3);
    NodeMetadataStore reopened = NodeMetadataStore.open(dir);
    assertThat(reopened.found()).isEqualTo(NodeMetadataStore.Found.VALID);
    assertThat(reopened.current()).isEqualTo(meta(2));
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void bothSlotsCorruptIsReportedAsCorrupt(Disk disk) throws IOException {
    Path dir = dir(disk);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    store.write(meta(1));
    store.write(meta(2));
    flipBit(slot(dir, 0), 30, 0);
    Files.write(slot(dir, 1), Arrays.copyOf(Files.readAllBytes(slot(dir, 1)), 10));
    NodeMetadataStore reopened = NodeMetadataStore.open(dir);
    assertThat(reopened.found()).isEqualTo(NodeMetadataStore.Found.CORRUPT);
    assertThat(reopened.current()).isEqualTo(NodeMetadata.getDefaultInstance());
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void aSingleEmptySlotIsCorruptNotNone(Disk disk) throws IOException {
    Path dir = dir(disk);
    Files.createDirectories(dir);
    // a crash right after the first create: the file exists, nothing was written
    Files.write(slot(dir, 1), new byte[0]);
    assertThat(NodeMetadataStore.open(dir).found()).isEqualTo(NodeMetadataStore.Found.CORRUPT);
  }

  @ParameterizedTest
  @EnumSource(Disk.class)
  void writingAfterCorruptionRecovers(Disk disk) throws IOException {
    Path dir = dir(disk);
    Files.createDirectories(dir);
    Files.write(slot(dir, 0), "garbage".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    Files.write(slot(dir, 1), new byte[64]);
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    assertThat(store.found()).isEqualTo(NodeMetadataStore.Found.CORRUPT);
    store.write(meta(9));
    NodeMetadataStore reopened = NodeMetadataStore.open(dir);
    assertThat(reopened.found()).isEqualTo(NodeMetadataStore.Found.VALID);
    assertThat(reopened.current()).isEqualTo(meta(9));
  }
}
