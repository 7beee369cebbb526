package io.replicator.cluster;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.EnumSet;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * The admin token an agent makes for itself when none is configured, in a file only its user can
 * read, so that every admin operation needs a token without anyone typing one. The file lives in
 * the user's runtime directory, named after the admin port: {@code $REPLICATOR_RUNTIME_DIR}, else
 * {@code ~/.replicator}, holds {@code admin-7480.token}. The CLI and the embedded library, run by
 * the same user on the same machine, find it there from the admin address alone.
 *
 * <p>A token found this way is only ever sent to an address of this machine: it belongs to a local
 * agent, and must not travel to whatever host a command line names.
 */
public final class AdminTokenFile {
  /** Overrides the runtime directory (tests, or agents run under a service user with another home). */
  public static final String RUNTIME_DIRECTORY_VARIABLE = "REPLICATOR_RUNTIME_DIR";
  private static final Set<PosixFilePermission> OWNER_ONLY_FILE = EnumSet.of(PosixFilePermission.OWNER_READ,
      PosixFilePermission.OWNER_WRITE);
  private static final int TOKEN_BYTES = 32;

  private AdminTokenFile() {}

  /** The runtime directory for {@code environment} ({@code System::getenv} in production). */
  public static Path runtimeDirectory(Function<String, String> environment) {
    String configured = environment.apply(RUNTIME_DIRECTORY_VARIABLE);
    if (configured != null && !configured.isBlank()) {
      return Path.of(configured);
    }
    return Path.of(System.getProperty("user.home"), ".replicator");
  }

  /** The token file of the agent whose admin endpoint listens on {@code port}. */
  public static Path forPort(Function<String, String> environment, int port) {
    return runtimeDirectory(environment).resolve("admin-" + port + ".token");
  }

  /**
   * The token in {@code file}, made first when the file does not exist: 32 random bytes,
   * base64url, written with owner-only permissions (the directory owner-only too when it is made).
   *
   * @throws IOException when the file cannot be made or read, is empty, or others may read it
   */
  public static String readOrCreate(Path file) throws IOException {
    if (!Files.exists(file)) {
      create(file);
    }
    checkOwnerOnly(file);
    String token = Files.readString(file, StandardCharsets.US_ASCII).strip();
    if (token.isEmpty()) {
      throw new IOException("admin token file " + file + " is empty; delete it to have a new one made");
    }
    return token;
  }

  /**
   * The token of the local agent whose admin endpoint is {@code admin}, when that address is one
   * of this machine's and its token file is there and readable.
   */
  public static Optional<String> find(Function<String, String> environment, InetSocketAddress admin) {
    if (!isLocal(admin)) {
      return Optional.empty();
    }
    Path file = forPort(environment, admin.getPort());
    if (!Files.isReadable(file)) {
      return Optional.empty();
    }
    try {
      String token = Files.readString(file, StandardCharsets.US_ASCII).strip();
      return token.isEmpty() ? Optional.empty() : Optional.of(token);
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /** Whether {@code address} is loopback or one of this machine's interface addresses. */
  static boolean isLocal(InetSocketAddress address) {
    InetAddress a = address.isUnresolved() ? resolve(address.getHostString()) : address.getAddress();
    if (a == null) {
      return false;
    }
    if (a.isLoopbackAddress() || a.isAnyLocalAddress()) {
      return true;
    }
    try {
      return NetworkInterface.getByInetAddress(a) != null;
    } catch (SocketException e) {
      return false;
    }
  }

  private static InetAddress resolve(String host) {
    try {
      return InetAddress.getByName(host);
    } catch (IOException e) {
      return null;
    }
  }

  private static void create(Path file) throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    if (!Files.isDirectory(dir)) {
      if (posix(dir.getParent())) {
        Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(
            EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_EXECUTE)));
      } else {
        Files.createDirectories(dir);
      }
    }
    byte[] random = new byte[TOKEN_BYTES];
    new SecureRandom().nextBytes(random);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(random);
    // Made owner-only from the start (never readable by others, not even for a moment), then moved
    // into place, so a reader never sees half a token.
    Path temporary = posix(dir)
        ? Files.createTempFile(dir, ".admin-", ".tmp", PosixFilePermissions.asFileAttribute(OWNER_ONLY_FILE))
        : Files.createTempFile(dir, ".admin-", ".tmp");
    try {
      Files.writeString(temporary, token + "\n", StandardCharsets.US_ASCII);
      try {
        Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temporary, file);
      }
    } catch (FileAlreadyExistsException e) {
      // Another agent start made it at the same moment: use theirs.
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  private static void checkOwnerOnly(Path file) throws IOException {
    PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class);
    if (view == null) {
      return;
    }
    Set<PosixFilePermission> permissions = view.readAttributes().permissions();
    if (!OWNER_ONLY_FILE.containsAll(permissions)) {
      throw new IOException("admin token file " + file + " may be read by others ("
          + PosixFilePermissions.toString(permissions) + "); run chmod 600 on it, or delete it to have a new one made");
    }
  }

  private static boolean posix(Path dir) {
    return dir != null && Files.getFileAttributeView(dir, PosixFileAttributeView.class) != null
        || dir == null && java.nio.file.FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
  }
}
