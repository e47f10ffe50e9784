package dev.enclavekms.client;

import java.time.Instant;
import java.util.List;

/**
 * A certificate signed by a CERT_AUTHORITY key ({@code Kms.IssueCertificate}).
 *
 * @param certificate   the certificate, PEM
 * @param caCertificate the CA certificate of the version that signed it, PEM
 * @param serial        the serial number, lowercase hex
 * @param sans          subject alternative names as {@code DNS:name} or {@code IP:address}
 * @param profile       server, client or both
 * @param caChain       {@code caCertificate}, then its issuers up to and including the root, PEM
 */
public record IssuedCertificate(String key, int version, String certificate, String caCertificate, String serial,
                                String subject, List<String> sans, Instant notBefore, Instant notAfter,
                                String profile, String caChain) {
    public IssuedCertificate {
        sans = List.copyOf(sans);
    }
}
