package dev.enclavekms.registry;

import java.time.Instant;

/**
 * What the registry remembers of a certificate a CA key version issued: enough to know
 * which CA issued a serial, to refuse serials it never issued, and to list revoked,
 * unexpired certificates in that CA's CRL. Certificates are public; nothing here is secret.
 *
 * @param serial   lowercase hex, no leading zeros (as Kms.IssueCertificate reports it)
 * @param revoked  when it was revoked, or null
 * @param reason   why, or null when not revoked
 */
public record CertificateRecord(String serial, String key, int version, Instant notAfter, Instant issued,
                                Instant revoked, RevocationReason reason) {
    public boolean isRevoked() {
        return revoked != null;
    }
}
