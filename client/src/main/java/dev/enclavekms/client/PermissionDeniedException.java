package dev.enclavekms.client;

import java.util.Map;

/** The caller is not allowed to make this call (the policy grants it no such right). */
public final class PermissionDeniedException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public PermissionDeniedException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
