package io.replicator.meta;

import static org.assertj.core.api.Assertions.assertThat;

import io.replicator.proto.NodeMetadata;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.DisplayNameGeneration;
import org.junit.jupiter.api.DisplayNameGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@DisplayNameGeneration(DisplayNameGenerator.ReplaceUnderscores.class)
class DirtyBitmapStoreTest {
  @TempDir Path dir;

  @Test
  void a_new_store_finds_nothing() throws IOException {
    DirtyBitmapStore store = DirtyBitmapStore.open(dir, 512);
    assertThat(store.found()).isEqualTo(StoreState.NONE);
    assertThat(store.bitmap().isEmpty()).isTrue();
    assertThat(store.bitmap().blockSize()).isEqualTo(512);
  }

  @Test
  void the_newest_bitmap_survives_a_reopen() throws IOException {
    DirtyBitmapStore store = DirtyBitmapStore.open(dir);
    DirtyBitmap b = store.bitmap();
    b.markWrite("a", 0, 1);
    store.write(b);
    b.markWrite("a", 4096, 1);
    b.markPath("p");
    store.write(b);
    DirtyBitmapStore again = DirtyBitmapStore.open(dir);
    assertThat(again.found()).isEqualTo(StoreState.VALID);
    assertThat(again.bitmap().dirtyBlocks()).isEqualTo(2);
    assertThat(again.bitmap().snapshot().paths()).containsExactly("p");
  }

  @Test
  void a_torn_newest_slot_falls_back_to_the_previous_bitmap() throws IOException {
    DirtyBitmapStore store = DirtyBitmapStore.open(dir);
    DirtyBitmap b = store.bitmap();
    b.markWrite("a", 0, 1);
    store.write(b); // counter 1 -> slot 1
    b.markWrite("a", 4096, 1);
    store.write(b); // counter 2 -> slot 0
    Path newest = dir.resolve(DirtyBitmapStore.SLOTS[0]);
    long size = Files.size(newest);
    try (var ch = Files.newByteChannel(newest, StandardOpenOption.WRITE)) {
      ch.truncate(size - 3);
    }
    DirtyBitmapStore again = DirtyBitmapStore.open(dir);
    assertThat(again.found()).isEqualTo(StoreState.VALID);
    assertThat(again.bitmap().dirtyBlocks()).isEqualTo(1);
    // Writing again goes on from the surviving counter and is read back.
    again.bitmap().markPath("z");
    again.write(again.bitmap());
    assertThat(DirtyBitmapStore.open(dir).bitmap().snapshot().paths()).containsExactly("z");
  }

  @Test
  void all_slots_damaged_is_corrupt() throws IOException {
    DirtyBitmapStore store = DirtyBitmapStore.open(dir);
    store.bitmap().markWrite("a", 0, 1);
    store.write(store.bitmap());
    store.write(store.bitmap());
    for (String slot : DirtyBitmapStore.SLOTS) {
      byte[] bytes = Files.readAllBytes(dir.resolve(slot));
      bytes[bytes.length / 2] ^= 0x40;
      Files.write(dir.resolve(slot), bytes);
    }
    DirtyBitmapStore again = DirtyBitmapStore.open(dir);
    assertThat(again.found()).isEqualTo(StoreState.CORRUPT);
    assertThat(again.bitmap().isEmpty()).isTrue();
  }

  @Test
  void every_truncation_of_a_slot_leaves_the_other_readable() throws IOException {
    DirtyBitmapStore store = DirtyBitmapStore.open(dir);
    DirtyBitmap b = store.bitmap();
    b.markWrite("a", 0, 1);
    store.write(b); // slot 1: one block
    b.markWrite("a", 1 << 20, 1);
    store.write(b); // slot 0: two blocks
    Path slot0 = dir.resolve(DirtyBitmapStore.SLOTS[0]);
    byte[] full = Files.readAllBytes(slot0);
    for (int cut = 0; cut < full.length; cut++) {
      Files.write(slot0, java.util.Arrays.copyOf(full, cut));
      DirtyBitmapStore again = DirtyBitmapStore.open(dir);
      assertThat(again.found()).isEqualTo(StoreState.VALID);
      assertThat(again.bitmap().dirtyBlocks()).as("cut at %d", cut).isEqualTo(1);
    }
  }

  @Test
  void node_metadata_store_still_reads_and_writes_through_the_shared_slots() throws IOException {
    NodeMetadataStore store = NodeMetadataStore.open(dir);
    assertThat(store.found()).isEqualTo(NodeMetadataStore.Found.NONE);
    NodeMetadata m = NodeMetadata.newBuilder().setNodeId("n1")
        .setGenerations(GenerationIds.NONE.newGeneration(5).toProto()).build();
    store.write(m);
    store.write(m.toBuilder().setDiscardLocal(true).build());
    NodeMetadataStore again = NodeMetadataStore.open(dir);
    assertThat(again.found()).isEqualTo(NodeMetadataStore.Found.VALID);
    assertThat(again.current().getDiscardLocal()).isTrue();
    assertThat(GenerationIds.fromProto(again.current().getGenerations()).current()).isEqualTo(5);
  }
}
