package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.testing.TestTokens;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.time.Instant;
import java.util.Date;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_ID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_LABEL;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_PRIVATE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_TOKEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_VALUE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_CERTIFICATE;

/**
 * {@link Pkcs11Enclave#putCertificate}: one public certificate object per key pair, under the
 * key's CKA_ID and the given label (what SunPKCS11's KeyStore pairs), replaced on renewal,
 * refused for a certificate of another key, destroyed with the key.
 */
class Pkcs11CertificateTest {

    @Test
    void certificate_storedBesideKey_replacedOnRenewal_refusedForOtherKeys_destroyedWithKey() throws Exception {
        TestTokens.TestToken token = TestTokens.fresh("p11-cert");
        try (Pkcs11Enclave enclave = token.open(); TokenInspector t = new TokenInspector(token)) {
            ObjectId id = ObjectId.random();
            PublicKey pub = enclave.generate(id, KeyAlgorithm.EC_P256_SHA256, "enclave-kms:web:v1:x");
            byte[] first = certificate(pub, 1);
            byte[] renewed = certificate(pub, 2);

            enclave.putCertificate(id, "enclave-kms:web:v1:x", first);
            long cert = t.only(CKO_CERTIFICATE, id);
            assertArrayEquals(id.bytes(), (byte[]) t.attribute(cert, CKA_ID));
            assertEquals("enclave-kms:web:v1:x", new String((char[]) t.attribute(cert, CKA_LABEL)));
            assertEquals(true, t.attribute(cert, CKA_TOKEN));
            assertEquals(false, t.attribute(cert, CKA_PRIVATE));

            enclave.putCertificate(id, "enclave-kms:web:v1:x", renewed);
            assertArrayEquals(renewed, (byte[]) t.attribute(t.only(CKO_CERTIFICATE, id), CKA_VALUE));

            var g = KeyPairGenerator.getInstance("EC");
            g.initialize(256);
            byte[] foreign = certificate(g.generateKeyPair().getPublic(), 3);
            assertThrows(EnclaveException.BadInput.class, () -> enclave.putCertificate(id, "x", foreign));
            assertThrows(EnclaveException.BadInput.class, () -> enclave.putCertificate(id, "x", new byte[] {1, 2}));
            assertThrows(EnclaveException.ObjectNotFound.class,
                    () -> enclave.putCertificate(ObjectId.random(), "x", first));
            assertArrayEquals(renewed, (byte[]) t.attribute(t.only(CKO_CERTIFICATE, id), CKA_VALUE));

            enclave.destroy(id);
            assertEquals(0, t.find(CKO_CERTIFICATE, id).length);
        }
    }

    /** A certificate for {@code subjectKey}, signed by a throwaway key (the enclave only checks whose key it names). */
    private static byte[] certificate(PublicKey subjectKey, int serial) throws Exception {
        var g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        var signer = g.generateKeyPair();
        Instant now = Instant.now();
        return new X509v3CertificateBuilder(new X500Name("CN=test ca"), BigInteger.valueOf(serial),
                Date.from(now), Date.from(now.plusSeconds(3600)), new X500Name("CN=web.test"),
                SubjectPublicKeyInfo.getInstance(subjectKey.getEncoded()))
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())).getEncoded();
    }
}
