package dev.enclavekms.ca;

import dev.enclavekms.audit.AuditLog;
import dev.enclavekms.client.CaCertificates;
import dev.enclavekms.client.CertificateRefusedException;
import dev.enclavekms.client.InvalidKeyUsageException;
import dev.enclavekms.client.IssuedCertificate;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.testing.InProcessDaemon;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CA through a real daemon on a real socket: a CERT_AUTHORITY key created over the
 * wire, a CSR made by {@code openssl req} issued through {@link KmsClient}, checked by
 * {@code openssl verify} against {@code GetCaCertificates}, refusals arriving as
 * {@link CertificateRefusedException} with their reason, and the issuance in the audit log.
 */
class CertificateIssuanceDaemonTest {
    @TempDir
    static Path dir;
    static InProcessDaemon daemon;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(dir, "ca-daemon", Clock.systemUTC());
        try (KmsClient kms = daemon.client()) {
            kms.createKey("edge-ca", "CERT_AUTHORITY", "EC_P384_SHA384", "", List.of());
            kms.createKey("release", "SIGN");
        }
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    @Test
    void opensslCsr_issuedOverTheWire_verifiesWithOpensslAndIsAudited() throws Exception {
        String csr = csr("/CN=api.example.internal", "subjectAltName=DNS:api.example.internal");
        try (KmsClient kms = daemon.client()) {
            CaCertificates cas = kms.getCaCertificates("edge-ca");
            assertEquals(1, cas.certificates().size());
            assertTrue(Files.exists(dir.resolve("ca")), "roots are kept in ca/ beside the registry");

            IssuedCertificate issued = kms.issueCertificate("edge-ca", csr, 3600L, "both");
            assertEquals(1, issued.version());
            assertEquals(List.of("DNS:api.example.internal"), issued.sans());
            assertEquals("both", issued.profile());
            assertEquals(cas.certificates().getFirst().pem(), issued.caCertificate());

            Path caFile = Files.writeString(dir.resolve("ca-bundle.pem"), cas.pem());
            Path cert = Files.writeString(dir.resolve("issued.pem"), issued.certificate());
            Run v = run(List.of("openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
                    caFile.toString(), cert.toString()));
            assertTrue(v.ok() && v.output().contains(": OK"), v.output());

            String audit = auditText();
            assertTrue(audit.contains("\"serial\":\"" + issued.serial() + "\""), audit);
            assertTrue(audit.contains("CN=api.example.internal"), audit);
            assertTrue(audit.contains("\"not_after\":\"" + issued.notAfter() + "\""), audit);
            assertFalse(audit.contains("BEGIN CERTIFICATE"), "no certificate or request bodies in the log");
        }
    }

    @Test
    void refusals_arriveTypedWithTheirReason() throws Exception {
        String csr = csr("/CN=long-lived", null);
        try (KmsClient kms = daemon.client()) {
            var ttl = assertThrows(CertificateRefusedException.class,
                    () -> kms.issueCertificate("edge-ca", csr, 30L * 86400, null));
            assertEquals("TTL_TOO_LONG", ttl.reason());
            var garbage = assertThrows(CertificateRefusedException.class,
                    () -> kms.issueCertificate("edge-ca", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                            + "-----END CERTIFICATE REQUEST-----\n", null, null));
            assertEquals("BAD_CSR", garbage.reason());
            var profile = assertThrows(CertificateRefusedException.class,
                    () -> kms.issueCertificate("edge-ca", csr, null, "root"));
            assertEquals("BAD_PROFILE", profile.reason());
            assertThrows(InvalidKeyUsageException.class, () -> kms.issueCertificate("release", csr, null, null));
        }
    }

    @Test
    void pendingRotation_publishesTheNewCaBeforeItSigns() throws Exception {
        try (KmsClient kms = daemon.client()) {
            kms.createKey("rotating-ca", "CERT_AUTHORITY");
            kms.rotateKey("rotating-ca", true);
            CaCertificates cas = kms.getCaCertificates("rotating-ca");
            assertEquals(List.of("ENABLED", "PENDING"), cas.certificates().stream().map(CaCertificates.Version::state)
                    .toList());
            IssuedCertificate issued = kms.issueCertificate("rotating-ca", csr("/CN=x", null), null, null);
            assertEquals(1, issued.version(), "the PENDING version does not sign");
        }
    }

    @Test
    void sanPatternsOfTheGrant_decideWhichNamesACallerGetsSigned(@TempDir Path own) throws Exception {
        Path policy = own.resolve("policy.yaml");
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
                    members: ["token:acme-edge"]
                    grants:
                      - name: edge
                        methods: ["Kms.IssueCertificate", "Kms.GetCaCertificates"]
                        keys: ["acme/*"]
                        san: ["DNS:*.acme.internal", "IP:10.1.*"]
                """.formatted(System.getProperty("user.name")));
        try (InProcessDaemon d = InProcessDaemon.start(own, "ca-san-policy", Clock.systemUTC(), policy);
             KmsClient admin = d.client();
             KmsClient edge = d.client()) {
            admin.createKey("acme/edge-ca", "CERT_AUTHORITY");
            edge.authenticate(admin.createToken("acme-edge", java.time.Duration.ofHours(1)).token());

            IssuedCertificate ok = edge.issueCertificate("acme/edge-ca",
                    csr("/CN=api", "subjectAltName=DNS:api.acme.internal,IP:10.1.2.3"), null, null);
            assertEquals(List.of("DNS:api.acme.internal", "IP:10.1.2.3"), ok.sans());

            var foreign = assertThrows(CertificateRefusedException.class, () -> edge.issueCertificate("acme/edge-ca",
                    csr("/CN=api", "subjectAltName=DNS:api.acme.internal,DNS:login.bank.example"), null, null));
            assertEquals("SAN_NOT_ALLOWED", foreign.reason());
            assertTrue(foreign.getMessage().contains("DNS:login.bank.example"), foreign.getMessage());
            // A host name in the CN is held to the same patterns (legacy clients still match it).
            var cn = assertThrows(CertificateRefusedException.class, () -> edge.issueCertificate("acme/edge-ca",
                    csr("/CN=login.bank.example", "subjectAltName=DNS:api.acme.internal"), null, null));
            assertEquals("SAN_NOT_ALLOWED", cn.reason());
            assertTrue(cn.getMessage().contains("CN (DNS:login.bank.example)"), cn.getMessage());
            edge.issueCertificate("acme/edge-ca", csr("/CN=api.acme.internal", "subjectAltName=DNS:api.acme.internal"),
                    null, null);
            // The operators' grant has no san patterns: it may sign certificates without names only.
            var none = assertThrows(CertificateRefusedException.class, () -> admin.issueCertificate("acme/edge-ca",
                    csr("/CN=api", "subjectAltName=DNS:api.acme.internal"), null, null));
            assertEquals("SAN_NOT_ALLOWED", none.reason());
            admin.issueCertificate("acme/edge-ca", csr("/CN=nameless", null), null, "client");
        }
    }

    private static String auditText() throws Exception {
        StringBuilder sb = new StringBuilder();
        for (Path p : AuditLog.logFiles(dir.resolve("audit"))) {
            sb.append(Files.readString(p));
        }
        return sb.toString();
    }

    record Run(boolean ok, String output) { }

    private static int counter;

    private static synchronized String csr(String subject, String addext) throws Exception {
        Path key = dir.resolve("k" + counter + ".key");
        Path out = dir.resolve("r" + (counter++) + ".csr");
        List<String> cmd = new ArrayList<>(List.of("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key.toString(), "-out", out.toString(),
                "-subj", subject));
        if (addext != null) cmd.addAll(List.of("-addext", addext));
        Run r = run(cmd);
        assertTrue(r.ok(), r.output());
        return Files.readString(out);
    }

    private static Run run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor() == 0, out);
    }
}
