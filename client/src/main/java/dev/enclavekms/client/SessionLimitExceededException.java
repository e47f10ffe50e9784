package dev.enclavekms.client;

import java.util.Map;

/** A session limit (size, blobs, sessions per tenant) would be exceeded; the message names it. */
public final class SessionLimitExceededException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public SessionLimitExceededException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
