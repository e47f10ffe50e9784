package dev.enclavekms.client;

import java.util.Map;

/** The daemon could not read the call as a varlink message. */
public final class InvalidRequestException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public InvalidRequestException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
