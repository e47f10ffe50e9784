package dev.enclavekms.client;

import java.util.List;
import java.util.Objects;

/**
 * The CA certificates of every verifiable version (ENABLED or PENDING) of a
 * CERT_AUTHORITY key ({@code Kms.GetCaCertificates}).
 *
 * @param pem every certificate of every version's chain (roots once) concatenated, ready to be written
 *            as a CA file
 * @param awaitingCertificate versions of an intermediate CA key that still await the certificate of
 *                            an external root (not in {@code certificates})
 */
public record CaCertificates(String key, String algorithm, List<CaCertificates.Version> certificates, String pem,
                             List<Integer> awaitingCertificate) {
    public CaCertificates {
        awaitingCertificate = List.copyOf(awaitingCertificate);
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        certificates = List.copyOf(certificates);
        Objects.requireNonNull(pem, "pem");
    }

    /**
     * One version's CA certificate.
     *
     * @param state        {@code ENABLED} or {@code PENDING}
     * @param primary      true for the version that signs now
     * @param pem          the version's own certificate
     * @param intermediate signed by an external root rather than self-signed
     * @param chain        {@code pem}, then its issuers up to and including the root
     * @param root         the self-signed trust anchor that ends {@code chain}
     */
    public record Version(int version, String state, boolean primary, String pem, boolean intermediate,
                          List<String> chain, String root) {
        public Version {
            chain = List.copyOf(chain);
        }
    }
}
