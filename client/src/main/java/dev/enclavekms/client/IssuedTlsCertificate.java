package dev.enclavekms.client;

/**
 * A certificate for a TLS_SERVER or TLS_CLIENT key ({@code Kms.IssueTlsCertificate}). The
 * daemon also stored it on the token beside the private key.
 *
 * @param key         the TLS key
 * @param version     the TLS key's version it certifies (its primary)
 * @param certificate the certificate and who signed it, as {@link KmsClient#issueCertificate} reports
 * @param alias       the CKA_LABEL of key and certificate on the token: the SunPKCS11 KeyStore alias
 * @param pkcs11Uri   the RFC 7512 URI of the private key, for OpenSSL's pkcs11 provider and libp11
 */
public record IssuedTlsCertificate(String key, int version, IssuedCertificate certificate, String alias,
                                   String pkcs11Uri) {
    /** The certificate followed by its CA certificate, PEM: what a TLS server sends. */
    public String chainPem() {
        return certificate.certificate() + certificate.caCertificate();
    }
}
