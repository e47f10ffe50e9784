package dev.enclavekms.client;

import java.util.Map;

/** No such key, or the caller may not know of it (the daemon does not distinguish the two). */
public final class KeyNotFoundException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public KeyNotFoundException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The key the daemon named, or null when it named none. */
    public String key() {
        return stringParameter("key");
    }
}
