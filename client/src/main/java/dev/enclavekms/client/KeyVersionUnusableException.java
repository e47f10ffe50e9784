package dev.enclavekms.client;

import java.util.Map;

/** The key version's state (e.g. DISABLED, REVOKED) does not allow this operation. */
public final class KeyVersionUnusableException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public KeyVersionUnusableException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The key the daemon named, or null when it named none. */
    public String key() {
        return stringParameter("key");
    }

    /** The key version the daemon named, or -1 when it named none. */
    public int version() {
        return (int) longParameter("version");
    }

    /** The version's state, e.g. {@code DISABLED}, or null when the daemon named none. */
    public String state() {
        return stringParameter("state");
    }
}
