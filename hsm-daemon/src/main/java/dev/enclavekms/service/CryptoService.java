package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.format.Envelope;
import dev.enclavekms.format.MalformedEnvelopeException;
import dev.enclavekms.registry.KeyRecord;
import dev.enclavekms.registry.KeyVersion;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryStore;
import dev.enclavekms.registry.VersionState;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The data plane: data keys, small secrets, signatures. Every master-key operation is
 * done by the enclave; this class chooses the key version, builds the envelope and
 * its AAD, and enforces purpose, state and required context.
 *
 * <p>Encrypt and sign use the primary version only; decrypt and verify accept any
 * ENABLED version (phased rollout: old versions keep working for existing data).
 */
public final class CryptoService {
    public static final int MAX_SECRET_BYTES = 65536;
    public static final int MAX_DATA_KEY_BYTES = 64;
    public static final int DEFAULT_DATA_KEY_BYTES = 32;
    public static final int MAX_BATCH = 10_000;
    public static final int MAX_MESSAGE_BYTES = 1024 * 1024;

    private final Enclave enclave;
    private final RegistryStore registry;
    private final KeyHealth health;
    private final UsageMeter usage;
    private final Map<ObjectId, PublicKey> publicKeys;
    private final Caller caller;

    /** The service as the daemon itself uses it: every key, no policy (see {@link #as}). */
    public CryptoService(Enclave enclave, RegistryStore registry, KeyHealth health, UsageMeter usage) {
        this(enclave, registry, health, usage, new ConcurrentHashMap<>(), Caller.system());
    }

    private CryptoService(Enclave enclave, RegistryStore registry, KeyHealth health, UsageMeter usage,
                          Map<ObjectId, PublicKey> publicKeys, Caller caller) {
        this.enclave = enclave;
        this.registry = registry;
        this.health = health;
        this.usage = usage;
        this.publicKeys = publicKeys;
        this.caller = caller;
    }

    /**
     * The same service acting for one call's caller: every key it touches is looked up
     * through {@link Caller#resolve}, so it sees only keys the caller's tenant owns and
     * its grants allow. Cheap; made per call.
     */
    public CryptoService as(Caller caller) {
        return new CryptoService(enclave, registry, health, usage, publicKeys, caller);
    }

    /** What a version is being used for: decides which states allow it. */
    private enum Use { ENCRYPT_OR_SIGN, DECRYPT, VERIFY, REENCRYPT_REVOKED }

    /** A data key in the clear and sealed under the key's primary version. */
    public record GeneratedDataKey(String key, int version, SecretBytes plaintext, byte[] ciphertext) { }

    public record Encrypted(String key, int version, byte[] ciphertext) { }

    /** A decryption; closing it wipes the plaintext. */
    public record Decrypted(String key, int version, SecretBytes plaintext) implements AutoCloseable {
        @Override
        public void close() {
            plaintext.close();
        }
    }

    /** One DecryptBatch entry: a plaintext or the error for that entry. */
    public record BatchEntry(Decrypted result, KmsError error) { }

    public record Signed(String key, int version, KeyAlgorithm algorithm, byte[] signature) { }

    public record PublicKeyOf(String key, int version, KeyAlgorithm algorithm, PublicKey publicKey) { }

    public GeneratedDataKey generateDataKey(String keyName, EncryptionContext context, int bytes) throws KmsError {
        return generateDataKeys(keyName, context, bytes, 1).getFirst();
    }

    public List<GeneratedDataKey> generateDataKeys(String keyName, EncryptionContext context, int bytes, int count)
            throws KmsError {
        if (bytes < 1 || bytes > MAX_DATA_KEY_BYTES) {
            throw new KmsError.InvalidParameter("bytes", "bytes: a data key is 1 to " + MAX_DATA_KEY_BYTES + " bytes");
        }
        if (count < 1 || count > MAX_BATCH) {
            throw new KmsError.InvalidParameter("count", "count: 1 to " + MAX_BATCH + " data keys per call");
        }
        KeyRecord key = encryptionKey(keyName, context);
        KeyVersion v = primaryForUse(key);
        usage.acquire(key, v, count);
        byte[] aad = Envelope.aad(key.name(), v.version(), Envelope.SealingScheme.AES_256_GCM, context);
        List<GeneratedDataKey> out = new ArrayList<>(count);
        try {
            // One call to the token's RNG for the whole batch, then one seal per key.
            SecretBytes all = enclave.random(bytes * count);
            byte[] pool = all.reveal();
            all.close();
            try {
                for (int i = 0; i < count; i++) {
                    byte[] clear = Arrays.copyOfRange(pool, i * bytes, (i + 1) * bytes);
                    SecretBytes held = SecretBytes.adopt(clear); // owns and wipes clear from here on
                    boolean kept = false;
                    try {
                        Sealed s = enclave.encrypt(v.objectId(), aad, clear);
                        out.add(new GeneratedDataKey(key.name(), v.version(), held, envelope(key, v, s)));
                        kept = true;
                    } finally {
                        if (!kept) held.close();
                    }
                }
            } finally {
                Arrays.fill(pool, (byte) 0);
            }
        } catch (EnclaveException | RuntimeException e) {
            out.forEach(g -> g.plaintext().close());
            if (e instanceof EnclaveException ee) throw Failures.of(ee, key.name());
            throw (RuntimeException) e;
        }
        return out;
    }

    public Encrypted encrypt(String keyName, byte[] plaintext, EncryptionContext context) throws KmsError {
        if (plaintext.length > MAX_SECRET_BYTES) {
            throw new KmsError.InvalidParameter("plaintext", "plaintext: Encrypt takes at most " + MAX_SECRET_BYTES
                    + " bytes; encrypt larger data locally with a data key");
        }
        return sealUnderPrimary(encryptionKey(keyName, context), plaintext, context);
    }

    private Encrypted sealUnderPrimary(KeyRecord key, byte[] plaintext, EncryptionContext context) throws KmsError {
        KeyVersion v = primaryForUse(key);
        usage.acquire(key, v, 1);
        byte[] aad = Envelope.aad(key.name(), v.version(), Envelope.SealingScheme.AES_256_GCM, context);
        try {
            return new Encrypted(key.name(), v.version(), envelope(key, v, enclave.encrypt(v.objectId(), aad, plaintext)));
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
    }

    private static byte[] envelope(KeyRecord key, KeyVersion v, Sealed s) {
        return new Envelope(key.name(), v.version(), Envelope.SealingScheme.AES_256_GCM, s.iv(), s.ciphertext()).encode();
    }

    public Decrypted decrypt(byte[] ciphertext, EncryptionContext context) throws KmsError {
        return open(ciphertext, context, Use.DECRYPT);
    }

    private Decrypted open(byte[] ciphertext, EncryptionContext context, Use use) throws KmsError {
        Envelope env = envelope(ciphertext);
        Source source = source(env, context, use);
        return unseal(source, env, env.aad(context));
    }

    /** The key version an envelope names, found and checked for one use by this caller. */
    record Source(KeyRecord key, KeyVersion version) { }

    static Envelope envelope(byte[] ciphertext) throws KmsError.DecryptionFailed {
        try {
            return Envelope.parse(ciphertext);
        } catch (MalformedEnvelopeException e) {
            throw new KmsError.DecryptionFailed();
        }
    }

    /** {@link #source(Envelope, EncryptionContext, Use)} for plain decryption (DecryptBatch). */
    Source decryptionSource(Envelope env, EncryptionContext context) throws KmsError {
        return source(env, context, Use.DECRYPT);
    }

    private Source source(Envelope env, EncryptionContext context, Use use) throws KmsError {
        // The envelope's header is read before authentication, so an unknown key or
        // version is reported as such; the authentication failure itself is generic.
        KeyRecord key = requireEncryptionKey(find(env.keyName(), context), context);
        KeyVersion v = key.version(env.keyVersion())
                .orElseThrow(() -> new KmsError.KeyVersionNotFound(key.name(), env.keyVersion()));
        // Re-encryption may use a REVOKED version only through a grant that says so.
        requireUsable(key, v, use == Use.REENCRYPT_REVOKED && !caller.mayUseRevoked(key, context) ? Use.DECRYPT : use);
        return new Source(key, v);
    }

    /** The device step of a decryption: {@code aad} is the envelope's AAD under the call's context. */
    Decrypted unseal(Source source, Envelope env, byte[] aad) throws KmsError {
        try {
            SecretBytes plain = enclave.decrypt(source.version().objectId(), aad, new Sealed(env.iv(), env.ciphertext()));
            return new Decrypted(source.key().name(), source.version().version(), plain);
        } catch (EnclaveException e) {
            throw Failures.of(e, source.key().name());
        }
    }

    /** A ciphertext moved to a key's primary version; {@code rewrapped} false when it already was there. */
    public record ReEncrypted(String key, int version, String sourceKey, int sourceVersion, boolean rewrapped,
                              byte[] ciphertext) { }

    public record ReEncryptEntry(ReEncrypted result, KmsError error) { }

    /**
     * Decrypts and re-encrypts inside the daemon under the primary version of
     * {@code targetKey} (default: the envelope's own key), bound to {@code newContext}
     * (default: the same context). The ciphertext must authenticate even when it is
     * already current, so garbage is never reported as "already current".
     *
     * @param mayUseRevoked a REVOKED source version may be used, to migrate data after a
     *                      compromise, if the caller's grant has {@code reencrypt_revoked}
     *                      (the system caller always has it)
     */
    public ReEncrypted reEncrypt(byte[] ciphertext, EncryptionContext context, String targetKey,
                                 EncryptionContext newContext, boolean mayUseRevoked) throws KmsError {
        String contextParam = newContext == null ? "context" : "new_context";
        EncryptionContext targetContext = newContext == null ? context : newContext;
        KeyRecord target = targetKey == null ? null
                : requireEncryptionKey(find(KeyNames.check("key", targetKey), targetContext), targetContext, contextParam);
        try (Decrypted d = open(ciphertext, context, mayUseRevoked ? Use.REENCRYPT_REVOKED : Use.DECRYPT)) {
            EncryptionContext toContext = newContext == null ? context : newContext;
            KeyRecord to = target != null ? target : requireEncryptionKey(find(d.key(), toContext), toContext, contextParam);
            boolean current = to.name().equals(d.key()) && to.primaryVersion() == d.version()
                    && (newContext == null || newContext.equals(context));
            if (current) {
                return new ReEncrypted(to.name(), d.version(), d.key(), d.version(), false, ciphertext.clone());
            }
            byte[] plain = d.plaintext().reveal();
            try {
                Encrypted e = sealUnderPrimary(to, plain, newContext == null ? context : newContext);
                return new ReEncrypted(e.key(), e.version(), d.key(), d.version(), true, e.ciphertext());
            } finally {
                Arrays.fill(plain, (byte) 0);
            }
        }
    }

    public List<ReEncryptEntry> reEncryptBatch(List<byte[]> ciphertexts, EncryptionContext context, String targetKey,
                                               boolean mayUseRevoked) throws KmsError {
        if (ciphertexts.size() > MAX_BATCH) {
            throw new KmsError.InvalidParameter("ciphertexts", "ciphertexts: at most " + MAX_BATCH + " per call");
        }
        // A bad target fails the call, not each entry.
        KeyRecord target = targetKey == null ? null : encryptionKey(targetKey, context);
        return new BatchReEncryption(this, context, target, mayUseRevoked).run(ciphertexts);
    }

    /** {@link #source(Envelope, EncryptionContext, Use)} for re-encryption ({@link #reEncrypt}'s choice of use). */
    Source reEncryptionSource(Envelope env, EncryptionContext context, boolean mayUseRevoked) throws KmsError {
        return source(env, context, mayUseRevoked ? Use.REENCRYPT_REVOKED : Use.DECRYPT);
    }

    /** The key a re-encryption seals under, as {@link #reEncrypt} finds it (a target, or the envelope's own key). */
    KeyRecord reEncryptionTarget(String keyName, EncryptionContext context) throws KmsError {
        return requireEncryptionKey(find(keyName, context), context, "context");
    }

    /** A key's primary version, checked for encryption, and the AAD of its envelopes under {@code context}. */
    record Sealing(KeyRecord key, KeyVersion version, byte[] aad) { }

    Sealing sealing(KeyRecord key, EncryptionContext context) throws KmsError {
        KeyVersion v = primaryForUse(key);
        return new Sealing(key, v, Envelope.aad(key.name(), v.version(), Envelope.SealingScheme.AES_256_GCM, context));
    }

    /** The device step of {@link #sealUnderPrimary} with its decisions made: counts the use and seals. */
    Encrypted seal(Sealing s, byte[] plaintext) throws KmsError {
        usage.acquire(s.key(), s.version(), 1);
        try {
            return new Encrypted(s.key().name(), s.version().version(),
                    envelope(s.key(), s.version(), enclave.encrypt(s.version().objectId(), s.aad(), plaintext)));
        } catch (EnclaveException e) {
            throw Failures.of(e, s.key().name());
        }
    }

    /** Receives a DecryptBatch's entries chunk by chunk, in order (see {@link #decryptBatch(List, EncryptionContext, BatchSink)}). */
    @FunctionalInterface
    public interface BatchSink {
        /**
         * Takes the next entries. Called on one thread other than the caller's, one chunk at
         * a time, while the device works on later entries. The sink owns the plaintexts it is
         * given and must close every one of them, also when it fails.
         */
        void accept(List<BatchEntry> chunk);
    }

    /** DecryptBatch, all entries at once: the caller closes the plaintexts. */
    public List<BatchEntry> decryptBatch(List<byte[]> ciphertexts, EncryptionContext context) throws KmsError {
        List<BatchEntry> out = new ArrayList<>(ciphertexts.size());
        try {
            decryptBatch(ciphertexts, context, out::addAll);
        } catch (KmsError | RuntimeException e) {
            BatchDecryption.close(out);
            throw e;
        }
        return out;
    }

    /**
     * Decrypts every entry, in order, and hands the entries to {@code sink} chunk by chunk
     * as they are done: each a plaintext or the caller's error for that entry (bad
     * envelope, unknown key or version, unusable version, denied, does not authenticate).
     * A fault of the service (the device is gone) or a bug fails the whole call; the
     * plaintexts not yet handed over are closed, and the sink has closed its own.
     * Returns after the sink has taken the last chunk.
     */
    public void decryptBatch(List<byte[]> ciphertexts, EncryptionContext context, BatchSink sink) throws KmsError {
        if (ciphertexts.size() > MAX_BATCH) {
            throw new KmsError.InvalidParameter("ciphertexts", "ciphertexts: at most " + MAX_BATCH + " per call");
        }
        new BatchDecryption(this, context).run(ciphertexts, sink);
    }

    /**
     * Signs with the primary version. Exactly one of {@code message} and {@code digest};
     * messages are hashed here (the hash is not secret), except for Ed25519, which signs
     * the message itself.
     */
    public Signed sign(String keyName, byte[] message, byte[] digest) throws KmsError {
        if ((message == null) == (digest == null)) {
            throw new KmsError.InvalidParameter("message", "give exactly one of message and digest");
        }
        KeyRecord key = signingKey(keyName);
        KeyVersion v = primaryForUse(key);
        byte[] input = signatureInput(key, message, digest);
        try {
            return new Signed(key.name(), v.version(), key.algorithm(), enclave.sign(v.objectId(), key.algorithm(), input));
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
    }

    public boolean verify(String keyName, int version, byte[] signature, byte[] message, byte[] digest) throws KmsError {
        if ((message == null) == (digest == null)) {
            throw new KmsError.InvalidParameter("message", "give exactly one of message and digest");
        }
        KeyRecord key = signingKey(keyName);
        KeyVersion v = key.version(version).orElseThrow(() -> new KmsError.KeyVersionNotFound(key.name(), version));
        requireUsable(key, v, Use.VERIFY);
        PublicKey pub = publicKey(key, v);
        byte[] input = signatureInput(key, message, digest);
        try {
            return switch (key.algorithm()) {
                case EC_P256_SHA256, EC_P384_SHA384 -> jcaVerify("NONEwithECDSA", pub, input, signature);
                case ED25519 -> jcaVerify("Ed25519", pub, input, signature);
                // JCA's RSASSA-PSS always hashes its input, so the digest is checked by EMSA-PSS directly.
                case RSA_3072_PSS_SHA256 -> PssDigestVerifier.verify((RSAPublicKey) pub, input, signature);
                case AES_256_GCM, HMAC_SHA256 -> throw new KmsError.InvalidKeyUsage(key.name(), "not a signing key");
            };
        } catch (GeneralSecurityException e) {
            throw new KmsError.Internal("signature verification failed to run", e);
        }
    }

    private static boolean jcaVerify(String algorithm, PublicKey pub, byte[] input, byte[] signature)
            throws GeneralSecurityException {
        Signature s = Signature.getInstance(algorithm);
        s.initVerify(pub);
        s.update(input);
        try {
            return s.verify(signature);
        } catch (java.security.SignatureException malformed) {
            return false; // a signature that does not even parse is simply not valid
        }
    }

    public PublicKeyOf publicKey(String keyName, Integer version) throws KmsError {
        KeyRecord key = signingKey(keyName);
        int n = version == null ? key.primaryVersion() : version;
        KeyVersion v = key.version(n).orElseThrow(() -> new KmsError.KeyVersionNotFound(key.name(), n));
        requireUsable(key, v, Use.VERIFY);
        return new PublicKeyOf(key.name(), n, key.algorithm(), publicKey(key, v));
    }

    /** One verifiable version of a signing key. */
    public record VersionKey(int version, VersionState state, boolean primary, PublicKey publicKey) { }

    /** The public keys of every version a verifier should accept or learn: ENABLED and PENDING. */
    public List<VersionKey> publicKeys(String keyName) throws KmsError {
        KeyRecord key = signingKey(keyName);
        List<VersionKey> out = new ArrayList<>();
        for (KeyVersion v : key.versions()) {
            if ((v.state() == VersionState.ENABLED || v.state() == VersionState.PENDING) && health.refusal(v.objectId()).isEmpty()) {
                out.add(new VersionKey(v.version(), v.state(), v.version() == key.primaryVersion(), publicKey(key, v)));
            }
        }
        return out;
    }

    public KeyRecord signingKeyRecord(String keyName) throws KmsError {
        return signingKey(keyName);
    }

    private PublicKey publicKey(KeyRecord key, KeyVersion v) throws KmsError {
        PublicKey cached = publicKeys.get(v.objectId());
        if (cached != null) {
            return cached;
        }
        refuseIfUnhealthy(key, v);
        try {
            PublicKey p = enclave.publicKey(v.objectId(), key.algorithm());
            publicKeys.put(v.objectId(), p);
            return p;
        } catch (EnclaveException e) {
            throw Failures.of(e, key.name());
        }
    }

    private byte[] signatureInput(KeyRecord key, byte[] message, byte[] digest) throws KmsError {
        KeyAlgorithm alg = key.algorithm();
        if (alg == KeyAlgorithm.ED25519) {
            if (digest != null) {
                throw new KmsError.InvalidParameter("digest", "digest: Ed25519 signs the message itself; send message");
            }
            if (message.length > MAX_MESSAGE_BYTES) {
                throw new KmsError.InvalidParameter("message", "message: at most " + MAX_MESSAGE_BYTES
                        + " bytes for Ed25519");
            }
            if (message.length == 0) {
                // PKCS#11 through the JNI wrapper cannot pass an empty message to C_Sign.
                throw new KmsError.InvalidParameter("message", "message: Ed25519 cannot sign an empty message here");
            }
            return message;
        }
        if (digest != null) {
            if (digest.length != alg.digestLength()) {
                throw new KmsError.InvalidParameter("digest", "digest: " + alg + " needs a " + alg.digestName()
                        + " digest of " + alg.digestLength() + " bytes, got " + digest.length);
            }
            return digest;
        }
        try {
            return MessageDigest.getInstance(alg.digestName()).digest(message);
        } catch (GeneralSecurityException e) {
            throw new KmsError.Internal("digest " + alg.digestName() + " unavailable", e);
        }
    }

    /** Every key this service touches is found here, as the caller may see it. */
    private KeyRecord find(String name, EncryptionContext context) throws KmsError {
        if (KeyNames.reserved(name)) {
            // An envelope naming one of the daemon's own keys: for callers, no such key exists.
            throw new KmsError.KeyNotFound(name);
        }
        return caller.resolve(registry, name, context);
    }

    private KeyRecord encryptionKey(String name, EncryptionContext context) throws KmsError {
        KeyNames.check("key", name);
        return requireEncryptionKey(find(name, context), context);
    }

    private static KeyRecord requireEncryptionKey(KeyRecord key, EncryptionContext context) throws KmsError {
        return requireEncryptionKey(key, context, "context");
    }

    private static KeyRecord requireEncryptionKey(KeyRecord key, EncryptionContext context, String contextParam)
            throws KmsError {
        if (key.purpose() != Purpose.ENCRYPT) {
            throw new KmsError.InvalidKeyUsage(key.name(), "key '" + key.name() + "' is a " + key.purpose()
                    + " key; encryption needs an ENCRYPT key");
        }
        checkRequiredContext(key, context, contextParam);
        return key;
    }

    private KeyRecord signingKey(String name) throws KmsError {
        KeyNames.check("key", name);
        KeyRecord key = find(name, null);
        if (key.purpose() != Purpose.SIGN) {
            throw new KmsError.InvalidKeyUsage(name, "key '" + name + "' is a " + key.purpose()
                    + " key; signing needs a SIGN key");
        }
        return key;
    }

    private static void checkRequiredContext(KeyRecord key, EncryptionContext context, String param) throws KmsError {
        for (String required : key.requiredContext()) {
            if (!context.containsKey(required)) {
                throw new KmsError.InvalidParameter(param, param + ": key '" + key.name()
                        + "' requires the context entry '" + required + "'");
            }
        }
    }

    private KeyVersion primaryForUse(KeyRecord key) throws KmsError {
        KeyVersion v = key.primary();
        requireUsable(key, v, Use.ENCRYPT_OR_SIGN);
        return v;
    }

    /**
     * The one place that decides which version states allow which use. ENABLED serves
     * everything (only the primary encrypts and signs, which callers ensure); PENDING
     * only publishes its public key; REVOKED serves only re-encryption by a caller with
     * the grant; DISABLED and DESTROY_SCHEDULED serve nothing; DESTROYED has its own
     * error, because what it protected is gone for good.
     */
    private void requireUsable(KeyRecord key, KeyVersion v, Use use) throws KmsError {
        String what = "version " + v.version() + " of '" + key.name() + "'";
        boolean ok = switch (v.state()) {
            case ENABLED -> true;
            case PENDING -> use == Use.VERIFY;
            case REVOKED -> use == Use.REENCRYPT_REVOKED;
            case DISABLED, DESTROY_SCHEDULED -> false;
            case DESTROYED -> throw new KmsError.KeyVersionDestroyed(key.name(), v.version(), v.destroyAt());
        };
        if (!ok) {
            String why = switch (v.state()) {
                case PENDING -> what + " is PENDING: its public key is published, but it is not used until promoted";
                case REVOKED -> what + " is REVOKED: only re-encryption by a caller with the re-encryption grant may use it";
                case DESTROY_SCHEDULED -> what + " is scheduled for destruction at " + v.destroyAt()
                        + "; CancelKeyVersionDestruction keeps it";
                default -> what + " is " + v.state();
            };
            throw new KmsError.KeyVersionUnusable(key.name(), v.version(), v.state().name(), why);
        }
        refuseIfUnhealthy(key, v);
    }

    private void refuseIfUnhealthy(KeyRecord key, KeyVersion v) throws KmsError {
        var refusal = health.refusal(v.objectId());
        if (refusal.isPresent()) {
            throw new KmsError.KeyVersionUnusable(key.name(), v.version(), v.state().name(),
                    "version " + v.version() + " of '" + key.name() + "' is refused: " + refusal.get());
        }
    }
}
