package dev.enclavekms.system;

import dev.enclavekms.client.CaCertificates;
import dev.enclavekms.client.CertificateNotFoundException;
import dev.enclavekms.client.CertificateRefusedException;
import dev.enclavekms.client.CertificateRevocationLists;
import dev.enclavekms.client.IssuedCertificate;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.RevokedCertificate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Revocation, CRLs, intermediate CAs and per-grant TTL limits against a real daemon process
 * on SoftHSM, with openssl as the relying party: a revoked certificate fails
 * {@code openssl verify -crl_check} while its sibling passes, also after a restart; an
 * intermediate whose request an openssl-made root signed issues leaves that verify with
 * {@code -CAfile root.pem -untrusted intermediate.pem}; a grant's max_ttl_seconds holds.
 */
class CertificateRevocationIT {
    @TempDir
    static Path dir;
    static DaemonProcess daemon;

    @BeforeAll
    static void start() throws Exception {
        String me = System.getProperty("user.name");
        Path state = Files.createDirectories(dir.resolve("state"));
        Files.writeString(state.resolve("policy.yaml"), """
                version: 1
                tenants:
                  default:
                    members: %s
                    grants:
                      - name: operators
                        methods: ["Kms.*", "Admin.*"]
                        keys: ["*"]
                        all_tenants: true
                        token_admin: true
                        san: ["DNS:*", "IP:*"]
                  edge:
                    key_prefixes: ["edge/"]
                    members: ["token:edge-worker"]
                    grants:
                      - name: workers
                        methods: ["Kms.IssueCertificate", "Kms.GetCaCertificates", "Kms.GetCrl"]
                        keys: ["edge/*"]
                        san: ["DNS:*.edge.internal"]
                        max_ttl_seconds: 900
                """.formatted(me.equals("root") ? "[\"user:root\"]" : "[\"user:root\", \"user:" + me + "\"]"));
        daemon = DaemonProcess.start(dir);
    }

    @AfterAll
    static void stop() throws Exception {
        if (daemon != null) daemon.close();
    }

    @Test
    void revokedCertificate_failsOpensslCrlCheck_itsSiblingPasses_andBothStaySoAfterRestart() throws Exception {
        IssuedCertificate revoked;
        IssuedCertificate kept;
        long number;
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createKey("ca-crl", "CERT_AUTHORITY", "EC_P384_SHA384", null, null);
            revoked = kms.issueCertificate("ca-crl", csr("stolen"), 3600L, "server");
            kept = kms.issueCertificate("ca-crl", csr("kept"), 3600L, "server");
            RevokedCertificate r = kms.revokeCertificate(revoked.serial(), "keyCompromise");
            assertEquals("ca-crl", r.key());
            assertEquals("keyCompromise", r.reason());
            assertFalse(r.alreadyRevoked());
            assertTrue(kms.revokeCertificate(revoked.serial(), null).alreadyRevoked());
            assertThrows(CertificateNotFoundException.class, () -> kms.revokeCertificate("0badc0ffee", null));

            CertificateRevocationLists crls = kms.getCrl("ca-crl");
            assertEquals(1, crls.crls().size());
            assertEquals(1, crls.crls().getFirst().revoked());
            number = crls.crls().getFirst().number();
            assertCrlCheck(kms.getCaCertificates("ca-crl"), crls, revoked, kept);
        }
        daemon.restart();
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            CertificateRevocationLists crls = kms.getCrl("ca-crl");
            assertTrue(crls.crls().getFirst().number() > number, "CRL numbers only rise, across restarts too");
            assertCrlCheck(kms.getCaCertificates("ca-crl"), crls, revoked, kept);
        }
    }

    @Test
    void intermediate_signedByAnOpensslRoot_issuesLeavesThatVerifyUpToTheRoot() throws Exception {
        Path rootKey = dir.resolve("root.key");
        Path root = dir.resolve("root.pem");
        Commands.run("openssl", "req", "-x509", "-newkey", "rsa", "-pkeyopt", "rsa_keygen_bits:3072", "-nodes",
                "-keyout", rootKey.toString(), "-out", root.toString(), "-days", "365", "-subj", "/O=Acme/CN=Acme Root",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
                .requireSuccess();
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createIntermediateCaKey("edge/issuing", "EC_P256_SHA256");
            assertEquals(0, kms.getCaCertificates("edge/issuing").certificates().size());
            assertEquals(java.util.List.of(1), kms.getCaCertificates("edge/issuing").awaitingCertificate());
            var missing = assertThrows(CertificateRefusedException.class,
                    () -> kms.issueCertificate("edge/issuing", csr("early"), null, null));
            assertEquals("CA_CERTIFICATE_MISSING", missing.reason());

            Path request = Files.writeString(dir.resolve("issuing.csr"),
                    kms.getCaCsr("edge/issuing", null, "CN=Edge Issuing CA,O=Acme"));
            Commands.run("openssl", "req", "-verify", "-noout", "-in", request.toString()).requireSuccess();
            Path ext = Files.writeString(dir.resolve("issuing.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                    + "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
            Path intermediate = dir.resolve("issuing.pem");
            Commands.run("openssl", "x509", "-req", "-in", request.toString(), "-CA", root.toString(), "-CAkey",
                    rootKey.toString(), "-CAcreateserial", "-days", "90", "-extfile", ext.toString(), "-out",
                    intermediate.toString()).requireSuccess();
            assertEquals("CN=Edge Issuing CA,O=Acme", kms.importCaCertificate("edge/issuing", 1,
                    Files.readString(intermediate) + Files.readString(root)));

            CaCertificates cas = kms.getCaCertificates("edge/issuing");
            CaCertificates.Version v1 = cas.certificates().getFirst();
            assertTrue(v1.intermediate());
            assertEquals(java.util.List.of(), cas.awaitingCertificate());
            assertEquals(2, v1.chain().size());
            assertEquals(Files.readString(root).strip(), v1.root().strip());

            IssuedCertificate leaf = kms.issueCertificate("edge/issuing", csr("api"), 600L, "server");
            assertEquals(leaf.caCertificate() + v1.root(), leaf.caChain());
            Path leafFile = Files.writeString(dir.resolve("api.pem"), leaf.certificate());
            Commands.Result ok = Commands.run("openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
                    root.toString(), "-untrusted", intermediate.toString(), leafFile.toString());
            assertEquals(0, ok.exit(), ok.stdout() + ok.stderr());
            // Without the intermediate the root alone cannot vouch for the leaf: the chain matters.
            Commands.Result broken = Commands.run("openssl", "verify", "-CAfile", root.toString(), leafFile.toString());
            assertNotEquals(0, broken.exit(), broken.stdout());
        }
    }

    @Test
    void grantMaxTtl_isTheLimitForItsHolders_andTheRefusalNamesTheGrant() throws Exception {
        try (KmsClient admin = KmsClient.connect(daemon.socket()); KmsClient worker = KmsClient.connect(daemon.socket())) {
            admin.createKey("edge/ca", "CERT_AUTHORITY");
            worker.authenticate(admin.createToken("edge-worker", Duration.ofHours(1)).token());
            String request = csr("node1");
            IssuedCertificate atLimit = worker.issueCertificate("edge/ca", request, 900L, null);
            assertEquals(Duration.ofSeconds(900).plusMinutes(5), Duration.between(atLimit.notBefore(),
                    atLimit.notAfter()), "exactly the grant's limit is allowed (plus the 5-minute backdating)");
            var tooLong = assertThrows(CertificateRefusedException.class,
                    () -> worker.issueCertificate("edge/ca", request, 901L, null));
            assertEquals("TTL_TOO_LONG", tooLong.reason());
            assertTrue(tooLong.getMessage().contains("max_ttl_seconds") && tooLong.getMessage().contains("'workers'"),
                    tooLong.getMessage());
            var byDefault = assertThrows(CertificateRefusedException.class,
                    () -> worker.issueCertificate("edge/ca", request, null, null));
            assertEquals("TTL_TOO_LONG", byDefault.reason(), "the 24 h default is over the grant's limit too");
            // The operators' grant has no max_ttl_seconds: the daemon's 24 h is their limit.
            admin.issueCertificate("edge/ca", request, 86400L, null);
            var daemonLimit = assertThrows(CertificateRefusedException.class,
                    () -> admin.issueCertificate("edge/ca", request, 86401L, null));
            assertTrue(daemonLimit.getMessage().contains("ca.max-ttl-seconds"), daemonLimit.getMessage());
        }
    }

    private static void assertCrlCheck(CaCertificates cas, CertificateRevocationLists crls, IssuedCertificate revoked,
                                       IssuedCertificate kept) throws Exception {
        Path caFile = Files.writeString(dir.resolve("ca" + n + ".pem"), cas.pem());
        Path crlFile = Files.writeString(dir.resolve("crl" + n + ".pem"), crls.pem());
        Path bad = Files.writeString(dir.resolve("revoked" + n + ".pem"), revoked.certificate());
        Path good = Files.writeString(dir.resolve("kept" + (n++) + ".pem"), kept.certificate());
        Commands.Result rejected = Commands.run("openssl", "verify", "-crl_check", "-CRLfile", crlFile.toString(),
                "-CAfile", caFile.toString(), bad.toString());
        assertNotEquals(0, rejected.exit(), rejected.stdout());
        assertTrue((rejected.stdout() + rejected.stderr()).contains("certificate revoked"),
                rejected.stdout() + rejected.stderr());
        Commands.Result accepted = Commands.run("openssl", "verify", "-crl_check", "-CRLfile", crlFile.toString(),
                "-CAfile", caFile.toString(), good.toString());
        assertEquals(0, accepted.exit(), accepted.stdout() + accepted.stderr());
    }

    private static int n;

    private static String csr(String name) throws Exception {
        Path key = dir.resolve(name + n + ".key");
        Path out = dir.resolve(name + (n++) + ".csr");
        Commands.run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key.toString(), "-out", out.toString(), "-subj", "/CN=" + name + ".edge.internal",
                "-addext", "subjectAltName=DNS:" + name + ".edge.internal").requireSuccess();
        return Files.readString(out);
    }
}
