package dev.enclavekms.client;

import java.util.Objects;

/**
 * The result of {@link KmsClient#reEncrypt} and a successful entry of
 * {@link KmsClient#reEncryptBatch}: an envelope moved to the primary version of its key
 * (or of another key) inside the daemon; the plaintext never left it.
 *
 * <p>When the envelope was already on the target's primary version, the daemon sends it
 * back unchanged with {@code rewrapped = false}: a caller rewriting stored envelopes can
 * skip the write, which makes a rewrap run cheap to repeat and so resumable.
 *
 * @param key           the key of the new envelope (the target)
 * @param version       the version of the new envelope (the target's primary)
 * @param sourceKey     the key the given envelope named
 * @param sourceVersion the version the given envelope named
 * @param rewrapped     false when the given envelope was already current and is returned as it was
 * @param ciphertext    the envelope to store; not secret; the record's own array, not a copy
 */
public record ReEncrypted(String key, int version, String sourceKey, int sourceVersion, boolean rewrapped,
                          byte[] ciphertext) implements ReEncryptResult {
    public ReEncrypted {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(sourceKey, "sourceKey");
        Objects.requireNonNull(ciphertext, "ciphertext");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ReEncrypted r && key.equals(r.key) && version == r.version && sourceKey.equals(r.sourceKey)
                && sourceVersion == r.sourceVersion && rewrapped == r.rewrapped && Bytes.equal(ciphertext, r.ciphertext);
    }

    @Override
    public int hashCode() {
        return Objects.hash(key, version, sourceKey, sourceVersion, rewrapped, Bytes.hash(ciphertext));
    }

    @Override
    public String toString() {
        return "ReEncrypted[key=" + key + ", version=" + version + ", sourceKey=" + sourceKey + ", sourceVersion="
                + sourceVersion + ", rewrapped=" + rewrapped + ", ciphertext=" + Bytes.length(ciphertext) + "]";
    }
}
