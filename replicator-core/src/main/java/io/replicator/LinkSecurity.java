package io.replicator;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;

/**
 * How a link between two nodes is protected: a shared secret that both sides prove they hold
 * (HMAC-SHA256 challenge–response in the handshake, mutual), mutual TLS with PEM files, or both.
 * Both ends of a link must be configured alike. Immutable; the secret never appears in {@link
 * #toString()} or in any message.
 *
 * <pre>{@code
 * LinkSecurity security = LinkSecurity.secretFile(Path.of("/etc/replicator/secret"))
 *     .withTls(Path.of("node.crt"), Path.of("node.key"), Path.of("ca.crt"));
 * }</pre>
 */
public final class LinkSecurity {
  /** Shortest shared secret accepted, in bytes: anything shorter is guessable offline. */
  public static final int MIN_SECRET_BYTES = 16;

  private static final LinkSecurity NONE = new LinkSecurity(null, null);

  private final byte[] secret;
  private final Tls tls;

  private LinkSecurity(byte[] secret, Tls tls) {
    this.secret = secret;
    this.tls = tls;
  }

  /**
   * PEM files of mutual TLS: this node's certificate chain, its PKCS#8 private key, and the
   * certificates of the authorities a peer's certificate must be signed by.
   */
  public record Tls(Path certificateChain, Path privateKey, Path trustedCertificates) {
    public Tls {
      checkNotNull(certificateChain, "certificateChain");
      checkNotNull(privateKey, "privateKey");
      checkNotNull(trustedCertificates, "trustedCertificates");
    }
  }

  /** No authentication and no encryption (the default; for trusted networks only). */
  public static LinkSecurity none() {
    return NONE;
  }

  /** A shared secret of at least {@value #MIN_SECRET_BYTES} bytes; the array is copied. */
  public static LinkSecurity sharedSecret(byte[] secret) {
    return NONE.withSharedSecret(secret);
  }

  /**
   * The shared secret read from a file (its bytes, without a trailing line break). The file should
   * be readable by the service's user only.
   */
  public static LinkSecurity secretFile(Path file) throws IOException {
    return NONE.withSecretFile(file);
  }

  /** Mutual TLS only; see {@link Tls}. */
  public static LinkSecurity tls(Path certificateChain, Path privateKey, Path trustedCertificates) {
    return NONE.withTls(certificateChain, privateKey, trustedCertificates);
  }

  /** This security with the shared secret set (the array is copied). */
  public LinkSecurity withSharedSecret(byte[] secret) {
    checkNotNull(secret, "secret");
    // the length, never the content: the message may end up in a log
    checkArgument(secret.length >= MIN_SECRET_BYTES, "shared secret of %s bytes is too short (at least %s)",
        secret.length, MIN_SECRET_BYTES);
    return new LinkSecurity(secret.clone(), tls);
  }

  /** This security with the shared secret read from {@code file}. */
  public LinkSecurity withSecretFile(Path file) throws IOException {
    checkNotNull(file, "file");
    byte[] bytes = Files.readAllBytes(file);
    int end = bytes.length;
    while (end > 0 && (bytes[end - 1] == '\n' || bytes[end - 1] == '\r')) {
      end--;
    }
    byte[] secret = Arrays.copyOf(bytes, end);
    Arrays.fill(bytes, (byte) 0);
    if (secret.length < MIN_SECRET_BYTES) {
      throw new IOException("secret file " + file + " holds " + secret.length + " bytes; at least "
          + MIN_SECRET_BYTES + " are needed");
    }
    return new LinkSecurity(secret, tls);
  }

  /** This security with mutual TLS from PEM files. */
  public LinkSecurity withTls(Path certificateChain, Path privateKey, Path trustedCertificates) {
    return new LinkSecurity(secret, new Tls(certificateChain, privateKey, trustedCertificates));
  }

  public boolean hasSharedSecret() {
    return secret != null;
  }

  /** A copy of the shared secret, for the transport that computes the proofs; empty when none. */
  public Optional<byte[]> sharedSecret() {
    return secret == null ? Optional.empty() : Optional.of(secret.clone());
  }

  public Optional<Tls> tls() {
    return Optional.ofNullable(tls);
  }

  /** True when neither a secret nor TLS is configured. */
  public boolean isNone() {
    return secret == null && tls == null;
  }

  @Override
  public String toString() {
    if (isNone()) {
      return "LinkSecurity[none]";
    }
    return "LinkSecurity[" + (secret != null ? "shared secret" : "")
        + (secret != null && tls != null ? ", " : "")
        + (tls != null ? "mutual TLS with " + tls.certificateChain() : "") + "]";
  }
}
