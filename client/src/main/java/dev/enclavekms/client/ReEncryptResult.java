package dev.enclavekms.client;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One entry of a {@link KmsClient#reEncryptBatch} reply: a {@link ReEncrypted} or a
 * {@link Failure}. A failed entry does not fail the batch.
 *
 * <pre>{@code
 * switch (result) {
 *     case ReEncrypted r when r.rewrapped() -> store(r.ciphertext());
 *     case ReEncrypted r -> { } // already on the target's primary version
 *     case ReEncryptResult.Failure f -> log(f.error(), f.message());
 * }
 * }</pre>
 */
public sealed interface ReEncryptResult permits ReEncrypted, ReEncryptResult.Failure {

    /**
     * An entry the daemon could not re-encrypt; its envelope is unchanged.
     *
     * @param error         the error's short name, e.g. {@code DecryptionFailed},
     *                      {@code KeyVersionDestroyed}
     * @param message       the daemon's human-readable message
     * @param sourceKey     the key the envelope named, or null when the daemon did not say
     * @param sourceVersion the version the envelope named, or null when the daemon did not say
     * @param key           the target key, or null when the daemon did not say
     * @param version       the target version, or null when the daemon did not say
     */
    record Failure(String error, String message, String sourceKey, Integer sourceVersion, String key, Integer version)
            implements ReEncryptResult {
        public Failure {
            Objects.requireNonNull(error, "error");
            Objects.requireNonNull(message, "message");
        }

        /**
         * The exception {@link KmsClient#reEncrypt} would have thrown for this entry (the
         * same type mapping), naming the envelope's key and version when known, else the
         * target's. Not thrown here.
         */
        public KmsException toException() {
            Map<String, Object> p = new LinkedHashMap<>();
            String k = sourceKey != null ? sourceKey : key;
            Integer v = sourceKey != null || sourceVersion != null ? sourceVersion : version;
            if (k != null) p.put("key", k);
            if (v != null) p.put("version", (long) v);
            p.put("message", message);
            return KmsErrors.from(KmsErrors.KMS + "." + error, p);
        }
    }
}
