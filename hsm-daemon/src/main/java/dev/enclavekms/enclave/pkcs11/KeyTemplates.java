package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.KeyPairTemplate;

import java.math.BigInteger;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_AES;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_EC;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_EC_EDWARDS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_GENERIC_SECRET;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_RSA;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_AES_KEY_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_EC_EDWARDS_KEY_PAIR_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_EC_KEY_PAIR_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_GENERIC_SECRET_KEY_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKM_RSA_PKCS_KEY_PAIR_GEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_PRIVATE_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_PUBLIC_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY;

/**
 * The attribute templates the enclave generates keys with, and the reverse: which
 * {@link KeyAlgorithm} an object found on a token has. The templates are the security
 * boundary of the PKCS#11 enclave, so they live in one place to be reviewed at once.
 *
 * <p>Every template is complete, never relying on the token's defaults (SoftHSM's are
 * weak: SENSITIVE=false, and pkcs11-tool adds wrap and unwrap). Every usage flag is set
 * explicitly, true only where the purpose needs it; a key never gets WRAP together with
 * DECRYPT or UNWRAP together with ENCRYPT, because SoftHSM does not enforce key separation
 * and such a key lets a PIN holder decrypt what it wrapped.
 *
 * <p>CKA_MODIFIABLE=false comes last in every template: in a C_UnwrapKey or C_DeriveKey
 * template SoftHSM 2.6.1 fails with CKR_ATTRIBUTE_READ_ONLY when MODIFIABLE=false precedes
 * other attributes, and leaves an orphan token object behind each time (measured here; see
 * FIELD-NOTES). Generation does not hit that bug, but keeps the same order so that the rule
 * has no exceptions and templates can be reused for unwrapping later.
 */
final class KeyTemplates {

    /** DER OID 1.2.840.10045.3.1.7 (P-256, secp256r1). */
    static final byte[] P256_PARAMS = HexFormat.of().parseHex("06082a8648ce3d030107");
    /** DER OID 1.3.132.0.34 (P-384, secp384r1). */
    static final byte[] P384_PARAMS = HexFormat.of().parseHex("06052b81040022");
    /**
     * DER OID 1.3.101.112 (Ed25519, RFC 8410). PKCS#11 3.0 also allows the PrintableString
     * "edwards25519"; SoftHSM 2.6.1 accepts both and stores the OID form, so we send the OID,
     * which is what the standards after 3.0 prefer.
     */
    static final byte[] ED25519_PARAMS = HexFormat.of().parseHex("06032b6570");
    /** PrintableString "edwards25519": recognised when reading objects others created. */
    static final byte[] ED25519_NAME = HexFormat.of().parseHex("130c656477617264733235353139");

    static final int AES_KEY_BYTES = 32;
    /** HMAC-SHA256 key length: the hash's output length, as RFC 2104 recommends. */
    static final int HMAC_KEY_BYTES = 32;
    static final int RSA_BITS = 3072;
    static final BigInteger RSA_PUBLIC_EXPONENT = BigInteger.valueOf(65537);

    private KeyTemplates() {
    }

    /** The key generation mechanism of an algorithm. */
    static long generationMechanism(KeyAlgorithm algorithm) {
        return switch (algorithm) {
            case AES_256_GCM -> CKM_AES_KEY_GEN;
            case HMAC_SHA256 -> CKM_GENERIC_SECRET_KEY_GEN;
            case EC_P256_SHA256, EC_P384_SHA384 -> CKM_EC_KEY_PAIR_GEN;
            case ED25519 -> CKM_EC_EDWARDS_KEY_PAIR_GEN;
            case RSA_3072_PSS_SHA256 -> CKM_RSA_PKCS_KEY_PAIR_GEN;
        };
    }

    static long keyType(KeyAlgorithm algorithm) {
        return switch (algorithm) {
            case AES_256_GCM -> CKK_AES;
            case HMAC_SHA256 -> CKK_GENERIC_SECRET;
            case EC_P256_SHA256, EC_P384_SHA384 -> CKK_EC;
            case ED25519 -> CKK_EC_EDWARDS;
            case RSA_3072_PSS_SHA256 -> CKK_RSA;
        };
    }

    /** The template of a secret key of {@code algorithm}. */
    static AttributeVector secretKey(KeyAlgorithm algorithm, ObjectId id, String label) {
        return switch (algorithm) {
            case AES_256_GCM -> secretKey(id, label);
            case HMAC_SHA256 -> hmacKey(id, label);
            default -> throw new IllegalArgumentException(algorithm + " is not a secret key");
        };
    }

    /**
     * HMAC-SHA256 key: a 256-bit CKK_GENERIC_SECRET with CKA_SIGN only. Not even CKA_VERIFY:
     * the daemon only computes MACs, and a verifier is checked by recomputing. A generic
     * secret with DERIVE could be turned into other keys, so DERIVE is false like everywhere.
     */
    static AttributeVector hmacKey(ObjectId id, String label) {
        return new AttributeVector()
                .class_(CKO_SECRET_KEY)
                .keyType(CKK_GENERIC_SECRET)
                .valueLen(HMAC_KEY_BYTES)
                .token(true)
                .private_(true)
                .sensitive(true)
                .extractable(false)
                .copyable(false)
                .derive(false)
                .encrypt(false)
                .decrypt(false)
                .wrap(false)
                .unwrap(false)
                .sign(true)
                .verify(false)
                .id(id.bytes())
                .label(label)
                .modifiable(false); // last: see the class comment
    }

    /** AES-256 master key: encrypt and decrypt only. */
    static AttributeVector secretKey(ObjectId id, String label) {
        return new AttributeVector()
                .class_(CKO_SECRET_KEY)
                .keyType(CKK_AES)
                .valueLen(AES_KEY_BYTES)
                .token(true)
                .private_(true)
                .sensitive(true)
                .extractable(false)
                .copyable(false)
                .derive(false)
                .encrypt(true)
                .decrypt(true)
                .wrap(false)
                .unwrap(false)
                .sign(false)
                .verify(false)
                .id(id.bytes())
                .label(label)
                .modifiable(false); // last: see the class comment
    }

    /** A signing key pair: the private half signs only, the public half verifies only. */
    static KeyPairTemplate keyPair(KeyAlgorithm algorithm, ObjectId id, String label) {
        long keyType = keyType(algorithm);
        AttributeVector priv = new AttributeVector()
                .class_(CKO_PRIVATE_KEY)
                .keyType(keyType)
                .token(true)
                .private_(true)
                .sensitive(true)
                .extractable(false)
                .copyable(false)
                .derive(false)
                .sign(true)
                .signRecover(false)
                .decrypt(false)
                .unwrap(false)
                .id(id.bytes())
                .label(label);
        AttributeVector pub = new AttributeVector()
                .class_(CKO_PUBLIC_KEY)
                .keyType(keyType)
                .token(true)
                // Private too: nothing about our keys is listed to an unauthenticated session.
                .private_(true)
                .copyable(false)
                .derive(false)
                .verify(true)
                .verifyRecover(false)
                .encrypt(false)
                .wrap(false)
                .id(id.bytes())
                .label(label);
        switch (algorithm) {
            case EC_P256_SHA256 -> pub.ecParams(P256_PARAMS);
            case EC_P384_SHA384 -> pub.ecParams(P384_PARAMS);
            case ED25519 -> pub.ecParams(ED25519_PARAMS);
            case RSA_3072_PSS_SHA256 -> pub.modulusBits(RSA_BITS).publicExponent(RSA_PUBLIC_EXPONENT);
            case AES_256_GCM, HMAC_SHA256 -> throw new IllegalArgumentException(algorithm + " is not a key pair");
        }
        priv.modifiable(false); // last: see the class comment
        pub.modifiable(false);
        return new KeyPairTemplate(priv, pub);
    }

    /**
     * The algorithm of an object found on the token, or null when it is none the enclave
     * generates (another curve, another RSA size, a non-AES secret key...).
     */
    static KeyAlgorithm infer(long objectClass, Long keyType, byte[] ecParams, BigInteger modulus,
                              Integer valueLen) {
        if (keyType == null) {
            return null;
        }
        if (objectClass == CKO_SECRET_KEY) {
            if (keyType == CKK_AES && valueLen != null && valueLen == AES_KEY_BYTES) {
                return KeyAlgorithm.AES_256_GCM;
            }
            return keyType == CKK_GENERIC_SECRET && valueLen != null && valueLen == HMAC_KEY_BYTES
                    ? KeyAlgorithm.HMAC_SHA256 : null;
        }
        if (keyType == CKK_EC) {
            if (Arrays.equals(P256_PARAMS, ecParams)) {
                return KeyAlgorithm.EC_P256_SHA256;
            }
            if (Arrays.equals(P384_PARAMS, ecParams)) {
                return KeyAlgorithm.EC_P384_SHA384;
            }
            return null;
        }
        if (keyType == CKK_EC_EDWARDS) {
            return Arrays.equals(ED25519_PARAMS, ecParams) || Arrays.equals(ED25519_NAME, ecParams)
                    ? KeyAlgorithm.ED25519 : null;
        }
        if (keyType == CKK_RSA) {
            return modulus != null && modulus.bitLength() == RSA_BITS ? KeyAlgorithm.RSA_3072_PSS_SHA256 : null;
        }
        return null;
    }

    /** Bytes of one coordinate / of r or s for an EC algorithm. */
    static int fieldLength(KeyAlgorithm algorithm) {
        return switch (algorithm) {
            case EC_P256_SHA256, ED25519 -> 32;
            case EC_P384_SHA384 -> 48;
            default -> throw new IllegalArgumentException(algorithm + " is not an elliptic-curve algorithm");
        };
    }

    /** A JCA public key from what the token says about the public key object. */
    static PublicKey publicKey(KeyAlgorithm algorithm, byte[] ecPoint, BigInteger modulus, BigInteger exponent)
            throws GeneralSecurityException {
        switch (algorithm) {
            case EC_P256_SHA256, EC_P384_SHA384 -> {
                int n = fieldLength(algorithm);
                byte[] point = Der.ecPoint(ecPoint, 1 + 2 * n);
                if (point[0] != 0x04) {
                    throw new GeneralSecurityException("EC point is not in uncompressed form");
                }
                AlgorithmParameters params = AlgorithmParameters.getInstance("EC");
                params.init(new ECGenParameterSpec(algorithm == KeyAlgorithm.EC_P256_SHA256 ? "secp256r1" : "secp384r1"));
                ECPoint w = new ECPoint(new BigInteger(1, Arrays.copyOfRange(point, 1, 1 + n)),
                        new BigInteger(1, Arrays.copyOfRange(point, 1 + n, 1 + 2 * n)));
                return KeyFactory.getInstance("EC")
                        .generatePublic(new ECPublicKeySpec(w, params.getParameterSpec(ECParameterSpec.class)));
            }
            case ED25519 -> {
                byte[] point = Der.ecPoint(ecPoint, 32);
                return KeyFactory.getInstance("Ed25519")
                        .generatePublic(new X509EncodedKeySpec(Der.ed25519SubjectPublicKeyInfo(point)));
            }
            case RSA_3072_PSS_SHA256 -> {
                return KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(modulus, exponent));
            }
            default -> throw new IllegalArgumentException(algorithm + " has no public key");
        }
    }
}
