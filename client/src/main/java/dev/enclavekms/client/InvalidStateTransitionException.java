package dev.enclavekms.client;

import java.util.Map;

/**
 * A lifecycle change that the version's current state does not allow, e.g. enabling a
 * REVOKED version, promoting one that is not PENDING, or disabling the primary. Nothing
 * was changed; {@link #state()} says where the version is.
 */
public final class InvalidStateTransitionException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public InvalidStateTransitionException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The key the daemon named, or null when it named none. */
    public String key() {
        return stringParameter("key");
    }

    /** The version the daemon named, or -1 when it named none. */
    public int version() {
        return (int) longParameter("version");
    }

    /** The version's current state, e.g. {@code REVOKED}, or null when the daemon named none. */
    public String state() {
        return stringParameter("state");
    }
}
