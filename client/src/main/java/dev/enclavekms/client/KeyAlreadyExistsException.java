package dev.enclavekms.client;

import java.util.Map;

/** A key of that name exists already. */
public final class KeyAlreadyExistsException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public KeyAlreadyExistsException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The key the daemon named, or null when it named none. */
    public String key() {
        return stringParameter("key");
    }
}
