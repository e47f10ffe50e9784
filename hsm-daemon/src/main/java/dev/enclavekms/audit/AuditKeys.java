package dev.enclavekms.audit;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;

import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The audit log's two keys, both inside the enclave: an HMAC-SHA256 key
 * ({@value #HMAC_KEY}) for sensitive strings and an ECDSA P-256 key ({@value #SIGNING_KEY})
 * for checkpoints. The daemon creates them on first start as internal keys (reserved names
 * that callers can neither create, use nor change); this class only uses them.
 *
 * <p>HMACs of recent values are cached (a context value such as a model name recurs on most
 * calls, and each HMAC is a device call). The cache holds the plain values, which the
 * daemon's memory holds anyway while it serves the calls that carry them.
 */
public final class AuditKeys implements CheckpointSigner, StringHasher {
    public static final String HMAC_KEY = "_audit/hmac";
    public static final String SIGNING_KEY = "_audit/signing";
    public static final KeyAlgorithm HMAC_ALGORITHM = KeyAlgorithm.HMAC_SHA256;
    public static final KeyAlgorithm SIGNING_ALGORITHM = KeyAlgorithm.EC_P256_SHA256;
    private static final int CACHE_ENTRIES = 4096;

    private final Enclave enclave;
    private final ObjectId hmacKey;
    private final ObjectId signingKey;
    private final int signingVersion;
    private final PublicKey publicKey;
    private final Map<String, String> cache = new LinkedHashMap<>(256, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
            return size() > CACHE_ENTRIES;
        }
    };

    /** Reads the signing key's public half from the enclave. */
    public AuditKeys(Enclave enclave, ObjectId hmacKey, ObjectId signingKey, int signingVersion) throws EnclaveException {
        this.enclave = Objects.requireNonNull(enclave, "enclave");
        this.hmacKey = Objects.requireNonNull(hmacKey, "hmacKey");
        this.signingKey = Objects.requireNonNull(signingKey, "signingKey");
        this.signingVersion = signingVersion;
        this.publicKey = enclave.publicKey(signingKey, SIGNING_ALGORITHM);
    }

    @Override
    public String hmac(String value) throws AuditUnavailableException {
        synchronized (cache) {
            String cached = cache.get(value);
            if (cached != null) return cached;
        }
        String mac;
        try {
            mac = PREFIX + HexFormat.of().formatHex(enclave.hmac(hmacKey, value.getBytes(StandardCharsets.UTF_8)));
        } catch (EnclaveException e) {
            throw new AuditUnavailableException("cannot HMAC a value for the audit record: " + e.getMessage());
        }
        synchronized (cache) {
            cache.put(value, mac);
        }
        return mac;
    }

    @Override
    public Map<String, Object> keyFields() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(AuditRecords.CHECKPOINT_KEY, SIGNING_KEY);
        m.put(AuditRecords.CHECKPOINT_KEY_VERSION, (long) signingVersion);
        m.put(AuditRecords.CHECKPOINT_KEY_ID, keyId(publicKey));
        m.put(AuditRecords.CHECKPOINT_ALGORITHM, SIGNING_ALGORITHM.name());
        return m;
    }

    @Override
    public byte[] sign(byte[] message) throws EnclaveException {
        return enclave.sign(signingKey, SIGNING_ALGORITHM, AuditRecords.sha256(message));
    }

    @Override
    public PublicKey publicKey() {
        return publicKey;
    }

    public int signingVersion() {
        return signingVersion;
    }

    /** {@code sha256:<hex>} of the public key's SubjectPublicKeyInfo: names the key in checkpoints. */
    public static String keyId(PublicKey key) {
        return "sha256:" + HexFormat.of().formatHex(AuditRecords.sha256(key.getEncoded()));
    }
}
