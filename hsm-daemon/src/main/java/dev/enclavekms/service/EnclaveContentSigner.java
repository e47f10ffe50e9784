package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.DefaultSignatureAlgorithmIdentifierFinder;

import java.io.OutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * A Bouncy Castle {@link ContentSigner} whose private key stays in the enclave: the
 * to-be-signed bytes are hashed here (the hash is not secret) and only the digest goes to
 * {@link Enclave#sign}. ECDSA signatures come back DER-encoded as X.509 wants them;
 * RSA keys sign RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt), named with explicit PSS
 * parameters in the AlgorithmIdentifier (RFC 4055).
 *
 * <p>Single use, like every ContentSigner: one certificate or CRL per instance.
 */
final class EnclaveContentSigner implements ContentSigner {

    /** An enclave failure inside {@link #getSignature}, which cannot throw checked exceptions. */
    static final class SigningFailed extends RuntimeException {
        SigningFailed(EnclaveException cause) {
            super(cause.getMessage(), cause);
        }

        EnclaveException enclaveException() {
            return (EnclaveException) getCause();
        }
    }

    private final Enclave enclave;
    private final ObjectId key;
    private final KeyAlgorithm algorithm;
    private final MessageDigest digest;
    private final OutputStream out;

    EnclaveContentSigner(Enclave enclave, ObjectId key, KeyAlgorithm algorithm) {
        this.enclave = enclave;
        this.key = key;
        this.algorithm = algorithm;
        identifier(algorithm); // refuses algorithms that cannot sign certificates, before any work
        try {
            this.digest = MessageDigest.getInstance(algorithm.digestName());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        this.out = new OutputStream() {
            @Override
            public void write(int b) {
                digest.update((byte) b);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                digest.update(b, off, len);
            }
        };
    }

    /** The X.509 signature algorithm a CA key of {@code algorithm} signs with. */
    static AlgorithmIdentifier identifier(KeyAlgorithm algorithm) {
        String name = switch (algorithm) {
            case EC_P256_SHA256 -> "SHA256withECDSA";
            case EC_P384_SHA384 -> "SHA384withECDSA";
            // PSS parameters SHA-256 / MGF1-SHA-256 / salt 32 / trailer 1: what the enclave computes.
            case RSA_3072_PSS_SHA256 -> "SHA256withRSAandMGF1";
            case ED25519, AES_256_GCM, HMAC_SHA256 ->
                    throw new IllegalArgumentException(algorithm + " cannot sign certificates here");
        };
        return new DefaultSignatureAlgorithmIdentifierFinder().find(name);
    }

    @Override
    public AlgorithmIdentifier getAlgorithmIdentifier() {
        return identifier(algorithm);
    }

    @Override
    public OutputStream getOutputStream() {
        return out;
    }

    @Override
    public byte[] getSignature() {
        try {
            return enclave.sign(key, algorithm, digest.digest());
        } catch (EnclaveException e) {
            throw new SigningFailed(e);
        }
    }
}
