package dev.enclavekms.system;

import dev.enclavekms.client.IssuedTlsCertificate;
import dev.enclavekms.client.KmsClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A TLS_SERVER key generated in SoftHSM by a real daemon, certified by Kms.IssueTlsCertificate,
 * and served by docs/examples/HsmTlsServer.java (a separate JVM, SunPKCS11 configured with
 * pkcs11-config/sunpkcs11-tls-server.cfg verbatim): {@code openssl s_client} completes a TLS 1.3
 * handshake verifying the chain against the CA root from GetCaCertificates and the host name,
 * and fails against another CA or another name. pkcs11-tool sees the private key sensitive,
 * never extractable, sign-only, with the certificate beside it under the same CKA_ID.
 * Rotation and renewal: the new version's certificate is picked up by the running server;
 * the old version keeps its certificate; renewing replaces a version's certificate object.
 */
class TlsKeyIT {
    private static final String HOST = "web.acme.internal";

    @TempDir
    static Path dir;
    static DaemonProcess daemon;

    @BeforeAll
    static void start() throws Exception {
        daemon = DaemonProcess.start(dir);
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createKey("edge-ca", "CERT_AUTHORITY", "EC_P384_SHA384", null, null);
            kms.createKey("other-ca", "CERT_AUTHORITY");
            kms.createKey("web-tls", "TLS_SERVER");
        }
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    @Test
    void tlsServerKeyInHsm_servesTls13ToOpensslVerifyingChainAndHost_andFollowsRotation() throws Exception {
        Path caFile = dir.resolve("edge-ca.pem");
        Path otherCaFile = dir.resolve("other-ca.pem");
        IssuedTlsCertificate v1;
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            Files.writeString(caFile, kms.getCaCertificates("edge-ca").pem());
            Files.writeString(otherCaFile, kms.getCaCertificates("other-ca").pem());
            v1 = kms.issueTlsCertificate("web-tls", "edge-ca", List.of("DNS:" + HOST, "IP:127.0.0.1"), null, 3600L);
        }
        String v1Id = objectId(1);
        assertEquals(1, v1.version());
        assertEquals("enclave-kms:web-tls:v1:" + v1Id.substring(0, 8), v1.alias());
        assertEquals("pkcs11:token=" + daemon.tokenLabel() + ";id=" + pct(v1Id) + ";object=enclave-kms:web-tls:v1:"
                + v1Id.substring(0, 8) + ";type=private", v1.pkcs11Uri());
        assertEquals("server", v1.certificate().profile());

        // The token as an independent reader sees it: the key pair and, under the same id, the certificate.
        String listing = TokenObjects.list(daemon);
        String privateKey = block(listing, "Private Key Object", v1Id);
        assertTrue(privateKey.contains("Usage:      sign\n"), privateKey);
        String access = TokenObjects.field(privateKey, "Access:");
        assertTrue(access.contains("sensitive") && access.contains("always sensitive")
                && access.contains("never extractable"), privateKey);
        assertTrue(TokenObjects.field(privateKey, "label:").equals(v1.alias()), privateKey);
        String cert = block(listing, "Certificate Object", v1Id);
        assertEquals(v1.alias(), TokenObjects.field(cert, "label:"), cert);
        assertTrue(TokenObjects.field(cert, "subject:").contains("CN=" + HOST), cert);

        Process server = startServer();
        try {
            String ready = awaitLine(server, "listening ");
            String[] parts = ready.split(" ");
            int port = Integer.parseInt(parts[1]);
            assertEquals(v1.alias(), parts[2], ready);
            assertEquals("key-encoded=none", parts[3], "the server's PrivateKey is a token handle: " + ready);

            Commands.Result ok = sClient(port, caFile, HOST);
            assertEquals(0, ok.exit(), ok.stdout() + ok.stderr());
            String out = ok.stdout() + ok.stderr();
            assertTrue(out.contains("Protocol version: TLSv1.3"), out);
            assertTrue(out.contains("Signature type: ECDSA"), out);
            assertTrue(out.contains("Verification: OK"), out);
            assertTrue(ok.stdout().contains("hello from " + v1.alias()), out);

            Commands.Result wrongHost = sClient(port, caFile, "other.acme.internal");
            assertNotEquals(0, wrongHost.exit(), "host name must be verified: " + wrongHost.stderr());
            Commands.Result wrongCa = sClient(port, otherCaFile, HOST);
            assertNotEquals(0, wrongCa.exit(), "chain must be verified: " + wrongCa.stderr());

            // Rotation: a new key pair, certified anew; the running server moves to it.
            IssuedTlsCertificate v2;
            try (KmsClient kms = KmsClient.connect(daemon.socket())) {
                kms.rotateKey("web-tls");
                v2 = kms.issueTlsCertificate("web-tls", "edge-ca", List.of("DNS:" + HOST), null, 3600L);
                // Renewal: the version's certificate object is replaced, not added to.
                v2 = kms.issueTlsCertificate("web-tls", "edge-ca", List.of("DNS:" + HOST), null, 3600L);
            }
            assertEquals(2, v2.version());
            Commands.Result rotated = sClient(port, caFile, HOST);
            assertEquals(0, rotated.exit(), rotated.stdout() + rotated.stderr());
            assertTrue(rotated.stdout().contains("hello from " + v2.alias()), rotated.stdout());
        } finally {
            server.destroy();
            if (!server.waitFor(20, TimeUnit.SECONDS)) server.destroyForcibly().waitFor();
        }
        String after = TokenObjects.list(daemon);
        assertEquals(1, count(after, "Certificate Object", v1Id), "v1 keeps its certificate:\n" + after);
        assertEquals(1, count(after, "Certificate Object", objectId(2)), "one certificate per version:\n" + after);
    }

    private static String objectId(int version) throws Exception {
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            return kms.describeKey("web-tls").versions().get(version - 1).objectId().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private static String pct(String hex) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < hex.length(); i += 2) b.append('%').append(hex, i, i + 2);
        return b.toString();
    }

    /** docs/examples/HsmTlsServer.java in its own JVM (SoftHSM reads SOFTHSM2_CONF once per process). */
    private static Process startServer() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dreload=0", Commands.repoFile("docs/examples/HsmTlsServer.java").toString(),
                Commands.repoFile("pkcs11-config/sunpkcs11-tls-server.cfg").toString(), daemon.pinFile().toString(),
                "web-tls", "0"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(dir.resolve("server-stderr.log").toFile());
        pb.environment().put("SOFTHSM2_CONF", daemon.softhsmConf().toString());
        return pb.start();
    }

    private static String awaitLine(Process p, String prefix) throws Exception {
        var reader = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        var line = CompletableFuture.supplyAsync(() -> {
            try {
                return reader.readLine();
            } catch (java.io.IOException e) {
                return null;
            }
        });
        String l = line.get(120, TimeUnit.SECONDS);
        assertTrue(l != null && l.startsWith(prefix), "server said " + l + "; stderr:\n"
                + Files.readString(dir.resolve("server-stderr.log")));
        return l;
    }

    private static Commands.Result sClient(int port, Path caFile, String host) throws Exception {
        return Commands.run(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port, "-servername", HOST,
                "-CAfile", caFile.toString(), "-verify_return_error", "-verify_hostname", host, "-brief", "-ign_eof"),
                Map.of(), new byte[0]);
    }

    /** The pkcs11-tool block of the given kind whose ID line is {@code id}. */
    private static String block(String listing, String kind, String id) {
        return TokenObjects.blocks(listing).stream().filter(b -> b.startsWith(kind) && TokenObjects.hasId(b, id)).findFirst()
                .orElseThrow(() -> new AssertionError("no " + kind + " with ID " + id + " in\n" + listing));
    }

    private static long count(String listing, String kind, String id) {
        return TokenObjects.blocks(listing).stream().filter(b -> b.startsWith(kind) && TokenObjects.hasId(b, id)).count();
    }
}
