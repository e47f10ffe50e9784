package dev.enclavekms.client;

import java.util.Map;

/**
 * The CA will not sign the request; {@link #reason()} says what was wrong: BAD_CSR,
 * BAD_SIGNATURE, WEAK_KEY, TTL_TOO_LONG, SAN_NOT_ALLOWED, BAD_PROFILE or CA_CERTIFICATE_MISSING.
 */
public final class CertificateRefusedException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public CertificateRefusedException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** Why the request was refused, or "" when the daemon did not say. */
    public String reason() {
        return parameters().get("reason") instanceof String s ? s : "";
    }
}
