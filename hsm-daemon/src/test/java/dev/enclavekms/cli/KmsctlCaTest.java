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

    private static String openssl(String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int code = p.waitFor();
        return code + ":" + out;
    }

    private static Path csr(String name, String subject) throws Exception {
        Path csr = dir.resolve(name + ".csr");
        String r = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                dir.resolve(name + ".key").toString(), "-out", csr.toString(), "-subj", subject);
        assertTrue(r.startsWith("0:"), r);
        return csr;
    }

    @Test
    void revokeAndCrl_opensslRejectsTheRevokedCertificateAndAcceptsItsSibling() throws Exception {
        Path bundle = dir.resolve("revoke-ca.pem");
        assertEquals(0, kmsctl("ca", "certs", "edge-ca", "--out", bundle.toString()).code());
        Path bad = dir.resolve("bad.crt");
        Path good = dir.resolve("good.crt");
        KmsctlRunner.Run issued = kmsctl("ca", "issue", "edge-ca", csr("bad", "/CN=bad").toString(),
                "--profile", "client", "--out", bad.toString());
        assertEquals(0, issued.code(), issued.stderr());
        assertEquals(0, kmsctl("ca", "issue", "edge-ca", csr("good", "/CN=good").toString(), "--profile", "client",
                "--out", good.toString()).code());
        String serial = openssl("x509", "-noout", "-serial", "-in", bad.toString()).split("serial=")[1].strip();

        KmsctlRunner.Run revoke = kmsctl("ca", "revoke", serial, "--reason", "keyCompromise");
        assertEquals(0, revoke.code(), revoke.stderr());
        assertTrue(revoke.stdout().contains("revoked: ") && revoke.stdout().contains("keyCompromise"), revoke.stdout());
        Path crl = dir.resolve("edge-ca.crl");
        KmsctlRunner.Run crlRun = kmsctl("ca", "crl", "edge-ca", "--out", crl.toString());
        assertEquals(0, crlRun.code(), crlRun.stderr());

        String rejected = openssl("verify", "-crl_check", "-CRLfile", crl.toString(), "-CAfile", bundle.toString(),
                bad.toString());
        assertTrue(!rejected.startsWith("0:") && rejected.contains("certificate revoked"), rejected);
        String accepted = openssl("verify", "-crl_check", "-CRLfile", crl.toString(), "-CAfile", bundle.toString(),
                good.toString());
        assertTrue(accepted.startsWith("0:") && accepted.contains(": OK"), accepted);

        KmsctlRunner.Run unknown = kmsctl("ca", "revoke", "deadbeef");
        assertEquals(Kmsctl.EXIT_KMS_ERROR, unknown.code());
        assertTrue(unknown.stderr().contains("CertificateNotFound"), unknown.stderr());
        KmsctlRunner.Run badReason = kmsctl("ca", "revoke", serial, "--reason", "bored");
        assertTrue(badReason.stderr().contains("InvalidParameter"), badReason.stderr());
    }

    @Test
    void intermediate_csrImportIssue_verifiesUnderTheExternalRoot() throws Exception {
        assertEquals(0, kmsctl("ca", "create-intermediate", "edge-int").code());
        Path intCsr = dir.resolve("edge-int.csr");
        KmsctlRunner.Run csrRun = kmsctl("ca", "csr", "edge-int", "--subject", "CN=Edge CA,O=Acme", "--out",
                intCsr.toString());
        assertEquals(0, csrRun.code(), csrRun.stderr());
        Path rootKey = dir.resolve("root.key");
        Path root = dir.resolve("root.pem");
        String r = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                rootKey.toString(), "-out", root.toString(), "-days", "30", "-subj", "/CN=Acme Root",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        assertTrue(r.startsWith("0:"), r);
        Path ext = Files.writeString(dir.resolve("int.ext"),
                "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n");
        Path intCert = dir.resolve("edge-int.pem");
        r = openssl("x509", "-req", "-in", intCsr.toString(), "-CA", root.toString(), "-CAkey", rootKey.toString(),
                "-CAcreateserial", "-days", "10", "-extfile", ext.toString(), "-out", intCert.toString());
        assertTrue(r.startsWith("0:"), r);

        KmsctlRunner.Run awaiting = kmsctl("ca", "certs", "edge-int");
        assertEquals(0, awaiting.code(), awaiting.stderr());
        assertTrue(awaiting.stderr().contains("edge-int v1 awaits its certificate"), awaiting.stderr());
        KmsctlRunner.Run early = kmsctl("ca", "issue", "edge-int", csr("early", "/CN=early").toString());
        assertTrue(early.stderr().contains("CA_CERTIFICATE_MISSING") || early.stderr().contains("awaiting"),
                early.stderr());
        Path chain = Files.writeString(dir.resolve("chain.pem"), Files.readString(intCert) + Files.readString(root));
        KmsctlRunner.Run imported = kmsctl("ca", "import", "edge-int", "1", chain.toString());
        assertEquals(0, imported.code(), imported.stderr());
        assertTrue(imported.stdout().contains("CN=Edge CA"), imported.stdout());

        Path leaf = dir.resolve("leaf.crt");
        assertEquals(0, kmsctl("ca", "issue", "edge-int", csr("leaf", "/CN=worker-9").toString(), "--profile",
                "client", "--out", leaf.toString()).code());
        String v = openssl("verify", "-x509_strict", "-CAfile", root.toString(), "-untrusted", intCert.toString(),
                leaf.toString());
        assertTrue(v.startsWith("0:") && v.contains(": OK"), v);
        // ca certs publishes the whole chain: with it alone as the CA file the leaf verifies too.
        Path bundle = dir.resolve("edge-int-bundle.pem");
        assertEquals(0, kmsctl("ca", "certs", "edge-int", "--out", bundle.toString()).code());
        v = openssl("verify", "-x509_strict", "-CAfile", bundle.toString(), leaf.toString());
        assertTrue(v.startsWith("0:") && v.contains(": OK"), v);
    }
}
