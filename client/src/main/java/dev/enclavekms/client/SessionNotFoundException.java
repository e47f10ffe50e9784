package dev.enclavekms.client;

import java.util.Map;

/** No such session, or it ended (closed, expired, revoked), or it is another tenant's: the daemon does not distinguish them. */
public final class SessionNotFoundException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public SessionNotFoundException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The session id the daemon named, or null. */
    public String session() {
        return stringParameter("session");
    }
}
