package dev.enclavekms.service;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CA on a real SoftHSM token: requests made by {@code openssl req}, certificates
 * checked by {@code openssl verify} against the root {@link CertificateAuthority#caCertificates}
 * publishes, and each kind of refusal.
 */
class CertificateAuthorityTest {
    @TempDir
    static Path dir;
    static TestTokens.TestToken token;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static KeyAdmin admin;
    static CertificateAuthority ca;

    @BeforeAll
    static void setUp() throws Exception {
        token = TestTokens.fresh("certificate-authority");
        enclave = token.open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        admin = new KeyAdmin(enclave, registry, Clock.systemUTC());
        admin.createKey("ca-p256", Purpose.CERT_AUTHORITY, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        admin.createKey("ca-p384", Purpose.CERT_AUTHORITY, KeyAlgorithm.EC_P384_SHA384, "", List.of());
        admin.createKey("ca-rsa", Purpose.CERT_AUTHORITY, KeyAlgorithm.RSA_3072_PSS_SHA256, "", List.of());
        admin.createKey("signer", Purpose.SIGN, KeyAlgorithm.EC_P256_SHA256, "", List.of());
        KeyHealth health = KeyHealth.reconcile(enclave, registry.list());
        ca = new CertificateAuthority(enclave, registry, health, new CaCertificates(dir.resolve("ca")),
                Clock.systemUTC(), CertificateAuthority.DEFAULT_MAX_TTL);
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    @Test
    void ecCsrFromOpenssl_issuedCertificateVerifiesWithOpensslAgainstEveryCaAlgorithm() throws Exception {
        byte[] csr = opensslCsr("ec", "ec_paramgen_curve:P-256", "/CN=api.example.internal",
                "subjectAltName=DNS:api.example.internal,IP:10.0.0.7");
        for (String key : List.of("ca-p256", "ca-p384", "ca-rsa")) {
            CertificateAuthority.Issued issued = ca.issue(key, csr, null, null);
            assertOpensslVerifies(key, issued.certificatePem(), "sslserver");
            X509Certificate cert = x509(issued.certificatePem());
            assertEquals(List.of("1.3.6.1.5.5.7.3.1"), cert.getExtendedKeyUsage());
            assertEquals(-1, cert.getBasicConstraints());
            assertTrue(cert.getKeyUsage()[0]); // digitalSignature
            assertFalse(cert.getKeyUsage()[5]); // never keyCertSign
            assertEquals(List.of("DNS:api.example.internal", "IP:10.0.0.7"), issued.sans());
            assertEquals(issued.serial(), cert.getSerialNumber());
            assertTrue(cert.getSerialNumber().bitLength() > 64, "random 128-bit serial");
            long life = cert.getNotAfter().getTime() - cert.getNotBefore().getTime();
            assertEquals(Duration.ofHours(24).plusMinutes(5).toMillis(), life, 1000);
        }
        assertEquals("RSASSA-PSS", x509(ca.issue("ca-rsa", csr, null, null).certificatePem()).getSigAlgName());
    }

    @Test
    void rsaCsrFromOpenssl_clientProfile_verifiesAsSslclientAndNotAsSslserver() throws Exception {
        byte[] csr = opensslCsr("rsa", "rsa_keygen_bits:2048", "/CN=worker-3", null);
        CertificateAuthority.Issued issued = ca.issue("ca-p256", csr, Duration.ofHours(1),
                CertificateAuthority.Profile.CLIENT);
        assertOpensslVerifies("ca-p256", issued.certificatePem(), "sslclient");
        assertFalse(opensslVerify("ca-p256", issued.certificatePem(), "sslserver").ok());
        assertEquals(List.of("1.3.6.1.5.5.7.3.2"), x509(issued.certificatePem()).getExtendedKeyUsage());
        assertEquals(List.of(), issued.sans());

        var both = ca.issue("ca-p256", csr, null, CertificateAuthority.Profile.BOTH);
        assertOpensslVerifies("ca-p256", both.certificatePem(), "sslserver");
        assertOpensslVerifies("ca-p256", both.certificatePem(), "sslclient");
    }

    @Test
    void caCertificates_rootIsStableSelfSignedCa() throws Exception {
        var first = ca.caCertificates("ca-rsa");
        assertEquals(1, first.size());
        assertEquals(first, ca.caCertificates("ca-rsa"), "the stored root is reused, not remade");
        X509Certificate root = x509(first.getFirst().pem());
        assertTrue(root.getBasicConstraints() >= 0);
        assertTrue(root.getKeyUsage()[5]); // keyCertSign
        root.verify(root.getPublicKey());
        assertEquals(root.getSubjectX500Principal(), root.getIssuerX500Principal());
    }

    @Test
    void rotation_newVersionPublishedBeforeItSigns() throws Exception {
        admin.createKey("ca-rotating", Purpose.CERT_AUTHORITY, null, "", List.of());
        var lifecycle = new KeyLifecycle(enclave, registry, Clock.systemUTC(),
                new UsageMeter(registry, UsageMeter.DEFAULT_ROTATION_LIMIT, () -> { }), Duration.ofHours(24),
                PausePoints.NONE);
        lifecycle.rotate("ca-rotating", true);
        var certs = ca.caCertificates("ca-rotating");
        assertEquals(2, certs.size());
        assertTrue(certs.get(0).primary());
        assertFalse(certs.get(1).primary());
        assertFalse(certs.get(0).pem().equals(certs.get(1).pem()));
    }

    @Test
    void tamperedCsr_refusedAsBadSignature() throws Exception {
        byte[] csr = opensslCsrDer("ec", "ec_paramgen_curve:P-256", "/CN=evil");
        // Change one byte of the subject's CN: the request still parses but its signature fails.
        int i = indexOf(csr, "evil".getBytes(StandardCharsets.US_ASCII));
        csr[i] = 'd';
        var e = assertThrows(KmsError.CertificateRefused.class, () -> ca.issue("ca-p256", csr, null, null));
        assertEquals(KmsError.CertificateRefused.Reason.BAD_SIGNATURE, e.reason());
    }

    @Test
    void garbage_refusedAsBadCsr() {
        var e = assertThrows(KmsError.CertificateRefused.class,
                () -> ca.issue("ca-p256", "not a csr".getBytes(StandardCharsets.US_ASCII), null, null));
        assertEquals(KmsError.CertificateRefused.Reason.BAD_CSR, e.reason());
    }

    @Test
    void weakKeys_refused() throws Exception {
        byte[] rsa1024 = opensslCsr("rsa", "rsa_keygen_bits:1024", "/CN=weak", null);
        var e = assertThrows(KmsError.CertificateRefused.class, () -> ca.issue("ca-p256", rsa1024, null, null));
        assertEquals(KmsError.CertificateRefused.Reason.WEAK_KEY, e.reason());
        assertTrue(e.getMessage().contains("1024"), e.getMessage());

        byte[] secp256k1 = opensslCsr("ec", "ec_paramgen_curve:secp256k1", "/CN=odd-curve", null);
        var e2 = assertThrows(KmsError.CertificateRefused.class, () -> ca.issue("ca-p256", secp256k1, null, null));
        assertEquals(KmsError.CertificateRefused.Reason.WEAK_KEY, e2.reason());
    }

    @Test
    void ttlAboveMaximum_refused() throws Exception {
        byte[] csr = opensslCsr("ec", "ec_paramgen_curve:P-256", "/CN=long", null);
        var e = assertThrows(KmsError.CertificateRefused.class,
                () -> ca.issue("ca-p256", csr, Duration.ofHours(25), null));
        assertEquals(KmsError.CertificateRefused.Reason.TTL_TOO_LONG, e.reason());
    }

    @Test
    void nonDnsSan_refused() throws Exception {
        byte[] csr = opensslCsr("ec", "ec_paramgen_curve:P-256", "/CN=mail", "subjectAltName=email:a@example.com");
        var e = assertThrows(KmsError.CertificateRefused.class, () -> ca.issue("ca-p256", csr, null, null));
        assertEquals(KmsError.CertificateRefused.Reason.SAN_NOT_ALLOWED, e.reason());
    }

    @Test
    void signKey_isNotACa() throws Exception {
        byte[] csr = opensslCsr("ec", "ec_paramgen_curve:P-256", "/CN=x", null);
        assertThrows(KmsError.InvalidKeyUsage.class, () -> ca.issue("signer", csr, null, null));
        assertThrows(KmsError.InvalidKeyUsage.class, () -> ca.caCertificates("signer"));
    }

    @Test
    void unknownProfile_refused() {
        var e = assertThrows(KmsError.CertificateRefused.class, () -> CertificateAuthority.Profile.parse("admin"));
        assertEquals(KmsError.CertificateRefused.Reason.BAD_PROFILE, e.reason());
    }

    // --- helpers: openssl as an independent implementation ---

    record Run(boolean ok, String output) { }

    private static int counter;

    private static synchronized Path next(String suffix) {
        return dir.resolve("f" + (counter++) + suffix);
    }

    static byte[] opensslCsr(String alg, String pkeyopt, String subject, String addext) throws Exception {
        Path key = next(".key");
        Path out = next(".csr");
        List<String> cmd = new ArrayList<>(List.of("openssl", "req", "-new", "-newkey", alg, "-pkeyopt", pkeyopt,
                "-nodes", "-keyout", key.toString(), "-out", out.toString(), "-subj", subject));
        if (addext != null) {
            cmd.addAll(List.of("-addext", addext));
        }
        Run r = run(cmd);
        assertTrue(r.ok(), r.output());
        return Files.readAllBytes(out);
    }

    static byte[] opensslCsrDer(String alg, String pkeyopt, String subject) throws Exception {
        Path key = next(".key");
        Path out = next(".der");
        Run r = run(List.of("openssl", "req", "-new", "-newkey", alg, "-pkeyopt", pkeyopt, "-nodes", "-keyout",
                key.toString(), "-outform", "DER", "-out", out.toString(), "-subj", subject));
        assertTrue(r.ok(), r.output());
        return Files.readAllBytes(out);
    }

    static Run opensslVerify(String caKey, String certPem, String purpose) throws Exception {
        Path caFile = next(".ca.pem");
        StringBuilder chain = new StringBuilder();
        for (var c : ca.caCertificates(caKey)) chain.append(c.pem());
        Files.writeString(caFile, chain);
        Path cert = next(".crt");
        Files.writeString(cert, certPem);
        return run(List.of("openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", caFile.toString(),
                cert.toString()));
    }

    static void assertOpensslVerifies(String caKey, String certPem, String purpose) throws Exception {
        Run r = opensslVerify(caKey, certPem, purpose);
        assertTrue(r.ok() && r.output().contains(": OK"), r.output());
    }

    static Run run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor() == 0, out);
    }

    static X509Certificate x509(String pem) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) continue outer;
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
