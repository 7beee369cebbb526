package io.replicator.transport;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The shared-secret challenge–response of the handshake. Each side proves it holds the secret
 * with HMAC-SHA256 over its role, the cluster name and both sides' fresh nonces: a proof is good
 * for one connection and one direction only, and the secret itself never travels.
 */
final class PeerAuth {
  static final int NONCE_BYTES = 32;
  private static final String ALGORITHM = "HmacSHA256";
  private static final byte[] LABEL = "replicator-peer-auth-v1".getBytes(StandardCharsets.US_ASCII);
  private static final SecureRandom RANDOM = new SecureRandom();

  /** Which end of the connection a proof speaks for. */
  enum Role {
    CONNECTING, ACCEPTING
  }

  private final SecretKeySpec key;

  PeerAuth(byte[] secret) {
    this.key = new SecretKeySpec(secret, ALGORITHM);
  }

  static ByteString nonce() {
    byte[] n = new byte[NONCE_BYTES];
    RANDOM.nextBytes(n);
    return ByteString.copyFrom(n);
  }

  ByteString proof(Role role, String clusterName, ByteString connectingNonce, ByteString acceptingNonce) {
    try {
      Mac mac = Mac.getInstance(ALGORITHM);
      mac.init(key);
      mac.update(LABEL);
      mac.update((byte) role.ordinal());
      // length-prefixed fields: no two different inputs hash the same bytes
      field(mac, clusterName.getBytes(StandardCharsets.UTF_8));
      field(mac, connectingNonce.toByteArray());
      field(mac, acceptingNonce.toByteArray());
      return ByteString.copyFrom(mac.doFinal());
    } catch (GeneralSecurityException e) {
      // HmacSHA256 is required of every JDK
      throw new IllegalStateException("HMAC-SHA256 unavailable", e);
    }
  }

  /** Constant time, so the time a refusal takes says nothing about how much of a proof was right. */
  boolean verify(ByteString proof, Role role, String clusterName, ByteString connectingNonce,
      ByteString acceptingNonce) {
    return MessageDigest.isEqual(proof.toByteArray(),
        proof(role, clusterName, connectingNonce, acceptingNonce).toByteArray());
  }

  private static void field(Mac mac, byte[] bytes) {
    mac.update(ByteBuffer.allocate(4).putInt(bytes.length).array());
    mac.update(bytes);
  }

  @Override
  public String toString() {
    return "PeerAuth[HMAC-SHA256]";
  }
}
