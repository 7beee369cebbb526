package io.replicator.testing;

import io.replicator.LinkSecurity;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Makes PEM certificates for TLS tests with the JDK's own {@code keytool}: an authority, and node
 * certificates signed by it (chain, PKCS#8 key). No test certificate is checked in, so none expires.
 */
public final class TestCertificates {
  private static final String PASSWORD = "test-only";
  private final Path dir;
  private final String authority;

  private TestCertificates(Path dir, String authority) {
    this.dir = dir;
    this.authority = authority;
  }

  /** A new certificate authority named {@code name}, its files under {@code dir}. */
  public static TestCertificates authority(Path dir, String name) throws IOException {
    TestCertificates ca = new TestCertificates(Files.createDirectories(dir), name);
    ca.keytool("-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + name,
        "-ext", "bc:c", "-validity", "3", "-keystore", ca.store(name).toString(), "-storetype", "PKCS12",
        "-storepass", PASSWORD, "-keypass", PASSWORD);
    ca.keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", ca.store(name).toString(), "-storepass", PASSWORD,
        "-file", ca.trusted().toString());
    return ca;
  }

  /** This authority's certificate, to trust. */
  public Path trusted() {
    return dir.resolve(authority + "-ca.pem");
  }

  /** Issues a node certificate; the security trusts this authority only. */
  public LinkSecurity issue(String node) throws IOException {
    Path store = store(node);
    keytool("-genkeypair", "-alias", "node", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + node,
        "-validity", "3", "-keystore", store.toString(), "-storetype", "PKCS12", "-storepass", PASSWORD,
        "-keypass", PASSWORD);
    Path csr = dir.resolve(node + ".csr");
    keytool("-certreq", "-alias", "node", "-keystore", store.toString(), "-storepass", PASSWORD, "-file",
        csr.toString());
    Path cert = dir.resolve(node + "-cert.pem");
    keytool("-gencert", "-alias", "ca", "-keystore", store(authority).toString(), "-storepass", PASSWORD,
        "-infile", csr.toString(), "-outfile", cert.toString(), "-rfc", "-validity", "3",
        "-ext", "ku:c=digitalSignature,keyAgreement", "-ext", "eku=serverAuth,clientAuth");
    Path chain = dir.resolve(node + "-chain.pem");
    Files.writeString(chain, Files.readString(cert) + Files.readString(trusted()));
    Path key = dir.resolve(node + "-key.pem");
    Files.writeString(key, pkcs8(store));
    return LinkSecurity.tls(chain, key, trusted());
  }

  private Path store(String name) {
    return dir.resolve(name + ".p12");
  }

  private static String pkcs8(Path store) throws IOException {
    try (InputStream in = Files.newInputStream(store)) {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(in, PASSWORD.toCharArray());
      PrivateKey key = (PrivateKey) ks.getKey("node", PASSWORD.toCharArray());
      return "-----BEGIN PRIVATE KEY-----\n"
          + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(key.getEncoded())
          + "\n-----END PRIVATE KEY-----\n";
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot read the key of " + store, e);
    }
  }

  private void keytool(String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    try {
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("keytool did not finish: " + command);
      }
      if (p.exitValue() != 0) {
        throw new IOException("keytool failed (" + p.exitValue() + "): " + command + "\n"
            + new String(out, StandardCharsets.UTF_8));
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted running keytool", e);
    }
  }
}
