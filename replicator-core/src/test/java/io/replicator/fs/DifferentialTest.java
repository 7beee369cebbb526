package io.replicator.fs;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedWriter;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs each {@code Files.*} scenario once on a delegate directory directly and once through the
 * wrapper, on the default file system and on jimfs, and expects the same result or the same
 * exception class naming the same file; the mirror must then equal the delegate tree.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DifferentialTest {

  @FunctionalInterface
  interface Body {
    Object run(Path root) throws Exception;
  }

  /** A scenario; {@code skipOn} names a delegate whose own behaviour is not the JDK's. */
  record Scenario(String name, Body body, FsKind skipOn) {
    Scenario(String name, Body body) {
      this(name, body, null);
    }

    @Override
    public String toString() {
      return name;
    }
  }

  @TempDir Path tempDir;

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (FsKind kind : FsKind.values()) {
      for (Scenario scenario : scenarios()) {
        if (scenario.skipOn() == kind) {
          continue;
        }
        cases.add(Arguments.of(kind, scenario));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void sameBehaviourDirectlyAndThroughTheWrapper(FsKind kind, Scenario scenario) throws Exception {
    try (Fixture fixture = Fixture.open(kind, tempDir)) {
      Path direct = Files.createDirectories(fixture.base.path().resolve("direct"));
      String expected = outcome(scenario, direct);
      String actual = outcome(scenario, fixture.fs.getPath("/"));
      assertThat(actual).as(scenario.name()).isEqualTo(expected);
      fixture.assertMirrored();
    }
  }

  private static String outcome(Scenario scenario, Path root) {
    try {
      return "ok " + scenario.body().run(root);
    } catch (Exception e) {
      StringBuilder out = new StringBuilder("threw ").append(e.getClass().getSimpleName());
      if (e instanceof FileSystemException) {
        FileSystemException fse = (FileSystemException) e;
        out.append(" file=").append(relative(fse.getFile(), root));
        out.append(" other=").append(relative(fse.getOtherFile(), root));
      }
      return out.toString();
    }
  }

  private static String relative(String file, Path root) {
    if (file == null) {
      return null;
    }
    String base = root.toString().endsWith("/") ? root.toString() : root + "/";
    return file.startsWith(base) ? file.substring(base.length()) : file;
  }

  private static byte[] bytes(String text) {
    return text.getBytes(UTF_8);
  }

  private static String read(Path file) throws Exception {
    return new String(Files.readAllBytes(file), UTF_8);
  }

  private static List<Scenario> scenarios() {
    return List.of(
        new Scenario("write and read", root -> {
          Files.write(root.resolve("a.txt"), bytes("hello"));
          return read(root.resolve("a.txt"));
        }),
        new Scenario("append", root -> {
          Path a = root.resolve("a");
          Files.write(a, bytes("ab"));
          Files.write(a, bytes("cd"), StandardOpenOption.APPEND);
          return read(a);
        }),
        new Scenario("createFile twice", root -> {
          Files.createFile(root.resolve("f"));
          return Files.createFile(root.resolve("f"));
        }),
        new Scenario("delete missing", root -> {
          Files.delete(root.resolve("missing"));
          return null;
        }),
        new Scenario("delete non-empty directory", root -> {
          Files.createDirectories(root.resolve("d/e"));
          Files.delete(root.resolve("d"));
          return null;
        }),
        new Scenario("move onto existing without replace", root -> {
          Files.write(root.resolve("a"), bytes("a"));
          Files.write(root.resolve("b"), bytes("b"));
          Files.move(root.resolve("a"), root.resolve("b"));
          return null;
        }),
        new Scenario("move with replace", root -> {
          Files.write(root.resolve("a"), bytes("a"));
          Files.write(root.resolve("b"), bytes("b"));
          Files.move(root.resolve("a"), root.resolve("b"), StandardCopyOption.REPLACE_EXISTING);
          return Files.exists(root.resolve("a")) + " " + read(root.resolve("b"));
        }),
        new Scenario("atomic move", root -> {
          Files.write(root.resolve("a"), bytes("a"));
          Files.move(root.resolve("a"), root.resolve("c"), StandardCopyOption.ATOMIC_MOVE);
          return read(root.resolve("c"));
        }),
        new Scenario("move a directory with content", root -> {
          Files.createDirectories(root.resolve("d/e"));
          Files.write(root.resolve("d/e/f"), bytes("f"));
          Files.move(root.resolve("d"), root.resolve("g"));
          return read(root.resolve("g/e/f")) + Files.exists(root.resolve("d"));
        }),
        new Scenario("copy, copy onto existing, copy with replace", root -> {
          Files.write(root.resolve("a"), bytes("a"));
          Files.copy(root.resolve("a"), root.resolve("b"));
          Files.write(root.resolve("c"), bytes("c"));
          String first;
          try {
            Files.copy(root.resolve("a"), root.resolve("c"));
            first = "copied";
          } catch (FileSystemException e) {
            first = e.getClass().getSimpleName() + " " + relative(e.getFile(), root);
          }
          Files.copy(root.resolve("c"), root.resolve("b"), StandardCopyOption.REPLACE_EXISTING);
          return first + " " + read(root.resolve("b"));
        }),
        new Scenario("copy attributes keeps the time", root -> {
          Files.write(root.resolve("a"), bytes("a"));
          Files.setLastModifiedTime(root.resolve("a"), FileTime.fromMillis(1_000_000_000_000L));
          Files.copy(root.resolve("a"), root.resolve("b"), StandardCopyOption.COPY_ATTRIBUTES);
          return Files.getLastModifiedTime(root.resolve("b")).toMillis();
        }),
        new Scenario("walk", root -> {
          Files.createDirectories(root.resolve("x/y"));
          Files.write(root.resolve("x/y/z"), bytes("z"));
          Files.write(root.resolve("x/w"), bytes("w"));
          try (Stream<Path> walk = Files.walk(root)) {
            return walk.map(p -> root.relativize(p).toString()).sorted().collect(Collectors.toList());
          }
        }),
        new Scenario("directory stream with glob", root -> {
          Files.write(root.resolve("a.txt"), bytes("1"));
          Files.write(root.resolve("b.txt"), bytes("2"));
          Files.write(root.resolve("c.bin"), bytes("3"));
          List<String> names = new ArrayList<>();
          try (DirectoryStream<Path> stream = Files.newDirectoryStream(root, "*.txt")) {
            for (Path p : stream) {
              names.add(p.getFileName().toString() + " " + p.getParent().equals(root));
            }
          }
          names.sort(null);
          return names;
        }),
        new Scenario("list", root -> {
          Files.createDirectory(root.resolve("d"));
          Files.write(root.resolve("d/1"), bytes("1"));
          Files.write(root.resolve("d/2"), bytes("2"));
          try (Stream<Path> list = Files.list(root.resolve("d"))) {
            return list.map(p -> root.relativize(p).toString()).sorted().collect(Collectors.toList());
          }
        }),
        new Scenario("read attributes", root -> {
          Files.write(root.resolve("f"), bytes("12345"));
          Files.createDirectory(root.resolve("d"));
          BasicFileAttributes f = Files.readAttributes(root.resolve("f"), BasicFileAttributes.class);
          BasicFileAttributes d = Files.readAttributes(root.resolve("d"), BasicFileAttributes.class);
          return f.size() + " " + f.isRegularFile() + " " + d.isDirectory() + " "
              + Files.readAttributes(root.resolve("f"), "size,isDirectory").get("size");
        }),
        new Scenario("read attributes of missing", root ->
            Files.readAttributes(root.resolve("nope"), BasicFileAttributes.class)),
        new Scenario("set last modified time", root -> {
          Files.write(root.resolve("f"), bytes("1"));
          Files.setLastModifiedTime(root.resolve("f"), FileTime.fromMillis(1_500_000_000_000L));
          return Files.getLastModifiedTime(root.resolve("f")).toMillis();
        }),
        new Scenario("set attribute basic:lastModifiedTime", root -> {
          Files.write(root.resolve("f"), bytes("1"));
          Files.setAttribute(root.resolve("f"), "basic:lastModifiedTime",
              FileTime.fromMillis(1_400_000_000_000L));
          return Files.getAttribute(root.resolve("f"), "lastModifiedTime");
        }),
        new Scenario("posix permissions", root -> {
          Files.write(root.resolve("f"), bytes("1"));
          Files.setPosixFilePermissions(root.resolve("f"), PosixFilePermissions.fromString("rw-r-----"));
          Files.createDirectory(root.resolve("d"), PosixFilePermissions.asFileAttribute(
              PosixFilePermissions.fromString("rwx------")));
          Files.setAttribute(root.resolve("d"), "posix:permissions",
              PosixFilePermissions.fromString("rwxr-x---"));
          return PosixFilePermissions.toString(Files.getPosixFilePermissions(root.resolve("f")))
              + PosixFilePermissions.toString(Files.getPosixFilePermissions(root.resolve("d")));
        }),
        new Scenario("symbolic links", root -> {
          Files.write(root.resolve("t"), bytes("target"));
          Files.createSymbolicLink(root.resolve("rel"), root.getFileSystem().getPath("t"));
          Files.createSymbolicLink(root.resolve("abs"), root.resolve("t"));
          return Files.readSymbolicLink(root.resolve("rel")) + " "
              + relative(Files.readSymbolicLink(root.resolve("abs")).toString(), root) + " "
              + Files.isSymbolicLink(root.resolve("abs")) + " " + read(root.resolve("rel"))
              + " " + read(root.resolve("abs"));
        }),
        new Scenario("delete a symbolic link keeps its target", root -> {
          Files.write(root.resolve("t"), bytes("t"));
          Files.createSymbolicLink(root.resolve("l"), root.getFileSystem().getPath("t"));
          Files.delete(root.resolve("l"));
          return Files.exists(root.resolve("t")) + " " + Files.exists(root.resolve("l"), LinkOption.NOFOLLOW_LINKS);
        }),
        new Scenario("read a non-link as link", root -> {
          Files.write(root.resolve("f"), bytes("f"));
          return Files.readSymbolicLink(root.resolve("f"));
        }),
        new Scenario("hard link", root -> {
          Files.write(root.resolve("a"), bytes("a"));
          Files.createLink(root.resolve("h"), root.resolve("a"));
          return Files.isSameFile(root.resolve("a"), root.resolve("h")) + read(root.resolve("h"));
        }),
        new Scenario("truncate through a channel", root -> {
          try (FileChannel ch = FileChannel.open(root.resolve("f"), StandardOpenOption.CREATE,
              StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes("0123456789")));
            ch.truncate(4);
            ch.truncate(100);
            return ch.size() + " " + ch.position() + " " + read(root.resolve("f"));
          }
        }),
        new Scenario("seekable channel position and size", root -> {
          try (SeekableByteChannel ch = Files.newByteChannel(root.resolve("f"),
              StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
            ch.write(ByteBuffer.wrap(bytes("abcdef")));
            ch.position(2);
            ch.write(ByteBuffer.wrap(bytes("XY")));
            ch.position(10);
            ch.write(ByteBuffer.wrap(bytes("Z")));
            ByteBuffer all = ByteBuffer.allocate(20);
            ch.position(0);
            int n = ch.read(all);
            return ch.size() + " " + n + " " + new String(all.array(), 0, n, UTF_8).replace('\0', '.');
          }
        }),
        new Scenario("positional write past the end", root -> {
          try (FileChannel ch = FileChannel.open(root.resolve("f"), StandardOpenOption.CREATE,
              StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes("end")), 5000);
            return ch.size() + " " + ch.position();
          }
        }),
        new Scenario("create directories", root -> {
          Files.createDirectories(root.resolve("a/b/c"));
          return Files.isDirectory(root.resolve("a/b/c"));
        }),
        new Scenario("create existing directory", root -> {
          Files.createDirectory(root.resolve("d"));
          return Files.createDirectory(root.resolve("d"));
        }),
        new Scenario("create directory in missing parent", root ->
            Files.createDirectory(root.resolve("no/d"))),
        new Scenario("buffered writer and lines", root -> {
          try (BufferedWriter w = Files.newBufferedWriter(root.resolve("t"))) {
            w.write("one\ntwo\n");
          }
          return Files.readAllLines(root.resolve("t"));
        }),
        new Scenario("write and read a string", root -> {
          Files.writeString(root.resolve("s"), "héllo");
          return Files.readString(root.resolve("s"));
        }),
        new Scenario("read missing", root -> Files.readAllBytes(root.resolve("missing"))),
        new Scenario("output stream create new on existing", root -> {
          Files.write(root.resolve("f"), bytes("1"));
          try (OutputStream out = Files.newOutputStream(root.resolve("f"), StandardOpenOption.CREATE_NEW)) {
            out.write(1);
          }
          return null;
        }),
        new Scenario("open missing without create", root ->
            Files.newByteChannel(root.resolve("missing"), StandardOpenOption.WRITE)),
        new Scenario("delete if exists", root -> {
          Files.write(root.resolve("f"), bytes("1"));
          return Files.deleteIfExists(root.resolve("f")) + " " + Files.deleteIfExists(root.resolve("f"));
        }),
        new Scenario("size, exists, same file", root -> {
          Files.write(root.resolve("f"), bytes("123"));
          return Files.size(root.resolve("f")) + " " + Files.exists(root.resolve("f"))
              + " " + Files.notExists(root.resolve("g"))
              + " " + Files.isSameFile(root.resolve("f"), root.resolve("./f"));
        }),
        new Scenario("real path", root -> {
          Files.createDirectory(root.resolve("d"));
          Files.write(root.resolve("d/f"), bytes("1"));
          Files.createSymbolicLink(root.resolve("l"), root.getFileSystem().getPath("d"));
          Path real = root.resolve("l/f").toRealPath();
          return root.toRealPath().relativize(real).toString();
        }),
        new Scenario("temp file", root -> {
          Path temp = Files.createTempFile(root, "x", ".tmp");
          Files.write(temp, bytes("temp"));
          // No permissions here: the JDK makes temp files private only on the default file
          // system itself, so through any wrapper they get the umask's permissions.
          return temp.getFileName().toString().startsWith("x") + " " + Files.size(temp);
        }),
        new Scenario("delete on close", root -> {
          try (SeekableByteChannel ch = Files.newByteChannel(root.resolve("f"), StandardOpenOption.CREATE_NEW,
              StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE)) {
            ch.write(ByteBuffer.wrap(bytes("gone")));
          }
          return Files.exists(root.resolve("f"));
        }, FsKind.JIMFS), // jimfs ignores DELETE_ON_CLOSE; the wrapper deletes, as the JDK says
        new Scenario("gather write and scatter read", root -> {
          try (FileChannel ch = FileChannel.open(root.resolve("f"), StandardOpenOption.CREATE,
              StandardOpenOption.WRITE, StandardOpenOption.READ)) {
            ch.write(new ByteBuffer[] {ByteBuffer.wrap(bytes("ab")), ByteBuffer.allocate(0),
                ByteBuffer.wrap(bytes("cde"))});
            ByteBuffer one = ByteBuffer.allocate(1);
            ByteBuffer rest = ByteBuffer.allocate(10);
            ch.position(0);
            long n = ch.read(new ByteBuffer[] {one, rest});
            return n + " " + read(root.resolve("f"));
          }
        }),
        new Scenario("transfer between channels", root -> {
          Files.write(root.resolve("src"), bytes("transfer me"));
          try (FileChannel in = FileChannel.open(root.resolve("src"));
              FileChannel out = FileChannel.open(root.resolve("dst"), StandardOpenOption.CREATE,
                  StandardOpenOption.WRITE)) {
            long n = out.transferFrom(in, 0, 100);
            long m = in.transferTo(0, 8, out);
            return n + " " + m + " " + read(root.resolve("dst"));
          }
        }));
  }
}
