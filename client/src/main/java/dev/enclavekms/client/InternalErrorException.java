package dev.enclavekms.client;

import java.util.Map;

/** Something failed inside the daemon; its log says what. */
public final class InternalErrorException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public InternalErrorException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
