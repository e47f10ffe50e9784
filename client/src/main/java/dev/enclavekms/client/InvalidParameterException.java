package dev.enclavekms.client;

import java.util.Map;

/** A parameter is missing, has the wrong type, or has a value out of range. */
public final class InvalidParameterException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public InvalidParameterException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The name of the offending parameter, as the daemon spelled it (e.g. {@code bytes}). */
    public String parameter() {
        return stringParameter("parameter");
    }
}
