package dev.enclavekms.client;

import java.util.Map;

/** The session has no sealed blob of that name. */
public final class SessionMaterialNotFoundException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public SessionMaterialNotFoundException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The blob name the daemon named, or null. */
    public String name() {
        return stringParameter("name");
    }
}
