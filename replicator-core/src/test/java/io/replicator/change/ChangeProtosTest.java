package io.replicator.change;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.replicator.proto.Change;
import io.replicator.proto.Copy;
import io.replicator.proto.CreateFile;
import io.replicator.proto.CreateLink;
import io.replicator.proto.CreateSymbolicLink;
import io.replicator.proto.Delete;
import io.replicator.proto.Force;
import io.replicator.proto.MakeDirectory;
import io.replicator.proto.Move;
import io.replicator.proto.SetOwner;
import io.replicator.proto.SetPermissions;
import io.replicator.proto.SetTimes;
import io.replicator.proto.Truncate;
import io.replicator.proto.Write;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

@Timeout(10)
class ChangeProtosTest {

  private static final long SEQ = 42;

  static Stream<FileChange> everyKind() {
    return Stream.of(
        new FileChange.Truncate("a/b", 17),
        new FileChange.CreateFile("f", true),
        new FileChange.CreateFile("dir/f", false),
        new FileChange.MakeDirectory("dir/sub"),
        new FileChange.Delete("old"),
        new FileChange.Move("a", "b/c", true, false),
        new FileChange.Move("a", "b", false, true),
        new FileChange.Move("a", "b", false, false, true),
        new FileChange.WriteFile("f", 0, ByteBuffer.allocate(0), true, 0, 0640,
            FileTime.from(Instant.parse("2026-01-02T03:04:05.123456789Z"))),
        new FileChange.WriteFile("dir/f", 4096, ByteBuffer.allocate(0), false, -1, -1, null),
        new FileChange.WriteFile("dir/f", 0, ByteBuffer.allocate(0), false, 1L << 40, -1, null),
        new FileChange.Copy("src", "dst", true, true),
        new FileChange.Copy("src", "dst", false, false),
        new FileChange.CreateSymbolicLink("link", "../../outside/target"),
        new FileChange.CreateSymbolicLink("abs", "/etc/passwd"),
        new FileChange.CreateLink("hard", "existing"),
        new FileChange.SetTimes(
            "f",
            FileTime.from(Instant.parse("2026-01-02T03:04:05.123456789Z")),
            FileTime.from(-1_500, TimeUnit.NANOSECONDS),
            null),
        new FileChange.SetTimes("", null, null, FileTime.fromMillis(0)),
        new FileChange.SetPermissions("f", PosixFilePermissions.fromString("rwxr-x--x")),
        new FileChange.SetPermissions("f", Set.of()),
        new FileChange.SetPermissions("f", EnumSet.allOf(PosixFilePermission.class)),
        new FileChange.SetOwner("f", "alice", "staff"),
        new FileChange.SetOwner("f", null, "staff"),
        new FileChange.SetOwner("f", "alice", null),
        new FileChange.Force("f", true),
        new FileChange.Force("", false));
  }

  @ParameterizedTest
  @MethodSource("everyKind")
  void roundTripsEveryKindWithoutPayload(FileChange change) throws Exception {
    Change proto = ChangeProtos.toProto(SEQ, change);
    assertThat(proto.getSeq()).isEqualTo(SEQ);
    // Through bytes as well, as the wire does.
    Change parsed = Change.parseFrom(proto.toByteArray());
    assertThat(ChangeProtos.fromProto(parsed, null)).isEqualTo(change);
    assertThat(ChangeProtos.fromProto(parsed, ByteBuffer.allocate(0))).isEqualTo(change);
  }

  @Test
  void writeCarriesPathAndPositionAndTakesItsDataFromThePayload() throws Exception {
    byte[] bytes = "hello".getBytes(StandardCharsets.UTF_8);
    FileChange.Write write = new FileChange.Write("dir/file", 1L << 40, ByteBuffer.wrap(bytes));

    Change proto = ChangeProtos.toProto(7, write);

    assertThat(proto.getOpCase()).isEqualTo(Change.OpCase.WRITE);
    assertThat(proto.getWrite().getPath()).isEqualTo("dir/file");
    assertThat(proto.getWrite().getPosition()).isEqualTo(1L << 40);
    assertThat(proto.toByteArray()).hasSizeLessThan(30); // no data inside the header

    ByteBuffer frame = ByteBuffer.wrap("xxhelloyy".getBytes(StandardCharsets.UTF_8));
    frame.position(2).limit(7);
    FileChange.Write back = (FileChange.Write) ChangeProtos.fromProto(proto, frame);
    assertThat(back.path()).isEqualTo("dir/file");
    assertThat(back.position()).isEqualTo(1L << 40);
    assertThat(back.length()).isEqualTo(5);
    assertThat(back.data().isReadOnly()).isTrue();
    byte[] data = new byte[5];
    back.data().duplicate().get(data);
    assertThat(data).isEqualTo(bytes);
    assertThat(frame.position()).as("the caller's buffer is untouched").isEqualTo(2);
  }

  @Test
  void writeFileTakesItsDataFromThePayloadAndKeepsItsAttributes() throws Exception {
    FileTime time = FileTime.from(Instant.parse("2026-05-06T07:08:09Z"));
    FileChange.WriteFile change = new FileChange.WriteFile("d/small", 0,
        ByteBuffer.wrap("content".getBytes(StandardCharsets.UTF_8)), true, 7, 0600, time);

    Change proto = ChangeProtos.toProto(9, change);

    assertThat(proto.getOpCase()).isEqualTo(Change.OpCase.WRITE_FILE);
    assertThat(proto.toByteArray()).as("no data inside the header").hasSizeLessThan(40);
    FileChange back = ChangeProtos.fromProto(Change.parseFrom(proto.toByteArray()),
        ByteBuffer.wrap("content".getBytes(StandardCharsets.UTF_8)));
    assertThat(back).isEqualTo(change);
    assertThat(back.payloadLength()).isEqualTo(7);
    assertThatThrownBy(() -> ChangeProtos.fromProto(op(b -> b.setWriteFile(
        io.replicator.proto.WriteFile.newBuilder().setPath("f").setPosition(5).setCreate(true))), null))
        .isInstanceOf(MalformedChangeException.class).hasMessageContaining("creates the file");
    assertThatThrownBy(() -> ChangeProtos.fromProto(op(b -> b.setWriteFile(
        io.replicator.proto.WriteFile.newBuilder().setPath("f").setMode(01000))), null))
        .isInstanceOf(MalformedChangeException.class).hasMessageContaining("outside 0..0777");
  }

  @Test
  void scatteredBlocksOfAFileTravelAsOneWriteFileOfPieces() throws Exception {
    byte[] bytes = "aaaabbbbbbcc".getBytes(StandardCharsets.UTF_8);
    List<FileChange.WriteFile.Piece> pieces = List.of(new FileChange.WriteFile.Piece(4096, 4),
        new FileChange.WriteFile.Piece(1L << 33, 6), new FileChange.WriteFile.Piece(12, 2));
    FileChange.WriteFile change = new FileChange.WriteFile("d/big", 0, ByteBuffer.wrap(bytes), false, -1, -1, null,
        pieces);

    FileChange back = ChangeProtos.fromProto(Change.parseFrom(ChangeProtos.toProto(3, change).toByteArray()),
        ByteBuffer.wrap(bytes));

    assertThat(back).isEqualTo(change);
    assertThat(((FileChange.WriteFile) back).ranges()).isEqualTo(pieces);
    assertThat(new FileChange.WriteFile("f", 7, ByteBuffer.wrap(bytes), false, -1, -1, null).ranges())
        .as("a plain write file is one range").containsExactly(new FileChange.WriteFile.Piece(7, bytes.length));
  }

  @Test
  void piecesThatDoNotCoverThePayloadExactlyAreRefused() {
    ByteBuffer twelve = ByteBuffer.allocate(12);
    io.replicator.proto.WriteFile.Piece four = piece(0, 4);
    assertThat(malformed(twelve, four, four)).hasMessageContaining("pieces of 8 bytes for a payload of 12");
    assertThat(malformed(twelve, four, piece(8, 6), four)).hasMessageContaining("payload of 12");
    assertThat(malformed(twelve, piece(0, 0), piece(0, 12))).hasMessageContaining("piece of 0 bytes");
    assertThat(malformed(twelve, piece(0, 8), piece(0, -1))).hasMessageContaining("piece of 4294967295 bytes");
    assertThat(malformed(twelve, piece(-1, 12))).hasMessageContaining("overflows");
    assertThat(malformed(twelve, piece(Long.MAX_VALUE - 4, 12))).hasMessageContaining("overflows");
    assertThatThrownBy(() -> ChangeProtos.fromProto(op(b -> b.setWriteFile(io.replicator.proto.WriteFile
        .newBuilder().setPath("f").setCreate(true).addPieces(piece(0, 12)))), ByteBuffer.allocate(12)))
        .isInstanceOf(MalformedChangeException.class).hasMessageContaining("scattered pieces");
    assertThatThrownBy(() -> ChangeProtos.fromProto(op(b -> b.setWriteFile(io.replicator.proto.WriteFile
        .newBuilder().setPath("f").setPosition(4).addPieces(piece(0, 12)))), ByteBuffer.allocate(12)))
        .isInstanceOf(MalformedChangeException.class).hasMessageContaining("scattered pieces");
    assertThatThrownBy(() -> new FileChange.WriteFile("f", 0, ByteBuffer.allocate(3), false, -1, -1, null,
        List.of(new FileChange.WriteFile.Piece(0, 2)))).isInstanceOf(IllegalArgumentException.class);
  }

  private static io.replicator.proto.WriteFile.Piece piece(long position, int length) {
    return io.replicator.proto.WriteFile.Piece.newBuilder().setPosition(position).setLength(length).build();
  }

  private static Throwable malformed(ByteBuffer payload, io.replicator.proto.WriteFile.Piece... pieces) {
    io.replicator.proto.WriteFile.Builder w = io.replicator.proto.WriteFile.newBuilder().setPath("f");
    for (io.replicator.proto.WriteFile.Piece p : pieces) {
      w.addPieces(p);
    }
    Throwable t = catchThrowable(() -> ChangeProtos.fromProto(op(b -> b.setWriteFile(w)), payload.duplicate()));
    assertThat(t).isInstanceOf(MalformedChangeException.class);
    return t;
  }

  @Test
  void writeMayHaveAnEmptyPayload() throws Exception {
    Change proto = ChangeProtos.toProto(1, new FileChange.Write("f", 3, ByteBuffer.allocate(0)));

    assertThat(((FileChange.Write) ChangeProtos.fromProto(proto, ByteBuffer.allocate(0))).length())
        .isZero();
    assertThat(((FileChange.Write) ChangeProtos.fromProto(proto, null)).length()).isZero();
  }

  @Test
  void modeBitsMatchPosixPermissions() {
    assertThat(ChangeProtos.toMode(PosixFilePermissions.fromString("rwxr-x--x"))).isEqualTo(0751);
    assertThat(ChangeProtos.toMode(PosixFilePermissions.fromString("r--------"))).isEqualTo(0400);
    assertThat(ChangeProtos.toMode(PosixFilePermissions.fromString("--------x"))).isEqualTo(0001);
    for (int mode = 0; mode <= 0777; mode++) {
      assertThat(ChangeProtos.toMode(ChangeProtos.toPermissions(mode))).isEqualTo(mode);
    }
  }

  @Test
  void timesAreNanosecondsSinceTheEpoch() throws Exception {
    FileTime time = FileTime.from(Instant.parse("2026-01-02T03:04:05.123456789Z"));
    Change proto = ChangeProtos.toProto(1, new FileChange.SetTimes("f", time, null, null));

    assertThat(proto.getSetTimes().getLastModifiedNanos())
        .isEqualTo(Instant.parse("2026-01-02T03:04:05Z").getEpochSecond() * 1_000_000_000L + 123_456_789L);
    assertThat(proto.getSetTimes().hasLastAccessNanos()).isFalse();
    assertThat(proto.getSetTimes().hasCreationNanos()).isFalse();
  }

  static Stream<Arguments> malformed() {
    ByteBuffer payload = ByteBuffer.wrap(new byte[] {1, 2, 3});
    return Stream.of(
        bad("absolute path", write("/etc/passwd", 0), null, "absolute path"),
        bad("dot-dot", write("..", 0), null, "'..'"),
        bad("dot-dot escape", write("a/../../x", 0), null, "'..'"),
        bad("dot", write("a/./b", 0), null, "'.'"),
        bad("NUL", write("a\0b", 0), null, "NUL"),
        bad("empty element", write("a//b", 0), null, "empty element"),
        bad("trailing slash", write("a/", 0), null, "empty element"),
        bad("root as write target", write("", 0), null, "root directory"),
        bad("too long", write("a".repeat(ChangePaths.MAX_LENGTH + 1), 0), null, "longer than"),
        bad("negative (huge) position", write("f", -1), null, "18446744073709551615"),
        bad(
            "position + length overflows",
            write("f", Long.MAX_VALUE - 1),
            ByteBuffer.allocate(2),
            "overflows"),
        bad(
            "negative (huge) truncate size",
            op(b -> b.setTruncate(Truncate.newBuilder().setPath("f").setSize(-5))),
            null,
            "too large"),
        bad(
            "mode above 0777",
            op(b -> b.setSetPermissions(SetPermissions.newBuilder().setPath("f").setMode(01777))),
            null,
            "01777"),
        bad(
            "mode with high bit",
            op(b -> b.setSetPermissions(SetPermissions.newBuilder().setPath("f").setMode(-1))),
            null,
            "outside 0..0777"),
        bad(
            "payload on a truncate",
            op(b -> b.setTruncate(Truncate.newBuilder().setPath("f").setSize(1))),
            payload,
            "payload bytes on a change that has no data (truncate)"),
        bad(
            "payload on a force",
            op(b -> b.setForce(Force.newBuilder().setPath("f"))),
            payload,
            "payload bytes on a change that has no data (force)"),
        bad("unset op", Change.newBuilder().setSeq(SEQ).build(), null, "no operation"),
        bad(
            "unset op with payload",
            Change.newBuilder().setSeq(SEQ).build(),
            payload,
            "payload bytes on a change that has no data (unknown)"),
        bad(
            "zero seq",
            Change.newBuilder().setWrite(Write.newBuilder().setPath("f")).build(),
            null,
            "seq must be"),
        bad(
            "seq above 2^63",
            Change.newBuilder().setSeq(-2).setWrite(Write.newBuilder().setPath("f")).build(),
            null,
            "seq must be"),
        bad(
            "bad truncate path",
            op(b -> b.setTruncate(Truncate.newBuilder().setPath("../x"))),
            null,
            "truncate"),
        bad(
            "bad create path",
            op(b -> b.setCreateFile(CreateFile.newBuilder().setPath("/x"))),
            null,
            "create file"),
        bad(
            "root as directory to make",
            op(b -> b.setMakeDirectory(MakeDirectory.newBuilder().setPath(""))),
            null,
            "root directory"),
        bad(
            "root deleted",
            op(b -> b.setDelete(Delete.newBuilder().setPath(""))),
            null,
            "root directory"),
        bad(
            "bad move source",
            op(b -> b.setMove(Move.newBuilder().setSource("a/..").setTarget("b"))),
            null,
            "move source"),
        bad(
            "bad move target",
            op(b -> b.setMove(Move.newBuilder().setSource("a").setTarget("/b"))),
            null,
            "move target"),
        bad(
            "root moved",
            op(b -> b.setMove(Move.newBuilder().setSource("").setTarget("b"))),
            null,
            "root directory"),
        bad(
            "bad copy source",
            op(b -> b.setCopy(Copy.newBuilder().setSource("..").setTarget("b"))),
            null,
            "copy source"),
        bad(
            "bad copy target",
            op(b -> b.setCopy(Copy.newBuilder().setSource("a").setTarget("b//c"))),
            null,
            "copy target"),
        bad(
            "bad symbolic link path",
            op(
                b ->
                    b.setCreateSymbolicLink(
                        CreateSymbolicLink.newBuilder().setPath("x/../y").setTarget("t"))),
            null,
            "symbolic link"),
        bad(
            "empty symbolic link target",
            op(b -> b.setCreateSymbolicLink(CreateSymbolicLink.newBuilder().setPath("l"))),
            null,
            "target is empty"),
        bad(
            "NUL in symbolic link target",
            op(
                b ->
                    b.setCreateSymbolicLink(
                        CreateSymbolicLink.newBuilder().setPath("l").setTarget("a\0b"))),
            null,
            "NUL character in symbolic link target"),
        bad(
            "bad hard link existing",
            op(b -> b.setCreateLink(CreateLink.newBuilder().setPath("l").setExisting("/etc/shadow"))),
            null,
            "link existing"),
        bad(
            "bad set times path",
            op(b -> b.setSetTimes(SetTimes.newBuilder().setPath("..").setLastModifiedNanos(1))),
            null,
            "set times"),
        bad(
            "bad owner name",
            op(b -> b.setSetOwner(SetOwner.newBuilder().setPath("f").setOwner("a\0b"))),
            null,
            "bad owner name"),
        bad(
            "bad force path",
            op(b -> b.setForce(Force.newBuilder().setPath("a/"))),
            null,
            "force"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformed")
  void refusesMalformedChangesNamingSeqAndProblem(
      String name, Change proto, ByteBuffer payload, String problem) {
    assertThatThrownBy(() -> ChangeProtos.fromProto(proto, payload))
        .isInstanceOf(MalformedChangeException.class)
        .hasMessageStartingWith("malformed change seq " + Long.toUnsignedString(proto.getSeq()))
        .hasMessageContaining(problem);
  }

  @Test
  void everyOperationKindIsCovered() {
    List<Change.OpCase> covered =
        everyKind().map(c -> ChangeProtos.toProto(1, c).getOpCase()).distinct().toList();
    assertThat(Stream.concat(covered.stream(), Stream.of(Change.OpCase.WRITE)))
        .containsExactlyInAnyOrder(
            Stream.of(Change.OpCase.values())
                .filter(c -> c != Change.OpCase.OP_NOT_SET)
                .toArray(Change.OpCase[]::new));
  }

  private static Arguments bad(String name, Change proto, ByteBuffer payload, String problem) {
    return Arguments.of(name, proto, payload, problem);
  }

  private static Change write(String path, long position) {
    return op(b -> b.setWrite(Write.newBuilder().setPath(path).setPosition(position)));
  }

  private static Change op(java.util.function.Consumer<Change.Builder> setter) {
    Change.Builder b = Change.newBuilder().setSeq(SEQ);
    setter.accept(b);
    return b.build();
  }
}
