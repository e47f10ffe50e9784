package dev.enclavekms.shard;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;

import java.io.IOException;
import java.util.Map;
import java.util.Objects;

/**
 * How the shard library turns a header's wrapped data key back into the data key. The
 * plain implementation asks the KMS each time ({@link #using(KmsClient)}); a runtime that
 * opens the same shards often can put a cache here (bounded, zeroising) without the
 * library changing: {@link dev.enclavekms.cache.DataKeyCache}.
 *
 * <p>Contract:
 * <ul>
 *   <li>{@code context} is the header's context, which the library has already compared
 *       with the one its caller expects; the KMS binds it to the envelope, so it must be
 *       passed on unchanged.</li>
 *   <li>The returned array belongs to the library, which wipes it as soon as the file's
 *       keys are derived: an implementation that keeps the key (a cache) returns a copy.</li>
 *   <li>It may be called from several threads at once.</li>
 *   <li>Failures of the KMS are its {@link KmsException}s (e.g.
 *       {@link dev.enclavekms.client.DecryptionFailedException} for a tampered envelope,
 *       {@link dev.enclavekms.client.KeyVersionDestroyedException} when the version is gone).</li>
 * </ul>
 */
@FunctionalInterface
public interface DataKeyUnwrapper {

    /**
     * @param wrappedDataKey the header's KMS envelope (not modified)
     * @param context        the header's context
     * @return the data key in the clear, a fresh array the caller will wipe
     */
    byte[] unwrap(byte[] wrappedDataKey, Map<String, String> context) throws KmsException, IOException;

    /** Unwraps with {@code Kms.Decrypt} on every call (no cache). */
    static DataKeyUnwrapper using(KmsClient kms) {
        Objects.requireNonNull(kms, "kms");
        return (wrapped, context) -> kms.decrypt(wrapped, context).plaintext();
    }
}
