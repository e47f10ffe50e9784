package dev.enclavekms.service;

import dev.enclavekms.enclave.EnclaveException;

/** Turns enclave failures into service errors, in one place. */
final class Failures {
    private Failures() {
    }

    static KmsError of(EnclaveException e, String key) {
        return switch (e) {
            case EnclaveException.AuthenticationFailed a -> new KmsError.DecryptionFailed();
            case EnclaveException.ObjectNotFound n -> new KmsError.EnclaveUnavailable(
                    "the hardware object of key '" + key + "' is missing from the enclave", e);
            // The service validates what callers send before the enclave sees it: BadInput from
            // the device means the registry and the hardware disagree — ours, and logged.
            case EnclaveException.BadInput b -> new KmsError.Internal("the enclave refused the operation on key '"
                    + key + "': " + b.getMessage(), e);
            case EnclaveException.Unsupported u -> new KmsError.InvalidKeyUsage(key, u.getMessage());
            case EnclaveException.Unavailable u -> new KmsError.EnclaveUnavailable(
                    "the enclave is unavailable: " + u.getMessage(), e);
            default -> new KmsError.EnclaveUnavailable("enclave failure: " + e.getMessage(), e);
        };
    }
}
