package dev.enclavekms.client;

import java.util.Map;

/** The ciphertext is malformed, was tampered with, or the context differs. Deliberately says nothing more. */
public final class DecryptionFailedException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public DecryptionFailedException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }
}
