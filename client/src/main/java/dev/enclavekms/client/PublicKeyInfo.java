package dev.enclavekms.client;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.NoSuchAlgorithmException;
import java.security.PublicKey;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.Objects;

/**
 * The public key of a signing key version.
 *
 * @param key       the key's name
 * @param version   the key version
 * @param algorithm e.g. {@code EC_P256_SHA256}, {@code ED25519}, {@code RSA_3072_PSS_SHA256}
 * @param pem       the SubjectPublicKeyInfo as PEM ({@code -----BEGIN PUBLIC KEY-----})
 */
public record PublicKeyInfo(String key, int version, String algorithm, String pem) {
    private static final String BEGIN = "-----BEGIN PUBLIC KEY-----";
    private static final String END = "-----END PUBLIC KEY-----";

    public PublicKeyInfo {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(pem, "pem");
    }

    /**
     * The DER SubjectPublicKeyInfo inside {@link #pem()}.
     *
     * @throws InvalidKeySpecException when the PEM has no single PUBLIC KEY block of valid base64
     */
    public byte[] der() throws InvalidKeySpecException {
        String s = pem.strip();
        int begin = s.indexOf(BEGIN);
        int end = s.indexOf(END);
        if (begin != 0 || end < 0 || end + END.length() != s.length()) {
            throw new InvalidKeySpecException("not a single PEM PUBLIC KEY block");
        }
        try {
            return Base64.getMimeDecoder().decode(s.substring(BEGIN.length(), end));
        } catch (IllegalArgumentException e) {
            throw new InvalidKeySpecException("PEM body is not valid base64");
        }
    }

    /**
     * The key as a JCA {@link PublicKey} from the JDK's own providers, ready for
     * {@link java.security.Signature#initVerify(PublicKey)}: an {@code ECPublicKey} for
     * {@code EC_*}, an {@code EdECPublicKey} for {@code ED25519}, an {@code RSAPublicKey}
     * for {@code RSA_*}.
     *
     * @throws NoSuchAlgorithmException for an algorithm this client does not know
     * @throws InvalidKeySpecException  when the PEM is not a key of that algorithm
     */
    public PublicKey toPublicKey() throws GeneralSecurityException {
        String jca;
        if (algorithm.startsWith("EC_")) {
            jca = "EC";
        } else if (algorithm.equals("ED25519")) {
            jca = "Ed25519";
        } else if (algorithm.startsWith("RSA_")) {
            jca = "RSA";
        } else {
            throw new NoSuchAlgorithmException("unknown key algorithm " + algorithm);
        }
        return KeyFactory.getInstance(jca).generatePublic(new X509EncodedKeySpec(der()));
    }
}
