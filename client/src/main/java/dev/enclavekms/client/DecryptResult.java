package dev.enclavekms.client;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One entry of a {@link KmsClient#decryptBatch} reply: a {@link Plaintext} or a
 * {@link Failure}. A failed entry does not fail the batch.
 *
 * <pre>{@code
 * switch (result) {
 *     case Plaintext p -> use(p.plaintext());
 *     case DecryptResult.Failure f -> log(f.error(), f.message());
 * }
 * }</pre>
 */
public sealed interface DecryptResult permits Plaintext, DecryptResult.Failure {

    /**
     * An entry the daemon could not decrypt.
     *
     * @param error   the error's short name, e.g. {@code DecryptionFailed}
     * @param message the daemon's human-readable message
     * @param key     the key the entry named, or null when the daemon did not say
     * @param version the key version, or null when the daemon did not say
     */
    record Failure(String error, String message, String key, Integer version) implements DecryptResult {
        public Failure {
            Objects.requireNonNull(error, "error");
            Objects.requireNonNull(message, "message");
        }

        /**
         * The exception {@link KmsClient#decrypt} would have thrown for this entry (the
         * same type mapping), for callers that want to rethrow it. Not thrown here.
         */
        public KmsException toException() {
            Map<String, Object> p = new LinkedHashMap<>();
            if (key != null) p.put("key", key);
            if (version != null) p.put("version", (long) version);
            p.put("message", message);
            return KmsErrors.from(KmsErrors.KMS + "." + error, p);
        }
    }
}
