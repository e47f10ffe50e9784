package dev.enclavekms.client;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.NoSuchAlgorithmException;
import java.security.PublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.Base64;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PublicKeyInfoTest {
    private static final byte[] MESSAGE = "release 1.2.3".getBytes(StandardCharsets.UTF_8);

    private static String pem(PublicKey k) {
        return "-----BEGIN PUBLIC KEY-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(k.getEncoded())
                + "\n-----END PUBLIC KEY-----\n";
    }

    private static boolean roundTrip(String algorithm, KeyPair pair, java.security.Signature signer,
                                     java.security.Signature verifier) throws GeneralSecurityException {
        PublicKey parsed = new PublicKeyInfo("k", 1, algorithm, pem(pair.getPublic())).toPublicKey();
        assertArrayEquals(pair.getPublic().getEncoded(), parsed.getEncoded());
        signer.initSign(pair.getPrivate());
        signer.update(MESSAGE);
        byte[] sig = signer.sign();
        verifier.initVerify(parsed);
        verifier.update(MESSAGE);
        return verifier.verify(sig);
    }

    @Test
    void ecP256Pem_verifiesSignatureOfItsPrivateKey() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        assertTrue(roundTrip("EC_P256_SHA256", g.generateKeyPair(),
                java.security.Signature.getInstance("SHA256withECDSA"),
                java.security.Signature.getInstance("SHA256withECDSA")));
    }

    @Test
    void ed25519Pem_verifiesSignatureOfItsPrivateKey() throws Exception {
        assertTrue(roundTrip("ED25519", KeyPairGenerator.getInstance("Ed25519").generateKeyPair(),
                java.security.Signature.getInstance("Ed25519"), java.security.Signature.getInstance("Ed25519")));
    }

    @Test
    void rsaPssPem_verifiesSignatureOfItsPrivateKey() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048);
        PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
        java.security.Signature s = java.security.Signature.getInstance("RSASSA-PSS");
        s.setParameter(pss);
        java.security.Signature v = java.security.Signature.getInstance("RSASSA-PSS");
        v.setParameter(pss);
        assertTrue(roundTrip("RSA_3072_PSS_SHA256", g.generateKeyPair(), s, v));
    }

    @Test
    void unknownAlgorithm_throwsNoSuchAlgorithm() throws Exception {
        PublicKey k = KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic();
        assertThrows(NoSuchAlgorithmException.class, () -> new PublicKeyInfo("k", 1, "ML_DSA_65", pem(k)).toPublicKey());
    }

    @Test
    void notPem_throwsInvalidKeySpec() {
        assertThrows(InvalidKeySpecException.class,
                () -> new PublicKeyInfo("k", 1, "ED25519", "MCowBQYDK2VwAyEA").toPublicKey());
        assertThrows(InvalidKeySpecException.class, () -> new PublicKeyInfo("k", 1, "ED25519",
                "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").toPublicKey());
    }

    @Test
    void pemOfWrongAlgorithm_throwsInvalidKeySpec() throws Exception {
        PublicKey ed = KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic();
        assertThrows(InvalidKeySpecException.class, () -> new PublicKeyInfo("k", 1, "EC_P256_SHA256", pem(ed)).toPublicKey());
    }
}
