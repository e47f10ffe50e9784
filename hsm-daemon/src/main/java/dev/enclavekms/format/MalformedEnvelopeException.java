package dev.enclavekms.format;

/** A ciphertext envelope that is not structurally valid. The message describes structure, never content. */
public final class MalformedEnvelopeException extends Exception {
    public MalformedEnvelopeException(String message) {
        super(message);
    }
}
