package dev.enclavekms.ca;

import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.client.CertificateRefusedException;
import dev.enclavekms.client.InvalidKeyUsageException;
import dev.enclavekms.client.InvalidParameterException;
import dev.enclavekms.client.IssuedTlsCertificate;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.PermissionDeniedException;
import dev.enclavekms.testing.InProcessDaemon;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kms.IssueTlsCertificate through a real daemon under a policy: the caller needs a grant
 * for the TLS key and, on the CA, the grant Kms.IssueCertificate would need — its san
 * patterns included; wrong purposes and malformed names are typed errors; the issuance is
 * audited without certificate bodies. (The TLS handshake itself: softhsm-test TlsKeyIT.)
 */
class TlsCertificateDaemonTest {
    @TempDir
    Path dir;

    @Test
    void grantsOnKeyAndCa_decide_sanPatternsApply_andIssuanceIsAudited() throws Exception {
        Path policy = dir.resolve("policy.yaml");
        Files.writeString(policy, """
                version: 1
                tenants:
                  ops:
                    members: ["user:%s"]
                    grants:
                      - name: operators
                        methods: ["Kms.*", "Admin.*"]
                        keys: ["*"]
                        all_tenants: true
                        token_admin: true
                  acme:
                    key_prefixes: ["acme/"]
                    members: ["token:acme-web", "token:acme-other"]
                    grants:
                      - name: web-certs
                        methods: ["Kms.IssueTlsCertificate"]
                        keys: ["acme/web-*"]
                      - name: edge-ca
                        to: ["token:acme-web"]
                        methods: ["Kms.IssueCertificate"]
                        keys: ["acme/edge-ca"]
                        san: ["DNS:*.acme.internal"]
                """.formatted(System.getProperty("user.name")));
        try (InProcessDaemon d = InProcessDaemon.start(dir, "tls-policy", Clock.systemUTC(), policy);
             KmsClient admin = d.client();
             KmsClient web = d.client();
             KmsClient other = d.client()) {
            admin.createKey("acme/edge-ca", "CERT_AUTHORITY");
            admin.createKey("acme/web-server", "TLS_SERVER", "EC_P384_SHA384", "", List.of());
            admin.createKey("acme/web-client", "TLS_CLIENT");
            admin.createKey("acme/web-secrets", "ENCRYPT");
            web.authenticate(admin.createToken("acme-web", Duration.ofHours(1)).token());
            other.authenticate(admin.createToken("acme-other", Duration.ofHours(1)).token());

            IssuedTlsCertificate server = web.issueTlsCertificate("acme/web-server", "acme/edge-ca",
                    List.of("DNS:www.acme.internal", "DNS:api.acme.internal"), null, 3600L);
            assertEquals("server", server.certificate().profile());
            assertEquals("CN=www.acme.internal", server.certificate().subject());
            assertEquals(List.of("DNS:www.acme.internal", "DNS:api.acme.internal"), server.certificate().sans());
            assertEquals("acme/edge-ca", server.certificate().key());
            X509Certificate x = parse(server.certificate().certificate());
            assertEquals("EC", x.getPublicKey().getAlgorithm());
            assertEquals(384, ((java.security.interfaces.ECPublicKey) x.getPublicKey()).getParams().getCurve()
                    .getField().getFieldSize(), "the certificate carries the TLS key's own public key (P-384)");
            assertTrue(x.getExtendedKeyUsage().contains("1.3.6.1.5.5.7.3.1"), "serverAuth");
            x.verify(parse(server.certificate().caCertificate()).getPublicKey());
            assertTrue(server.pkcs11Uri().startsWith("pkcs11:token="), server.pkcs11Uri());
            assertTrue(server.pkcs11Uri().contains(";object=enclave-kms:acme%2Fweb-server:v1:"), server.pkcs11Uri());

            IssuedTlsCertificate client = web.issueTlsCertificate("acme/web-client", "acme/edge-ca", List.of(),
                    "worker-7", null);
            assertEquals("client", client.certificate().profile());
            assertEquals("CN=worker-7", client.certificate().subject());

            var foreign = assertThrows(CertificateRefusedException.class, () -> web.issueTlsCertificate(
                    "acme/web-server", "acme/edge-ca", List.of("DNS:login.bank.example"), null, null));
            assertEquals("SAN_NOT_ALLOWED", foreign.reason());
            var cn = assertThrows(CertificateRefusedException.class, () -> web.issueTlsCertificate(
                    "acme/web-server", "acme/edge-ca", List.of("DNS:www.acme.internal"), "login.bank.example", null));
            assertEquals("SAN_NOT_ALLOWED", cn.reason());
            // A grant for the TLS key alone does not make the CA sign: that needs Kms.IssueCertificate on it.
            assertThrows(PermissionDeniedException.class, () -> other.issueTlsCertificate("acme/web-client",
                    "acme/edge-ca", List.of(), "worker-8", null));

            assertThrows(InvalidKeyUsageException.class, () -> admin.issueTlsCertificate("acme/web-secrets",
                    "acme/edge-ca", List.of(), "x", null));
            assertThrows(InvalidKeyUsageException.class, () -> admin.issueTlsCertificate("acme/web-server",
                    "acme/web-client", List.of(), "x", null));
            var bad = assertThrows(InvalidParameterException.class, () -> web.issueTlsCertificate("acme/web-server",
                    "acme/edge-ca", List.of("URI:https://www.acme.internal"), null, null));
            assertTrue(bad.getMessage().contains("DNS:host.name or IP:address"), bad.getMessage());

            String audit = auditText(dir.resolve("audit"));
            assertTrue(audit.contains("\"method\":\"dev.enclavekms.Kms.IssueTlsCertificate\""), audit);
            assertTrue(audit.contains("\"serial\":\"" + server.certificate().serial() + "\""), audit);
            assertTrue(audit.contains("\"ca\":\"acme/edge-ca\""), audit);
            assertFalse(audit.contains("BEGIN CERTIFICATE"), "no certificate bodies in the log");
        }
    }

    private static X509Certificate parse(String pem) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
    }

    private static String auditText(Path auditDir) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (Path p : AuditLog.logFiles(auditDir)) {
            sb.append(Files.readString(p));
        }
        return sb.toString();
    }
}
