package dev.enclavekms.manifest;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;

/**
 * The detached signature over a manifest's bytes: the daemon's Sign signature as it is
 * (ECDSA DER, RSASSA-PSS, pure Ed25519), which {@code openssl dgst -verify} or, for
 * Ed25519, {@code openssl pkeyutl -verify -rawin} check without enclave-kms.
 */
public final class ManifestSignatures {
    /** Kms.Sign takes a message of at most 1 MiB; Ed25519 must send the whole manifest. */
    public static final int MAX_ED25519_MANIFEST = 1 << 20;

    private ManifestSignatures() {
    }

    /**
     * The digest to send to Kms.Sign for this algorithm (SHA-256, or SHA-384 for P-384),
     * or null for Ed25519, which signs the message itself.
     */
    public static byte[] digest(String algorithm, byte[] manifest) {
        String hash = switch (algorithm) {
            case "EC_P256_SHA256", "RSA_3072_PSS_SHA256" -> "SHA-256";
            case "EC_P384_SHA384" -> "SHA-384";
            case "ED25519" -> null;
            default -> throw new IllegalArgumentException("unknown algorithm " + algorithm);
        };
        if (hash == null) {
            return null;
        }
        try {
            return MessageDigest.getInstance(hash).digest(manifest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** True when {@code signature} is {@code key}'s signature over {@code manifest}; false for any malformed one. */
    public static boolean verify(String algorithm, PublicKey key, byte[] manifest, byte[] signature) {
        try {
            Signature s = switch (algorithm) {
                case "EC_P256_SHA256" -> Signature.getInstance("SHA256withECDSA");
                case "EC_P384_SHA384" -> Signature.getInstance("SHA384withECDSA");
                case "ED25519" -> Signature.getInstance("Ed25519");
                case "RSA_3072_PSS_SHA256" -> {
                    Signature pss = Signature.getInstance("RSASSA-PSS");
                    pss.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
                    yield pss;
                }
                default -> throw new IllegalArgumentException("unknown algorithm " + algorithm);
            };
            s.initVerify(key);
            s.update(manifest);
            return s.verify(signature);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return false; // a key of another type, or a signature that does not parse
        }
    }
}
