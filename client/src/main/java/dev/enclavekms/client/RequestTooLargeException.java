package dev.enclavekms.client;

import java.util.Map;

/** The call exceeded the daemon's message size limit. */
public final class RequestTooLargeException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public RequestTooLargeException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The daemon's limit, or -1 when it named none. */
    public long limit() {
        return longParameter("limit");
    }
}
