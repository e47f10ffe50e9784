package dev.enclavekms.client;

import java.util.Map;

/**
 * {@code Admin.RevokeCertificate}: no certificate of this serial was issued by a CA key the
 * caller may manage (never issued, or another tenant's).
 */
public final class CertificateNotFoundException extends KmsException {
    /** See {@link KmsException#KmsException(String, Map)}. */
    public CertificateNotFoundException(String error, Map<String, Object> parameters) {
        super(error, parameters);
    }

    /** The serial as the daemon understood it, or "" when it did not say. */
    public String serial() {
        return parameters().get("serial") instanceof String s ? s : "";
    }
}
