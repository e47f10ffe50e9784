package dev.enclavekms.client;

import java.util.Map;

/** The hardware (HSM or card) could not be used; retrying later may succeed. */
public final class EnclaveUnavailableException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public EnclaveUnavailableException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
