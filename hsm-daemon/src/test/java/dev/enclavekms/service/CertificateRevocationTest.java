package dev.enclavekms.service;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.policy.Identity;
import dev.enclavekms.policy.PolicyParser;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RevocationReason;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509CRL;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Revocation, CRLs, intermediate CAs and per-grant TTL limits on a real SoftHSM token and
 * a real SQLite registry, with {@code openssl} as the independent checker: a revoked
 * certificate fails {@code openssl verify -crl_check} while a certificate of the same CA
 * that was not revoked passes; an external root made by {@code openssl req -x509} signs
 * the enclave's CA request, and leaves of the intermediate verify up to that root.
 */
class CertificateRevocationTest {
    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static KeyAdmin admin;
    static KeyHealth health;
    static CertificateAuthority ca;

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("certificate-revocation");
        enclave = token.open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        admin = new KeyAdmin(enclave, registry, Clock.systemUTC());
        admin.createKey("ca-p256", Purpose.CERT_AUTHORITY, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        admin.createKey("ca-rsa", Purpose.CERT_AUTHORITY, KeyAlgorithm.RSA_3072_PSS_SHA256, "", List.of());
        health = KeyHealth.reconcile(enclave, registry.list());
        ca = newCa();
    }

    /** A CA as a (re)started daemon makes it: same token, registry and ca/ directory. */
    static CertificateAuthority newCa() {
        return new CertificateAuthority(enclave, registry, health, new CaCertificates(dir.resolve("ca")),
                Clock.systemUTC(), CertificateAuthority.DEFAULT_MAX_TTL);
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    @Test
    void revokedCertificate_isInTheCrl_andOpensslRejectsIt_whileItsSiblingPasses() throws Exception {
        for (String key : List.of("ca-p256", "ca-rsa")) {
            var revoked = ca.issue(key, csr("/CN=stolen.example.internal", null), Duration.ofHours(1), null);
            var kept = ca.issue(key, csr("/CN=kept", null), Duration.ofHours(1), CertificateAuthority.Profile.CLIENT);

            var r = ca.revoke(revoked.serial().toString(16), RevocationReason.KEY_COMPROMISE);
            assertEquals(key, r.key());
            assertEquals(1, r.version());
            assertFalse(r.alreadyRevoked());

            var crls = ca.crls(key);
            assertEquals(1, crls.size());
            X509CRL crl = x509Crl(crls.getFirst().pem());
            assertNotNull(crl.getRevokedCertificate(revoked.serial()), "the revoked serial is listed");
            assertEquals(null, crl.getRevokedCertificate(kept.serial()));
            assertEquals(java.security.cert.CRLReason.KEY_COMPROMISE,
                    crl.getRevokedCertificate(revoked.serial()).getRevocationReason());
            crl.verify(((java.security.cert.X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(new ByteArrayInputStream(revoked.caCertificatePem()
                            .getBytes(StandardCharsets.US_ASCII)))).getPublicKey());
            assertEquals(2, crl.getVersion(), "X.509 v2 CRL");
            assertNotNull(crl.getExtensionValue("2.5.29.20"), "CRL number");
            assertNotNull(crl.getExtensionValue("2.5.29.35"), "authority key identifier");
            assertEquals(Duration.ofHours(24).toMillis(), crl.getNextUpdate().getTime() - crl.getThisUpdate().getTime());

            Path caFile = write(key + "-ca.pem", revoked.caCertificatePem());
            Path crlFile = write(key + "-crl.pem", crls.getFirst().pem());
            Run bad = run(List.of("openssl", "verify", "-crl_check", "-CRLfile", crlFile.toString(), "-CAfile",
                    caFile.toString(), write(key + "-revoked.pem", revoked.certificatePem()).toString()));
            assertFalse(bad.ok(), bad.output());
            assertTrue(bad.output().contains("certificate revoked"), bad.output());
            Run good = run(List.of("openssl", "verify", "-crl_check", "-CRLfile", crlFile.toString(), "-CAfile",
                    caFile.toString(), write(key + "-kept.pem", kept.certificatePem()).toString()));
            assertTrue(good.ok() && good.output().contains(": OK"), good.output());
        }
    }

    @Test
    void crlNumber_risesWithEachRevocation_andAcrossARestart() throws Exception {
        var a = ca.issue("ca-p256", csr("/CN=a", null), Duration.ofHours(1), CertificateAuthority.Profile.CLIENT);
        long before = ca.crls("ca-p256").getFirst().number();
        assertEquals(before, ca.crls("ca-p256").getFirst().number(), "a fresh CRL is served again, not re-signed");
        ca.revoke(a.serial().toString(16), RevocationReason.SUPERSEDED);
        var after = ca.crls("ca-p256").getFirst();
        assertTrue(after.number() > before, after.number() + " > " + before);
        assertNotNull(x509Crl(after.pem()).getRevokedCertificate(a.serial()));

        var restarted = newCa().crls("ca-p256").getFirst();
        assertTrue(restarted.number() > after.number(), "a restart signs a new CRL with a higher number");
        assertNotNull(x509Crl(restarted.pem()).getRevokedCertificate(a.serial()), "revocations are durable");
    }

    @Test
    void crl_isReSignedWhenHalfStale_andExpiredCertificatesDropOff() throws Exception {
        admin.createKey("ca-clock", Purpose.CERT_AUTHORITY, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        var clock = new dev.enclavekms.testing.MutableClock(java.time.Instant.now());
        var timed = new CertificateAuthority(enclave, registry, health, new CaCertificates(dir.resolve("ca")), clock,
                CertificateAuthority.DEFAULT_MAX_TTL);
        var shortLived = timed.issue("ca-clock", csr("/CN=short", null), Duration.ofHours(1),
                CertificateAuthority.Profile.CLIENT);
        var longLived = timed.issue("ca-clock", csr("/CN=long", null), Duration.ofHours(20),
                CertificateAuthority.Profile.CLIENT);
        timed.revoke(shortLived.serial().toString(16), RevocationReason.SUPERSEDED);
        timed.revoke(longLived.serial().toString(16), RevocationReason.SUPERSEDED);
        var first = timed.crls("ca-clock").getFirst();
        assertEquals(2, first.revoked());

        clock.advance(Duration.ofHours(11));
        assertEquals(first, timed.crls("ca-clock").getFirst(), "under 12 h old: served as it is");
        clock.advance(Duration.ofHours(2));
        var next = timed.crls("ca-clock").getFirst();
        assertTrue(next.number() > first.number());
        assertEquals(clock.instant().truncatedTo(java.time.temporal.ChronoUnit.SECONDS), next.thisUpdate());
        X509CRL crl = x509Crl(next.pem());
        assertEquals(null, crl.getRevokedCertificate(shortLived.serial()), "expired: no longer listed");
        assertNotNull(crl.getRevokedCertificate(longLived.serial()));
    }

    @Test
    void unknownSerial_refusedTyped_andRevokingTwiceChangesNothing() throws Exception {
        var e = assertThrows(KmsError.CertificateNotFound.class, () -> ca.revoke("0123456789abcdef", RevocationReason.UNSPECIFIED));
        assertEquals("123456789abcdef", e.serial());
        assertThrows(KmsError.InvalidParameter.class, () -> ca.revoke("not-hex", RevocationReason.UNSPECIFIED));

        var c = ca.issue("ca-p256", csr("/CN=twice", null), Duration.ofHours(1), CertificateAuthority.Profile.CLIENT);
        String colons = c.serial().toString(16).replaceAll("(..)(?!$)", "$1:").toUpperCase();
        var first = ca.revoke(colons, RevocationReason.CESSATION_OF_OPERATION);
        var second = ca.revoke(c.serial().toString(16), RevocationReason.KEY_COMPROMISE);
        assertTrue(second.alreadyRevoked());
        assertEquals(RevocationReason.CESSATION_OF_OPERATION, second.reason(), "the first reason stays");
        assertEquals(first.revoked(), second.revoked());
    }

    @Test
    void intermediate_csrSignedByAnOpensslRoot_isImported_andItsLeavesVerifyUpToThatRoot() throws Exception {
        KeyRecord key = admin.createKey("edge-int", Purpose.CERT_AUTHORITY, KeyAlgorithm.EC_P384_SHA384, "", List.of());
        ca.markIntermediate(key);
        assertEquals(List.of(), ca.caCertificates("edge-int"), "no self-signed root, nothing to trust yet");
        assertEquals(List.of(1), ca.awaitingCertificate("edge-int"));
        assertEquals(List.of(), ca.awaitingCertificate("ca-p256"), "a root CA awaits nothing");
        var missing = assertThrows(KmsError.CertificateRefused.class,
                () -> ca.issue("edge-int", csr("/CN=early", null), null, null));
        assertEquals(KmsError.CertificateRefused.Reason.CA_CERTIFICATE_MISSING, missing.reason());
        assertTrue(missing.getMessage().contains("ImportCaCertificate"), missing.getMessage());

        ExternalRoot root = ExternalRoot.make("Acme Root");
        var request = ca.caCsr("edge-int", 1, "CN=Edge Issuing CA,O=Acme");
        Path csrFile = write("edge-int.csr", request.csrPem());
        Run check = run(List.of("openssl", "req", "-verify", "-noout", "-in", csrFile.toString()));
        assertTrue(check.ok(), "the enclave's request verifies with openssl: " + check.output());

        // Refusals first: a certificate that is not a CA, and a chain without its root.
        String notCa = root.sign(csrFile, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n");
        var e1 = assertThrows(KmsError.InvalidParameter.class, () -> ca.importCaCertificate("edge-int", 1, notCa + root.pem));
        assertTrue(e1.getMessage().contains("not a CA certificate"), e1.getMessage());
        String good = root.sign(csrFile, "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                + "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
                + "authorityKeyIdentifier=keyid\n");
        var e2 = assertThrows(KmsError.InvalidParameter.class, () -> ca.importCaCertificate("edge-int", 1, good));
        assertTrue(e2.getMessage().contains("not self-signed"), e2.getMessage());
        Path otherCsr = write("other.csr", new String(csr("/CN=Other CA", null), StandardCharsets.US_ASCII));
        String otherKeys = root.sign(otherCsr, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
        var e3 = assertThrows(KmsError.InvalidParameter.class,
                () -> ca.importCaCertificate("edge-int", 1, otherKeys + root.pem));
        assertTrue(e3.getMessage().contains("another public key"), e3.getMessage());
        assertThrows(KmsError.InvalidKeyUsage.class, () -> ca.importCaCertificate("ca-p256", 1, good + root.pem));

        var imported = ca.importCaCertificate("edge-int", 1, good + root.pem);
        assertTrue(imported.intermediate());
        assertEquals(2, imported.chain().size());
        assertEquals(CertificateAuthority.splitPem(root.pem).getFirst(), imported.root());
        assertThrows(KmsError.InvalidParameter.class, () -> ca.importCaCertificate("edge-int", 1, good + root.pem),
                "a version keeps its first certificate");
        assertEquals(List.of(), ca.awaitingCertificate("edge-int"));
        var listed = ca.caCertificates("edge-int");
        assertEquals(1, listed.size());
        assertEquals(imported.chain(), listed.getFirst().chain());

        var leaf = ca.issue("edge-int", csr("/CN=svc", null), Duration.ofHours(2), CertificateAuthority.Profile.CLIENT);
        var leaf2 = ca.issue("edge-int", csr("/CN=svc2", null), Duration.ofHours(2), CertificateAuthority.Profile.CLIENT);
        assertEquals(imported.pem(), leaf.caCertificatePem());
        Path rootFile = write("acme-root.pem", root.pem);
        Path intFile = write("edge-int.pem", imported.pem());
        Path leafFile = write("svc.pem", leaf.certificatePem());
        Run v = run(List.of("openssl", "verify", "-x509_strict", "-CAfile", rootFile.toString(), "-untrusted",
                intFile.toString(), leafFile.toString()));
        assertTrue(v.ok() && v.output().contains(": OK"), v.output());

        // Revocation works the same under an intermediate: its CRL is signed by the intermediate.
        ca.revoke(leaf.serial().toString(16), RevocationReason.PRIVILEGE_WITHDRAWN);
        Path crlFile = write("edge-int.crl", ca.crls("edge-int").getFirst().pem());
        Run revoked = run(List.of("openssl", "verify", "-crl_check", "-CRLfile", crlFile.toString(), "-CAfile",
                rootFile.toString(), "-untrusted", intFile.toString(), leafFile.toString()));
        assertFalse(revoked.ok(), revoked.output());
        assertTrue(revoked.output().contains("certificate revoked"), revoked.output());
        Run kept = run(List.of("openssl", "verify", "-crl_check", "-CRLfile", crlFile.toString(), "-CAfile",
                rootFile.toString(), "-untrusted", intFile.toString(),
                write("svc2.pem", leaf2.certificatePem()).toString()));
        assertTrue(kept.ok() && kept.output().contains(": OK"), kept.output());
    }

    @Test
    void grantMaxTtl_limitsIssuance_andTheRefusalSaysWhichLimitApplied() throws Exception {
        var policy = PolicyParser.parse("""
                version: 1
                tenants:
                  default:
                    members: ["user:alice", "user:bob"]
                    grants:
                      - name: short-lived
                        to: ["user:alice"]
                        methods: ["Kms.IssueCertificate"]
                        keys: ["ca-*"]
                        max_ttl_seconds: 3600
                      - name: unlimited
                        to: ["user:bob"]
                        methods: ["Kms.IssueCertificate"]
                        keys: ["ca-*"]
                """, "test policy");
        Caller alice = Caller.of(policy, Identity.unix("alice", "alice", null, null, 1), "Kms.IssueCertificate");
        Caller bob = Caller.of(policy, Identity.unix("bob", "bob", null, null, 2), "Kms.IssueCertificate");
        byte[] request = csr("/CN=worker", null);

        ca.as(alice).issue("ca-p256", request, Duration.ofHours(1), CertificateAuthority.Profile.CLIENT);
        var e = assertThrows(KmsError.CertificateRefused.class,
                () -> ca.as(alice).issue("ca-p256", request, Duration.ofHours(2), CertificateAuthority.Profile.CLIENT));
        assertEquals(KmsError.CertificateRefused.Reason.TTL_TOO_LONG, e.reason());
        assertTrue(e.getMessage().contains("3600") && e.getMessage().contains("max_ttl_seconds")
                && e.getMessage().contains("'short-lived'"), e.getMessage());

        ca.as(bob).issue("ca-p256", request, Duration.ofHours(2), CertificateAuthority.Profile.CLIENT);
        var daemon = assertThrows(KmsError.CertificateRefused.class,
                () -> ca.as(bob).issue("ca-p256", request, Duration.ofHours(25), CertificateAuthority.Profile.CLIENT));
        assertEquals(KmsError.CertificateRefused.Reason.TTL_TOO_LONG, daemon.reason());
        assertTrue(daemon.getMessage().contains("ca.max-ttl-seconds"), daemon.getMessage());
    }

    // --- openssl as the independent implementation ---

    /** A root CA made by openssl alone, as an organisation's offline root would be. */
    record ExternalRoot(Path key, Path cert, String pem) {
        static ExternalRoot make(String cn) throws Exception {
            Path key = next(".key");
            Path cert = next(".pem");
            Run r = run(List.of("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384",
                    "-nodes", "-keyout", key.toString(), "-out", cert.toString(), "-days", "365", "-subj", "/CN=" + cn,
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"));
            assertTrue(r.ok(), r.output());
            return new ExternalRoot(key, cert, Files.readString(cert));
        }

        /** Signs {@code csrFile} with the extensions in {@code extensions} (an openssl -extfile). */
        String sign(Path csrFile, String extensions) throws Exception {
            Path ext = write("ext" + counter + ".cnf", extensions);
            Path out = next(".pem");
            Run r = run(List.of("openssl", "x509", "-req", "-in", csrFile.toString(), "-CA", cert.toString(),
                    "-CAkey", key.toString(), "-CAcreateserial", "-days", "30", "-sha384", "-extfile", ext.toString(),
                    "-out", out.toString()));
            assertTrue(r.ok(), r.output());
            return Files.readString(out);
        }
    }

    record Run(boolean ok, String output) { }

    private static int counter;

    private static synchronized Path next(String suffix) {
        return dir.resolve("r" + (counter++) + suffix);
    }

    static Path write(String name, String text) throws Exception {
        return Files.writeString(next("-" + name), text);
    }

    static byte[] csr(String subject, String addext) throws Exception {
        Path key = next(".key");
        Path out = next(".csr");
        List<String> cmd = new ArrayList<>(List.of("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key.toString(), "-out", out.toString(), "-subj", subject));
        if (addext != null) cmd.addAll(List.of("-addext", addext));
        Run r = run(cmd);
        assertTrue(r.ok(), r.output());
        return Files.readAllBytes(out);
    }

    static Run run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor() == 0, out);
    }

    static X509CRL x509Crl(String pem) throws Exception {
        return (X509CRL) CertificateFactory.getInstance("X.509")
                .generateCRL(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
    }
}
