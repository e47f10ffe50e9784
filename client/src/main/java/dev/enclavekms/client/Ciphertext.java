package dev.enclavekms.client;

import java.util.Objects;

/**
 * The result of {@link KmsClient#encrypt}: a self-describing ciphertext envelope (it
 * names its key and version, and is bound to the context it was made with).
 *
 * @param key        the key's name
 * @param version    the key version that encrypted (the primary at the time)
 * @param ciphertext the envelope; not secret; the record's own array, not a copy
 */
public record Ciphertext(String key, int version, byte[] ciphertext) {
    public Ciphertext {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(ciphertext, "ciphertext");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Ciphertext c && key.equals(c.key) && version == c.version
                && Bytes.equal(ciphertext, c.ciphertext);
    }

    @Override
    public int hashCode() {
        return Objects.hash(key, version, Bytes.hash(ciphertext));
    }

    @Override
    public String toString() {
        return "Ciphertext[key=" + key + ", version=" + version + ", ciphertext=" + Bytes.length(ciphertext) + "]";
    }
}
