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
    AUDIT(4, KeyAlgorithm.HMAC_SHA256, EnumSet.of(KeyAlgorithm.HMAC_SHA256, KeyAlgorithm.EC_P256_SHA256));

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

    public static Purpose ofCode(int code) {
        for (Purpose p : values()) {
            if (p.code == code) return p;
        }
        throw new IllegalArgumentException("unknown purpose code " + code);
    }
}
