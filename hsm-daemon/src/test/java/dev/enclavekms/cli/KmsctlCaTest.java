package dev.enclavekms.cli;

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
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code kmsctl ca certs} and {@code kmsctl ca issue} against a real daemon, checked by openssl. */
class KmsctlCaTest {
    @TempDir
    static Path dir;
    static InProcessDaemon daemon;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(dir, "kmsctl-ca", Clock.systemUTC());
        try (KmsClient kms = daemon.client()) {
            kms.createKey("edge-ca", "CERT_AUTHORITY", "RSA_3072_PSS_SHA256", "", List.of());
        }
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    private static KmsctlRunner.Run kmsctl(String... args) {
        String[] all = new String[args.length + 2];
        all[0] = "--socket";
        all[1] = daemon.socket().toString();
        System.arraycopy(args, 0, all, 2, args.length);
        return KmsctlRunner.run(new byte[0], Map.of(), false, false, all);
    }

    @Test
    void certsAndIssue_writeFilesThatOpensslVerifies() throws Exception {
        Path key = dir.resolve("client.key");
        Path csr = dir.resolve("client.csr");
        Process p = new ProcessBuilder("openssl", "req", "-new", "-newkey", "rsa", "-pkeyopt", "rsa_keygen_bits:2048",
                "-nodes", "-keyout", key.toString(), "-out", csr.toString(), "-subj", "/CN=worker-7")
                .redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertEquals(0, p.waitFor());

        Path bundle = dir.resolve("ca.pem");
        KmsctlRunner.Run certs = kmsctl("ca", "certs", "edge-ca", "--out", bundle.toString());
        assertEquals(0, certs.code(), certs.stderr());
        Path crt = dir.resolve("client.crt");
        KmsctlRunner.Run issue = kmsctl("ca", "issue", "edge-ca", csr.toString(), "--ttl", "2h", "--profile", "client",
                "--out", crt.toString());
        assertEquals(0, issue.code(), issue.stderr());
        assertTrue(issue.stderr().contains("for CN=worker-7"), issue.stderr());

        Process v = new ProcessBuilder("openssl", "verify", "-purpose", "sslclient", "-CAfile", bundle.toString(),
                crt.toString()).redirectErrorStream(true).start();
        String out = new String(v.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, v.waitFor(), out);

        KmsctlRunner.Run tooLong = kmsctl("ca", "issue", "edge-ca", csr.toString(), "--ttl", "2d");
        assertEquals(Kmsctl.EXIT_KMS_ERROR, tooLong.code());
        assertTrue(tooLong.stderr().contains("CertificateRefused"), tooLong.stderr());
        assertTrue(Files.readString(crt).startsWith("-----BEGIN CERTIFICATE-----"));
    }
}
