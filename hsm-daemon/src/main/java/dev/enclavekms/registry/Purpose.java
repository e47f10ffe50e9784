package dev.enclavekms.registry;

import dev.enclavekms.enclave.KeyAlgorithm;

import java.util.EnumSet;
import java.util.Set;

/** What a key is for. Codes are stored in the registry and never change. */
public enum Purpose {
    ENCRYPT(1, KeyAlgorithm.AES_256_GCM, EnumSet.of(KeyAlgorithm.AES_256_GCM)),
    SIGN(2, KeyAlgorithm.EC_P256_SHA256, EnumSet.of(KeyAlgorithm.EC_P256_SHA256, KeyAlgorithm.EC_P384_SHA384,
            KeyAlgorithm.ED25519, KeyAlgorithm.RSA_3072_PSS_SHA256)),
    CERT_AUTHORITY(3, KeyAlgorithm.EC_P256_SHA256, EnumSet.of(KeyAlgorithm.EC_P256_SHA256, KeyAlgorithm.EC_P384_SHA384,
            KeyAlgorithm.RSA_3072_PSS_SHA256)),
    /**
     * The audit log's own keys (an HMAC key for sensitive strings, a signing key for
     * checkpoints). Created by the daemon under reserved names, never through CreateKey,
     * and never usable by callers.
     */
    AUDIT(4, KeyAlgorithm.HMAC_SHA256, EnumSet.of(KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.EC_P256_SHA256)),
    /**
     * A TLS server's key pair: generated in the enclave, certified by a CERT_AUTHORITY key
     * (Kms.IssueTlsCertificate), used by a TLS server through the token's PKCS#11 interface
     * (SunPKCS11, OpenSSL's pkcs11 provider), never through Kms.Sign. EC only: ECDSA is one
     * signature scheme in TLS 1.2 and 1.3 alike, while an RSA key would sign PKCS#1 v1.5 in
     * TLS 1.2 and PSS in 1.3 (docs/decisions.md).
     */
    TLS_SERVER(5, KeyAlgorithm.EC_P256_SHA256, EnumSet.of(KeyAlgorithm.EC_P256_SHA256, KeyAlgorithm.EC_P384_SHA384)),
    /** A TLS client's key pair, as {@link #TLS_SERVER} with a clientAuth certificate. */
    TLS_CLIENT(6, KeyAlgorithm.EC_P256_SHA256, EnumSet.of(KeyAlgorithm.EC_P256_SHA256, KeyAlgorithm.EC_P384_SHA384));

    private final int code;
    private final KeyAlgorithm defaultAlgorithm;
    private final Set<KeyAlgorithm> allowed;

    Purpose(int code, KeyAlgorithm defaultAlgorithm, Set<KeyAlgorithm> allowed) {
        this.code = code;
        this.defaultAlgorithm = defaultAlgorithm;
        this.allowed = allowed;
    }

    public int code() {
        return code;
    }

    public KeyAlgorithm defaultAlgorithm() {
        return defaultAlgorithm;
    }

    public boolean allows(KeyAlgorithm a) {
        return allowed.contains(a);
    }

    public Set<KeyAlgorithm> allowedAlgorithms() {
        return allowed;
    }

    /** TLS_SERVER or TLS_CLIENT: a key pair whose certificate the daemon issues and stores on the token. */
    public boolean tls() {
        return this == TLS_SERVER || this == TLS_CLIENT;
    }

    public static Purpose ofCode(int code) {
        for (Purpose p : values()) {
            if (p.code == code) return p;
        }
        throw new IllegalArgumentException("unknown purpose code " + code);
    }
}
