package dev.enclavekms.client;

import java.util.Map;

/** The key's purpose or algorithm does not allow this operation (e.g. signing with an ENCRYPT key). */
public final class InvalidKeyUsageException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public InvalidKeyUsageException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The key the daemon named, or null when it named none. */
    public String key() {
        return stringParameter("key");
    }
}
