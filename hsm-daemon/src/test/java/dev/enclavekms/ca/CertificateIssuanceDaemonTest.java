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
