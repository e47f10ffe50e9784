package dev.enclavekms.client;

import java.util.List;
import java.util.Objects;

/**
 * The CA certificates of every verifiable version (ENABLED or PENDING) of a
 * CERT_AUTHORITY key ({@code Kms.GetCaCertificates}).
 *
 * @param pem every certificate concatenated, ready to be written as a CA file
 */
public record CaCertificates(String key, String algorithm, List<CaCertificates.Version> certificates, String pem) {
    public CaCertificates {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        certificates = List.copyOf(certificates);
        Objects.requireNonNull(pem, "pem");
    }

    /**
     * One version's self-signed CA certificate.
     *
     * @param state   {@code ENABLED} or {@code PENDING}
     * @param primary true for the version that signs now
     */
    public record Version(int version, String state, boolean primary, String pem) { }
}
