package dev.enclavekms.client;

import java.util.Objects;

/**
 * The result of {@link KmsClient#sign}. Verify it with {@link KmsClient#verify} giving
 * {@link #version()}, or locally with the version's public key
 * ({@link KmsClient#getPublicKey(String, int)}).
 *
 * @param key       the key's name
 * @param version   the key version that signed (the primary at the time)
 * @param algorithm e.g. {@code EC_P256_SHA256}: ECDSA signatures are DER (X9.62), Ed25519
 *                  64 bytes, RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt
 * @param signature the signature bytes; the record's own array, not a copy
 */
public record Signature(String key, int version, String algorithm, byte[] signature) {
    public Signature {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(signature, "signature");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Signature s && key.equals(s.key) && version == s.version
                && algorithm.equals(s.algorithm) && Bytes.equal(signature, s.signature);
    }

    @Override
    public int hashCode() {
        return Objects.hash(key, version, algorithm, Bytes.hash(signature));
    }

    @Override
    public String toString() {
        return "Signature[key=" + key + ", version=" + version + ", algorithm=" + algorithm
                + ", signature=" + Bytes.length(signature) + "]";
    }
}
