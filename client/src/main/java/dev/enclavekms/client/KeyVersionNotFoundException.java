package dev.enclavekms.client;

import java.util.Map;

/** The key exists but has no such version. */
public final class KeyVersionNotFoundException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public KeyVersionNotFoundException(String error, Map<String, Object> parameters) {
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
}
