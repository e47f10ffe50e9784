package dev.enclavekms.client;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * The current CRL of each CA version of a CERT_AUTHORITY key ({@code Kms.GetCrl}).
 *
 * @param pem every CRL concatenated, ready for {@code openssl verify -crl_check -CRLfile}
 */
public record CertificateRevocationLists(String key, List<CertificateRevocationLists.Crl> crls, String pem) {
    public CertificateRevocationLists {
        Objects.requireNonNull(key, "key");
        crls = List.copyOf(crls);
        Objects.requireNonNull(pem, "pem");
    }

    /**
     * One version's CRL.
     *
     * @param number  the CRL number extension; rises with every CRL the version signs
     * @param revoked how many certificates it lists
     * @param pem     the CRL, PEM ({@code X509 CRL})
     */
    public record Crl(int version, long number, Instant thisUpdate, Instant nextUpdate, int revoked, String pem) { }
}
