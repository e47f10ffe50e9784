package dev.enclavekms.manifest;

/** The bytes are not a manifest of format 1: the message says which line and why. */
public final class MalformedManifestException extends Exception {
    public MalformedManifestException(String message) {
        super(message, null, false, false);
    }
}
