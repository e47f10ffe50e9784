package dev.enclavekms.client;

import java.util.Objects;

/**
 * Decrypted bytes and the key version that decrypted them: the result of
 * {@link KmsClient#decrypt} and a successful entry of {@link KmsClient#decryptBatch}.
 *
 * <p>Like {@link DataKey}: {@link #toString()} never shows the plaintext,
 * {@link #plaintext()} is the record's own array (wipe it when done), and
 * {@link #equals} compares it in constant time.
 *
 * @param key       the key named by the ciphertext envelope
 * @param version   the key version named by the envelope
 * @param plaintext the decrypted bytes; secret
 */
public record Plaintext(String key, int version, byte[] plaintext) implements DecryptResult {
    public Plaintext {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(plaintext, "plaintext");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Plaintext p && key.equals(p.key) && version == p.version
                && Bytes.equal(plaintext, p.plaintext);
    }

    @Override
    public int hashCode() {
        return Objects.hash(key, version, plaintext.length);
    }

    /** Names key and version and the plaintext's length; never its content. */
    @Override
    public String toString() {
        return "Plaintext[key=" + key + ", version=" + version + ", plaintext=" + Bytes.redacted(plaintext) + "]";
    }
}
