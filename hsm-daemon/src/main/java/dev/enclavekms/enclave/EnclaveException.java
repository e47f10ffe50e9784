package dev.enclavekms.enclave;

/**
 * Failures of the hardware boundary. Messages name the operation and the device error
 * code, never key material.
 */
public sealed class EnclaveException extends Exception {

    protected EnclaveException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The device could not be reached or failed, even after reopening the session once. */
    public static final class Unavailable extends EnclaveException {
        public Unavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** No key object has the given id. */
    public static final class ObjectNotFound extends EnclaveException {
        public ObjectNotFound(ObjectId id) {
            super("no key object with id " + id.hex(), null);
        }
    }

    /** A ciphertext did not authenticate: wrong key, wrong AAD or tampered data. */
    public static final class AuthenticationFailed extends EnclaveException {
        public AuthenticationFailed() {
            super("ciphertext did not authenticate", null);
        }
    }

    /** The device does not support this algorithm or mechanism. */
    public static final class Unsupported extends EnclaveException {
        public Unsupported(String message) {
            super(message, null);
        }
    }

    /** The input is malformed for the operation (e.g. digest of the wrong length). */
    public static final class BadInput extends EnclaveException {
        public BadInput(String message) {
            super(message, null);
        }
    }
}
