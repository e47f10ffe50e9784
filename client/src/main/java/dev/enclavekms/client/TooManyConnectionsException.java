package dev.enclavekms.client;

import java.util.Map;

/** The daemon serves its maximum number of connections; the connection was closed. */
public final class TooManyConnectionsException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public TooManyConnectionsException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The daemon's limit, or -1 when it named none. */
    public long limit() {
        return longParameter("limit");
    }
}
