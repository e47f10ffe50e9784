package dev.enclavekms.system;

import dev.enclavekms.client.CaCertificates;
import dev.enclavekms.client.CertificateRefusedException;
import dev.enclavekms.client.IssuedCertificate;
import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CA of a real daemon process on SoftHSM: EC and RSA requests made by {@code openssl
 * req}, issued by EC and RSA-PSS CA keys, verified by {@code openssl verify}; the roots
 * survive a restart unchanged (kept in ca/ beside the registry).
 */
class CertificateIT {
    @TempDir
    static Path dir;
    static DaemonProcess daemon;

    @BeforeAll
    static void start() throws Exception {
        daemon = DaemonProcess.start(dir);
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createKey("ca-ec", "CERT_AUTHORITY", "EC_P256_SHA256", null, null);
            kms.createKey("ca-rsa", "CERT_AUTHORITY", "RSA_3072_PSS_SHA256", null, null);
        }
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    @Test
    void ecAndRsaRequests_issuedByEcAndRsaCas_verifyWithOpenssl_andRootsSurviveRestart() throws Exception {
        String ecCsr = csr("ec", "ec_paramgen_curve:P-384", "ec");
        String rsaCsr = csr("rsa", "rsa_keygen_bits:3072", "rsa");
        String before;
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            before = kms.getCaCertificates("ca-ec").pem() + kms.getCaCertificates("ca-rsa").pem();
            for (String ca : List.of("ca-ec", "ca-rsa")) {
                for (String csr : List.of(ecCsr, rsaCsr)) {
                    IssuedCertificate c = kms.issueCertificate(ca, csr, 600L, "server");
                    assertVerifies(kms.getCaCertificates(ca), c.certificate());
                }
            }
            var refused = assertThrows(CertificateRefusedException.class,
                    () -> kms.issueCertificate("ca-ec", ecCsr.replace("MII", "MIJ"), null, null));
            assertTrue(List.of("BAD_CSR", "BAD_SIGNATURE").contains(refused.reason()), refused.reason());
        }
        try (var files = Files.list(daemon.stateDir().resolve("ca"))) {
            assertEquals(2, files.filter(p -> p.toString().endsWith(".pem")).count());
        }
        daemon.restart();
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            assertEquals(before, kms.getCaCertificates("ca-ec").pem() + kms.getCaCertificates("ca-rsa").pem());
            assertVerifies(kms.getCaCertificates("ca-rsa"), kms.issueCertificate("ca-rsa", ecCsr, null, null)
                    .certificate());
        }
    }

    private static int n;

    private static String csr(String alg, String opt, String name) throws Exception {
        Path key = dir.resolve(name + (n) + ".key");
        Path out = dir.resolve(name + (n++) + ".csr");
        Commands.run("openssl", "req", "-new", "-newkey", alg, "-pkeyopt", opt, "-nodes", "-keyout", key.toString(),
                "-out", out.toString(), "-subj", "/CN=" + name + ".host.internal",
                "-addext", "subjectAltName=DNS:" + name + ".host.internal").requireSuccess();
        return Files.readString(out);
    }

    private static void assertVerifies(CaCertificates cas, String certificate) throws Exception {
        Path caFile = Files.writeString(dir.resolve("ca" + (n) + ".pem"), cas.pem());
        Path cert = Files.writeString(dir.resolve("cert" + (n++) + ".pem"), certificate);
        Commands.Result r = Commands.run("openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
                caFile.toString(), cert.toString());
        assertEquals(0, r.exit(), r.stdout() + r.stderr());
    }
}
