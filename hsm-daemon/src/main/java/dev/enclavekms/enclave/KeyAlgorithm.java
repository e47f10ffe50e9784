package dev.enclavekms.enclave;

/**
 * Algorithms a key version can have. The codes are stored in the registry and must
 * never change.
 */
public enum KeyAlgorithm {
    /** AES-256 master key: AES-256-GCM with a 96-bit random IV and a 128-bit tag. */
    AES_256_GCM(1, Kind.SECRET, 0),
    /** ECDSA on NIST P-256 with SHA-256. */
    EC_P256_SHA256(2, Kind.KEY_PAIR, 32),
    /** ECDSA on NIST P-384 with SHA-384. */
    EC_P384_SHA384(3, Kind.KEY_PAIR, 48),
    /** Pure Ed25519 (RFC 8032): signs the message itself, never a digest. */
    ED25519(4, Kind.KEY_PAIR, 0),
    /** RSA-3072 with PSS, SHA-256, MGF1-SHA-256 and a 32-byte salt. */
    RSA_3072_PSS_SHA256(5, Kind.KEY_PAIR, 32),
    /**
     * A 256-bit generic secret for HMAC-SHA256 (RFC 2104), usable only through
     * {@link Enclave#hmac}: it neither encrypts nor signs in the asymmetric sense. The daemon
     * uses one to make sensitive audit strings searchable but unreadable.
     */
    HMAC_SHA256(6, Kind.SECRET, 0);

    public enum Kind { SECRET, KEY_PAIR }

    private final int code;
    private final Kind kind;
    private final int digestLength;

    KeyAlgorithm(int code, Kind kind, int digestLength) {
        this.code = code;
        this.kind = kind;
        this.digestLength = digestLength;
    }

    /** Stable numeric code (registry). */
    public int code() {
        return code;
    }

    public Kind kind() {
        return kind;
    }

    /** Length of the digest this algorithm signs; 0 when it signs messages only (Ed25519) or does not sign. */
    public int digestLength() {
        return digestLength;
    }

    /** JCA name of the digest to hash a message with before signing, or null for Ed25519. */
    public String digestName() {
        return switch (this) {
            case EC_P256_SHA256, RSA_3072_PSS_SHA256 -> "SHA-256";
            case EC_P384_SHA384 -> "SHA-384";
            case ED25519, AES_256_GCM, HMAC_SHA256 -> null;
        };
    }

    public boolean signs() {
        return kind == Kind.KEY_PAIR;
    }

    /** True for the algorithm whose keys compute MACs ({@link Enclave#hmac}) and nothing else. */
    public boolean macs() {
        return this == HMAC_SHA256;
    }

    public static KeyAlgorithm ofCode(int code) {
        for (KeyAlgorithm a : values()) {
            if (a.code == code) {
                return a;
            }
        }
        throw new IllegalArgumentException("unknown key algorithm code " + code);
    }
}
