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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kmsctl tls issue} against a real daemon: the chain file openssl verifies, and
 * {@code --renew-before} renewing only when the certificate in the file is close to expiry.
 */
class KmsctlTlsTest {
    @TempDir
    static Path dir;
    static InProcessDaemon daemon;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(dir, "kmsctl-tls", Clock.systemUTC());
        try (KmsClient kms = daemon.client()) {
            kms.createKey("edge-ca", "CERT_AUTHORITY");
            kms.createKey("web-tls", "TLS_SERVER");
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
    void issue_writesAVerifiableChain_andRenewBeforeRenewsOnlyNearExpiry() throws Exception {
        Path bundle = dir.resolve("ca.pem");
        assertEquals(0, kmsctl("ca", "certs", "edge-ca", "--out", bundle.toString()).code());
        Path chain = dir.resolve("chain.pem");
        KmsctlRunner.Run issue = kmsctl("tls", "issue", "web-tls", "--ca", "edge-ca", "--san", "DNS:web.acme.internal",
                "--ttl", "2h", "--out-chain", chain.toString());
        assertEquals(0, issue.code(), issue.stderr());
        assertTrue(issue.stderr().contains("on the token as pkcs11:token="), issue.stderr());
        String first = Files.readString(chain);
        assertEquals(2, first.split("-----BEGIN CERTIFICATE-----").length - 1, "certificate and CA certificate");

        Process v = new ProcessBuilder("openssl", "verify", "-purpose", "sslserver", "-CAfile", bundle.toString(),
                chain.toString()).redirectErrorStream(true).start();
        String out = new String(v.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, v.waitFor(), out);

        KmsctlRunner.Run kept = kmsctl("tls", "issue", "web-tls", "--ca", "edge-ca", "--san", "DNS:web.acme.internal",
                "--out-chain", chain.toString(), "--renew-before", "1h");
        assertEquals(0, kept.code(), kept.stderr());
        assertTrue(kept.stderr().contains("not renewed"), kept.stderr());
        assertEquals(first, Files.readString(chain));

        KmsctlRunner.Run renewed = kmsctl("tls", "issue", "web-tls", "--ca", "edge-ca", "--san",
                "DNS:web.acme.internal", "--out-chain", chain.toString(), "--renew-before", "3h");
        assertEquals(0, renewed.code(), renewed.stderr());
        assertNotEquals(first, Files.readString(chain));

        KmsctlRunner.Run describe = kmsctl("key", "describe", "web-tls");
        assertEquals(0, describe.code(), describe.stderr());
        assertTrue(describe.stdout().contains("v1 pkcs11:token="), describe.stdout());
        assertTrue(describe.stdout().contains(";object=enclave-kms:web-tls:v1:"), describe.stdout());

        KmsctlRunner.Run usage = kmsctl("tls", "issue", "web-tls", "--ca", "edge-ca", "--renew-before", "3h");
        assertEquals(Kmsctl.EXIT_USAGE, usage.code(), usage.stderr());
    }
}
