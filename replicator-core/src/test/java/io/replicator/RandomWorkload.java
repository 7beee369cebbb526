package io.replicator;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A seeded random workload that uses every kind of change: each thread owns a directory where it
 * creates, writes, appends, truncates, renames, copies, links, deletes and sets attributes, and all
 * threads overlap with positional writes on shared files. Same seed, same operations per thread.
 */
public final class RandomWorkload {
  private RandomWorkload() {}

  public static void run(FileSystem fs, int threads, int opsPerThread, long seed) throws Exception {
    run(fs, threads, opsPerThread, seed, 0);
  }

  /** As {@link #run(FileSystem, int, int, long)}, the threads owning directories from {@code firstWorker} on. */
  public static void run(FileSystem fs, int threads, int opsPerThread, long seed, int firstWorker) throws Exception {
    Path shared = Files.createDirectories(fs.getPath("/shared"));
    for (int s = 0; s < 3; s++) {
      Files.write(shared.resolve("s" + s), new byte[32 * 1024]);
    }
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int id = firstWorker + t;
        futures.add(pool.submit(() -> {
          new Worker(fs, id, new Random(seed * 1_000_003L + id), shared).run(opsPerThread);
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get(100, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static final class Worker {
    final Random rnd;
    final Path own;
    final Path shared;
    final List<Path> files = new ArrayList<>();
    final List<Path> dirs = new ArrayList<>();
    int next;

    Worker(FileSystem fs, int id, Random rnd, Path shared) throws IOException {
      this.rnd = rnd;
      this.shared = shared;
      this.own = Files.createDirectories(fs.getPath("/w" + id));
      dirs.add(own);
    }

    void run(int ops) throws IOException {
      for (int i = 0; i < ops; i++) {
        int dice = files.isEmpty() ? 0 : rnd.nextInt(20);
        switch (dice) {
          case 0 -> create();
          case 1, 2 -> positional();
          case 3 -> gather();
          case 4 -> append();
          case 5 -> truncate();
          case 6 -> rename();
          case 7 -> delete();
          case 8 -> copy();
          case 9 -> mkdirAndMoveInto();
          case 10 -> symlink();
          case 11 -> times();
          case 12 -> permissions();
          case 13 -> force();
          case 14 -> transferFrom();
          case 15 -> outputStreamOverwrite();
          case 16 -> tempFile();
          default -> sharedWrite();
        }
      }
    }

    private Path pick() {
      return files.get(rnd.nextInt(files.size()));
    }

    private Path newName() {
      return dirs.get(rnd.nextInt(dirs.size())).resolve("f" + next++);
    }

    private byte[] data() {
      byte[] b = new byte[1 + rnd.nextInt(12_000)];
      rnd.nextBytes(b);
      return b;
    }

    private void create() throws IOException {
      Path p = newName();
      Files.write(p, data(), StandardOpenOption.CREATE_NEW);
      files.add(p);
    }

    private void positional() throws IOException {
      try (FileChannel ch = FileChannel.open(pick(), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data()), rnd.nextInt(100_000));
      }
    }

    private void gather() throws IOException {
      try (FileChannel ch = FileChannel.open(pick(), StandardOpenOption.WRITE)) {
        ch.position(rnd.nextInt(50_000));
        ch.write(new ByteBuffer[] {ByteBuffer.wrap(data()), ByteBuffer.wrap(data()), ByteBuffer.wrap(data())});
      }
    }

    private void append() throws IOException {
      Files.write(pick(), data(), StandardOpenOption.APPEND);
    }

    private void truncate() throws IOException {
      try (FileChannel ch = FileChannel.open(pick(), StandardOpenOption.WRITE)) {
        ch.truncate(rnd.nextInt((int) Math.max(1, ch.size())));
      }
    }

    private void rename() throws IOException {
      Path from = pick();
      Path to = rnd.nextBoolean() || files.size() < 2 ? newName() : pick();
      if (from.equals(to)) {
        return;
      }
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
      files.remove(from);
      if (!files.contains(to)) {
        files.add(to);
      }
    }

    private void delete() throws IOException {
      Path p = pick();
      Files.delete(p);
      files.remove(p);
    }

    private void copy() throws IOException {
      Path to = newName();
      Files.copy(pick(), to);
      files.add(to);
    }

    private void mkdirAndMoveInto() throws IOException {
      Path dir = own.resolve("d" + next++);
      Files.createDirectory(dir);
      dirs.add(dir);
      Path from = pick();
      Path to = dir.resolve(from.getFileName());
      Files.move(from, to);
      files.remove(from);
      files.add(to);
    }

    private void symlink() throws IOException {
      Path link = own.resolve("l" + next++);
      Files.createSymbolicLink(link, link.getParent().relativize(pick()));
    }

    private void times() throws IOException {
      Files.setLastModifiedTime(pick(), FileTime.fromMillis(1_600_000_000_000L + rnd.nextInt(1_000_000) * 1000L));
    }

    private void permissions() throws IOException {
      Set<PosixFilePermission> perms = EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
      for (PosixFilePermission p : PosixFilePermission.values()) {
        if (rnd.nextInt(3) == 0) {
          perms.add(p);
        }
      }
      Files.setPosixFilePermissions(pick(), perms);
    }

    private void force() throws IOException {
      try (FileChannel ch = FileChannel.open(pick(), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data()), 0);
        ch.force(rnd.nextBoolean());
      }
    }

    private void transferFrom() throws IOException {
      Path src = pick();
      Path dst = pick();
      if (src.equals(dst)) {
        return;
      }
      try (FileChannel in = FileChannel.open(src, StandardOpenOption.READ);
          FileChannel out = FileChannel.open(dst, StandardOpenOption.WRITE)) {
        out.transferFrom(in, rnd.nextInt(10_000), in.size());
      }
    }

    private void outputStreamOverwrite() throws IOException {
      try (OutputStream out = Files.newOutputStream(pick())) {
        out.write(data());
      }
    }

    private void tempFile() throws IOException {
      Path p = Files.createTempFile(own, "tmp", ".t");
      files.add(p);
    }

    private void sharedWrite() throws IOException {
      try (FileChannel ch = FileChannel.open(shared.resolve("s" + rnd.nextInt(3)), StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(data()), rnd.nextInt(32 * 1024));
      }
    }
  }
}
