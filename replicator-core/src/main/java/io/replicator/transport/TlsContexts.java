package io.replicator.transport;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.replicator.LinkSecurity;
import java.io.IOException;
import javax.net.ssl.SSLException;

/**
 * Builds the TLS contexts of mutual TLS from PEM files: OpenSSL (BoringSSL) when its native
 * library loads, the JDK's TLS otherwise. Both sides present a certificate and accept only a peer
 * whose certificate is signed by one of the trusted authorities; host names are not checked,
 * because peers are identified by the cluster's own authority, not by DNS.
 */
final class TlsContexts {
  private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

  private TlsContexts() {}

  /** BoringSSL when it loads and {@code -Dreplicator.tls.jdk=true} does not ask for the JDK's TLS. */
  static SslProvider provider() {
    return OpenSsl.isAvailable() && !Boolean.getBoolean("replicator.tls.jdk") ? SslProvider.OPENSSL : SslProvider.JDK;
  }

  /** The accepting side's context, or null when the link has no TLS. */
  static SslContext server(LinkSecurity security) throws IOException {
    LinkSecurity.Tls tls = security.tls().orElse(null);
    if (tls == null) {
      return null;
    }
    try {
      return common(SslContextBuilder.forServer(tls.certificateChain().toFile(), tls.privateKey().toFile()), tls)
          .clientAuth(ClientAuth.REQUIRE)
          .build();
    } catch (SSLException | IllegalArgumentException e) {
      throw cannotSetUp(tls, e);
    }
  }

  /** The connecting side's context, or null when the link has no TLS. */
  static SslContext client(LinkSecurity security) throws IOException {
    LinkSecurity.Tls tls = security.tls().orElse(null);
    if (tls == null) {
      return null;
    }
    try {
      return common(SslContextBuilder.forClient()
          .keyManager(tls.certificateChain().toFile(), tls.privateKey().toFile()), tls)
          .endpointIdentificationAlgorithm(null)
          .build();
    } catch (SSLException | IllegalArgumentException e) {
      throw cannotSetUp(tls, e);
    }
  }

  private static SslContextBuilder common(SslContextBuilder b, LinkSecurity.Tls tls) {
    return b.trustManager(tls.trustedCertificates().toFile()).sslProvider(provider()).protocols(PROTOCOLS);
  }

  private static IOException cannotSetUp(LinkSecurity.Tls tls, Exception e) {
    return new IOException("cannot set up TLS from " + tls.certificateChain() + ", " + tls.privateKey()
        + " and " + tls.trustedCertificates() + ": " + e.getMessage(), e);
  }
}
