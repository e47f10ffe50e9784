package dev.enclavekms.client;

import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Map;

/**
 * The key version was destroyed: what it protected can never be decrypted (or verified)
 * again. Distinct from {@link KeyVersionUnusableException}, which a state change can
 * undo; nothing undoes this one, so callers should stop retrying and treat the data as
 * lost.
 */
public final class KeyVersionDestroyedException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public KeyVersionDestroyedException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The key the daemon named, or null when it named none. */
    public String key() {
        return stringParameter("key");
    }

    /** The destroyed version, or -1 when the daemon named none. */
    public int version() {
        return (int) longParameter("version");
    }

    /**
     * When the hardware object was destroyed, or null when the daemon did not say (or
     * sent something that is not an RFC 3339 time: an error must not fail on its details).
     */
    public Instant destroyed() {
        String s = stringParameter("destroyed");
        if (s == null) {
            return null;
        }
        try {
            return Instant.parse(s);
        } catch (DateTimeParseException e) {
            return null;
        }
    }
}
