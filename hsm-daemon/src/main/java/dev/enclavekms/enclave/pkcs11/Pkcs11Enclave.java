package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.KeyProtection;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.PKCS11KeyPair;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Token;
import org.xipki.pkcs11.wrapper.TokenException;
import org.xipki.pkcs11.wrapper.TokenInfo;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_ALWAYS_SENSITIVE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_COPYABLE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_DECRYPT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_DERIVE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_EC_PARAMS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_EC_POINT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_ENCRYPT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_EXTRACTABLE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_ID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_KEY_TYPE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_LABEL;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_MODIFIABLE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_MODULUS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_NEVER_EXTRACTABLE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_PRIVATE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_PUBLIC_EXPONENT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_SENSITIVE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_SIGN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_TOKEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_UNWRAP;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_VALUE_LEN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_WRAP;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_EC;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_EC_EDWARDS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_RSA;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_CERTIFICATE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_PRIVATE_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_PUBLIC_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_AEAD_DECRYPT_FAILED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_CURVE_NOT_SUPPORTED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_DEVICE_ERROR;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_DEVICE_REMOVED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_DOMAIN_PARAMS_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_ENCRYPTED_DATA_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_ENCRYPTED_DATA_LEN_RANGE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_GENERAL_ERROR;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_FUNCTION_NOT_PERMITTED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_HANDLE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_SIZE_RANGE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_TYPE_INCONSISTENT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_MECHANISM_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_MECHANISM_PARAM_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_OBJECT_HANDLE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_OPERATION_ACTIVE;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_EXPIRED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_INCORRECT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_PIN_LOCKED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_SESSION_CLOSED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_SESSION_HANDLE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_TOKEN_NOT_PRESENT;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_NOT_LOGGED_IN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_PIN_NOT_INITIALIZED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKS_RO_USER_FUNCTIONS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKS_RW_USER_FUNCTIONS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_USER;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CK_UNAVAILABLE_INFORMATION_2;

/**
 * The {@link Enclave} on a PKCS#11 token, through the IAIK wrapper (org.xipki:ipkcs11wrapper);
 * the hot calls (encrypt, decrypt, sign, HMAC) through FFM by default ({@link Pkcs11Binding}, {@link HotCalls}).
 *
 * <h2>Sessions and login</h2>
 * A pool of at most {@link Pkcs11Config#sessionPoolSize()} read/write sessions, opened on
 * demand and reused. PKCS#11 login belongs to the application and the token, not to a
 * session: the enclave logs in once, on the first session, and every session opened later
 * is logged in already. CKR_USER_ALREADY_LOGGED_IN (another enclave or the provisioner of
 * this process is logged in on the same token) is therefore success. The token logs the
 * application out when its last session on the token closes, which is how {@link #close()}
 * logs out: an explicit C_Logout would also log out every other user of the token in this
 * process.
 *
 * <h2>Recovery</h2>
 * Each operation runs on one borrowed session. When the device reports that the sessions
 * or the login are gone (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED,
 * CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_ERROR) the enclave reopens —
 * finds the token again (its slot may have changed), opens a session, logs in, forgets the
 * cached object handles — and retries the operation once. A stale object handle
 * (CKR_OBJECT_HANDLE_INVALID, e.g. another process destroyed and recreated the key) drops
 * the handle cache and retries once. A second failure is {@link EnclaveException.Unavailable}.
 * A ciphertext that does not authenticate is never retried.
 *
 * <p>Sessions of a retired generation whose handles the device declared invalid are
 * dropped, not closed: a module may reuse a session handle number, and closing a stale
 * handle could close somebody else's new session.
 *
 * <h2>Handles</h2>
 * Object handles are found by CKA_ID and object class and cached per {@link ObjectId}
 * together with the key's algorithm (read from the token once), so that an operation
 * usually costs one PKCS#11 call, and a key is never used with an algorithm it was not made
 * for.
 *
 * <h2>What never leaves</h2>
 * No method returns key material; templates make every key sensitive and non-extractable
 * ({@link KeyTemplates}). Exception messages carry operation names, object ids (not secret)
 * and CKR_ names — never PINs, plaintexts or key bytes.
 */
public final class Pkcs11Enclave implements Enclave {

    /** GCM IV length: 96 bits, the length GCM is specified for. */
    static final int IV_BYTES = 12;
    static final int TAG_BITS = 128;
    static final int TAG_BYTES = TAG_BITS / 8;
    /** random() serves keys and nonces, not bulk data. */
    static final int MAX_RANDOM_BYTES = 1 << 20;
    static final int MAX_LABEL_BYTES = 255;
    /** How long an operation waits for a free session before the enclave counts as unavailable. */
    static final long SESSION_WAIT_SECONDS = 30;

    private static final System.Logger LOG = System.getLogger(Pkcs11Enclave.class.getName());

    /** The device closed our sessions: their handles are invalid now. */
    private static final Set<Long> SESSIONS_GONE = Set.of(CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
            CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT);
    /** The sessions exist but cannot serve: logged out behind our back, or the device hiccuped. */
    private static final Set<Long> SESSIONS_UNUSABLE = Set.of(CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_ERROR);
    private static final Set<Long> HANDLE_STALE = Set.of(CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID);
    /**
     * What a GCM tag mismatch looks like from C_Decrypt, once C_DecryptInit has accepted key
     * and parameters: CKR_ENCRYPTED_DATA_INVALID or _LEN_RANGE (PKCS#11 2.40),
     * CKR_AEAD_DECRYPT_FAILED (3.0) — and CKR_GENERAL_ERROR, which is what SoftHSM 2.6.1
     * returns for a bad tag (measured). Should a module ever report a genuine failure of
     * C_Decrypt as CKR_GENERAL_ERROR, that one call is misreported as a bad ciphertext: it is
     * not retried and reveals nothing, and the next call meets the failure again elsewhere.
     */
    private static final Set<Long> TAG_FAILED = Set.of(CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE,
            CKR_AEAD_DECRYPT_FAILED, CKR_GENERAL_ERROR);
    private static final Set<Long> NOT_SUPPORTED = Set.of(CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID,
            CKR_CURVE_NOT_SUPPORTED, CKR_DOMAIN_PARAMS_INVALID, CKR_KEY_SIZE_RANGE);
    private static final Set<Long> WRONG_KEY = Set.of(CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED);

    private final Pkcs11Config config;
    private final Pkcs11Library library;
    /** Encrypt, decrypt, sign: through FFM or the wrapper (everything else: the wrapper). */
    private final HotCalls hot;
    /** Kept for logging in again after the device dropped the login; wiped by close(). */
    private final char[] pin;
    private final Semaphore permits;
    /**
     * The generation of the session the current thread works with (set by withSession),
     * so that handles are cached per generation: a handle found through one generation's
     * sessions is never used with another's, even on a module that reuses handle numbers.
     */
    private static final ThreadLocal<Generation> WORKING_GENERATION = new ThreadLocal<>();
    private final Object reopenLock = new Object();
    private final AtomicInteger reopens = new AtomicInteger();
    private volatile Generation current;
    private volatile boolean closed;

    private Pkcs11Enclave(Pkcs11Config config, Pkcs11Library library, char[] pin, HotCalls hot) {
        this.config = config;
        this.library = library;
        this.hot = hot;
        this.pin = pin;
        this.permits = new Semaphore(config.sessionPoolSize(), true);
    }

    /**
     * Loads the library (once per process), finds the token, reads the user PIN from its
     * file and logs in.
     *
     * @throws EnclaveException.Unavailable when the PIN file is refused, the library or token
     *                                      is missing, or the login fails; the message says which
     */
    public static Pkcs11Enclave open(Pkcs11Config config) throws EnclaveException {
        Objects.requireNonNull(config, "config");
        char[] pin;
        try {
            pin = Pkcs11Pins.read(config.userPinFile());
        } catch (IOException e) {
            throw new EnclaveException.Unavailable("cannot use the user PIN file: " + e.getMessage(), e);
        }
        Pkcs11Library library;
        try {
            library = Pkcs11Library.load(config.library());
        } catch (IOException e) {
            Arrays.fill(pin, '\0');
            throw new EnclaveException.Unavailable("cannot load PKCS#11 library " + config.library() + ": "
                    + e.getMessage(), e);
        } catch (PKCS11Exception e) {
            Arrays.fill(pin, '\0');
            throw new EnclaveException.Unavailable("C_Initialize of " + config.library() + " failed: "
                    + e.getErrorName(), e);
        }
        Pkcs11Enclave enclave = new Pkcs11Enclave(config, library, pin, hotCalls(config, library));
        try {
            enclave.current = enclave.connect(1);
        } catch (EnclaveException e) {
            Arrays.fill(pin, '\0');
            throw e;
        }
        return enclave;
    }

    /** The configured binding, or the wrapper where FFM cannot be set up (logged by the library, once). */
    private static HotCalls hotCalls(Pkcs11Config config, Pkcs11Library library) {
        if (config.binding() == Pkcs11Binding.FFM) {
            CryptokiFunctions fn = library.ffm();
            if (fn != null) {
                return new FfmHotCalls(fn);
            }
        }
        return WrapperHotCalls.INSTANCE;
    }

    /** How the hot calls (encrypt, decrypt, sign, HMAC) reach the module. */
    public Pkcs11Binding binding() {
        return hot.binding();
    }

    /** For tests. */
    HotCalls hotCalls() {
        return hot;
    }

    // ---------------------------------------------------------------- operations

    @Override
    public EnclaveInfo info() throws EnclaveException {
        return withSession("C_GetTokenInfo", s -> {
            TokenInfo t = s.getToken().getTokenInfo();
            long free = t.getFreePrivateMemory();
            // SoftHSM says CK_UNAVAILABLE_INFORMATION (~0); 32-bit modules give 0xFFFFFFFF.
            if (free < 0 || free == CK_UNAVAILABLE_INFORMATION_2) {
                free = -1;
            }
            return new EnclaveInfo("pkcs11", t.getLabel().strip(), t.getManufacturerID().strip(),
                    t.getModel().strip(), t.getSerialNumber().strip(), t.getFirmwareVersion().toString(), free);
        });
    }

    @Override
    public PublicKey generate(ObjectId id, KeyAlgorithm algorithm, String label) throws EnclaveException {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(label, "label");
        if (label.getBytes(StandardCharsets.UTF_8).length > MAX_LABEL_BYTES) {
            throw new EnclaveException.BadInput("label longer than " + MAX_LABEL_BYTES + " bytes");
        }
        // Set once an attempt has asked the device to generate: from then on, objects with
        // this id may be that attempt's, not somebody else's.
        AtomicBoolean generating = new AtomicBoolean();
        return withSession("generate " + algorithm, s -> {
            requireLogin(s); // a logged-out session sees no private objects: the check below would lie
            List<Long> existing = keyObjects(s, id);
            if (!existing.isEmpty()) {
                if (!generating.get()) {
                    throw new EnclaveException.BadInput("a key object with id " + id.hex() + " already exists");
                }
                // The first attempt found no object with this id, then lost its session while the
                // device was generating: what is there now is that half-made attempt, never
                // returned to anyone. Remove it and generate afresh rather than trust it.
                for (long handle : existing) {
                    destroyIfPresent(s, handle);
                }
                forget(id);
            }
            generating.set(true);
            try {
                if (algorithm.kind() == KeyAlgorithm.Kind.SECRET) {
                    long key = s.generateKey(new Mechanism(KeyTemplates.generationMechanism(algorithm)),
                            KeyTemplates.secretKey(algorithm, id, label));
                    handles().put(new HandleKey(id, CKO_SECRET_KEY), new KeyHandle(key, algorithm));
                    return null;
                }
                PKCS11KeyPair pair = s.generateKeyPair(new Mechanism(KeyTemplates.generationMechanism(algorithm)),
                        KeyTemplates.keyPair(algorithm, id, label));
                PublicKey publicKey;
                try {
                    publicKey = readPublicKey(s, pair.getPublicKey(), algorithm);
                } catch (PKCS11Exception | EnclaveException | RuntimeException e) {
                    // A pair whose public half cannot be read is useless: leave no orphan behind.
                    destroyIfPresent(s, pair.getPrivateKey());
                    destroyIfPresent(s, pair.getPublicKey());
                    throw e;
                }
                handles().put(new HandleKey(id, CKO_PRIVATE_KEY), new KeyHandle(pair.getPrivateKey(), algorithm));
                handles().put(new HandleKey(id, CKO_PUBLIC_KEY), new KeyHandle(pair.getPublicKey(), algorithm));
                return publicKey;
            } catch (PKCS11Exception e) {
                if (NOT_SUPPORTED.contains(e.getErrorCode())) {
                    throw new EnclaveException.Unsupported("the token cannot generate " + algorithm + " keys ("
                            + e.getErrorName() + ")");
                }
                throw e;
            }
        });
    }

    @Override
    public Sealed encrypt(ObjectId key, byte[] aad, byte[] plaintext) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(plaintext, "plaintext");
        byte[] ad = aad == null ? new byte[0] : aad.clone();
        return withSession("encrypt", s -> {
            KeyHandle k = secretKey(s, key);
            // The IV comes from the token's generator, as the SPI promises; a fresh one per call
            // (also per retry), so an IV is never used twice with one key.
            byte[] iv = s.generateRandom(IV_BYTES);
            byte[] ct;
            try {
                ct = hot.encrypt(s, k.handle(), iv, ad, plaintext);
            } catch (PKCS11Exception e) {
                throw unlessWrongKey(e, key);
            }
            return new Sealed(iv, ct);
        });
    }

    @Override
    public SecretBytes decrypt(ObjectId key, byte[] aad, Sealed sealed) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(sealed, "sealed");
        byte[] ad = aad == null ? new byte[0] : aad.clone();
        byte[] iv = sealed.iv();
        byte[] ct = sealed.ciphertext();
        if (iv.length != IV_BYTES || ct.length < TAG_BYTES) {
            // Not something encrypt() produced: the same answer as a bad tag, revealing nothing more.
            throw new EnclaveException.AuthenticationFailed();
        }
        return withSession("decrypt", s -> {
            KeyHandle k = secretKey(s, key);
            byte[] plaintext;
            try {
                plaintext = hot.decrypt(s, k.handle(), iv, ad, ct);
            } catch (HotCalls.OperationFailed e) {
                // C_DecryptInit accepted key and parameters; C_Decrypt failed.
                if (TAG_FAILED.contains(e.getErrorCode())) {
                    // The caller's data is bad, not the device: never retried, never detailed.
                    throw new EnclaveException.AuthenticationFailed();
                }
                throw e;
            } catch (PKCS11Exception e) {
                throw unlessWrongKey(e, key);
            }
            return SecretBytes.adopt(plaintext);
        });
    }

    @Override
    public byte[] sign(ObjectId key, KeyAlgorithm algorithm, byte[] input) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        Objects.requireNonNull(input, "input");
        if (!algorithm.signs()) {
            throw new EnclaveException.BadInput(algorithm + " does not sign");
        }
        if (algorithm.digestLength() > 0 && input.length != algorithm.digestLength()) {
            throw new EnclaveException.BadInput(algorithm + " signs a " + algorithm.digestLength()
                    + "-byte " + algorithm.digestName() + " digest, got " + input.length + " bytes");
        }
        if (algorithm == KeyAlgorithm.ED25519 && input.length == 0) {
            // The JNI layer passes an empty message as a NULL pointer; SoftHSM answers
            // CKR_ARGUMENTS_BAD and EdDSA has no multi-part form to work around it.
            throw new EnclaveException.Unsupported("Ed25519 over an empty message cannot be passed to this token");
        }
        byte[] data = input.clone();
        return withSession("sign", s -> {
            KeyHandle k = key(s, key, CKO_PRIVATE_KEY);
            requireAlgorithm(key, k, algorithm);
            try {
                return switch (algorithm) {
                    // CKM_ECDSA signs the digest as given and returns r‖s; JCA and OpenSSL want DER.
                    case EC_P256_SHA256, EC_P384_SHA384 -> ecdsaDer(
                            hot.sign(s, HotCalls.SignMechanism.ECDSA, k.handle(), data), algorithm);
                    // Pure Ed25519: no parameters, the whole message.
                    case ED25519 -> hot.sign(s, HotCalls.SignMechanism.EDDSA, k.handle(), data);
                    case RSA_3072_PSS_SHA256 -> hot.sign(s, HotCalls.SignMechanism.RSA_PSS_SHA256, k.handle(), data);
                    case AES_256_GCM, HMAC_SHA256 -> throw new IllegalStateException("unreachable");
                };
            } catch (PKCS11Exception e) {
                if (NOT_SUPPORTED.contains(e.getErrorCode())) {
                    throw new EnclaveException.Unsupported("the token cannot sign with " + algorithm + " ("
                            + e.getErrorName() + ")");
                }
                throw unlessWrongKey(e, key);
            }
        });
    }

    private static byte[] ecdsaDer(byte[] raw, KeyAlgorithm algorithm) throws EnclaveException {
        try {
            return Der.ecdsaSignature(raw, KeyTemplates.fieldLength(algorithm));
        } catch (IllegalArgumentException e) {
            throw new EnclaveException.Unavailable("the token returned a malformed " + algorithm + " signature: "
                    + e.getMessage(), e);
        }
    }

    @Override
    public byte[] hmac(ObjectId key, byte[] data) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(data, "data");
        if (data.length > MAX_HMAC_INPUT_BYTES) {
            throw new EnclaveException.BadInput("HMAC input longer than " + MAX_HMAC_INPUT_BYTES + " bytes");
        }
        byte[] input = data.clone();
        return withSession("hmac", s -> {
            KeyHandle k;
            try {
                k = key(s, key, CKO_SECRET_KEY);
            } catch (EnclaveException.ObjectNotFound e) {
                // A key pair has no secret-key object: it exists, it just computes no MACs.
                key(s, key, CKO_PRIVATE_KEY);
                throw new EnclaveException.BadInput("key " + key.hex() + " is a key pair, not " + KeyAlgorithm.HMAC_SHA256);
            }
            requireAlgorithm(key, k, KeyAlgorithm.HMAC_SHA256);
            try {
                return hot.sign(s, HotCalls.SignMechanism.HMAC_SHA256, k.handle(), input);
            } catch (PKCS11Exception e) {
                if (NOT_SUPPORTED.contains(e.getErrorCode())) {
                    throw new EnclaveException.Unsupported("the token cannot compute HMAC-SHA256 ("
                            + e.getErrorName() + ")");
                }
                throw unlessWrongKey(e, key);
            }
        });
    }

    @Override
    public PublicKey publicKey(ObjectId key, KeyAlgorithm algorithm) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(algorithm, "algorithm");
        if (!algorithm.signs()) {
            throw new EnclaveException.BadInput(algorithm + " keys have no public key");
        }
        return withSession("publicKey", s -> {
            KeyHandle k = key(s, key, CKO_PUBLIC_KEY);
            requireAlgorithm(key, k, algorithm);
            return readPublicKey(s, k.handle(), algorithm);
        });
    }

    @Override
    public SecretBytes random(int length) throws EnclaveException {
        if (length < 0 || length > MAX_RANDOM_BYTES) {
            throw new EnclaveException.BadInput("random length must be 0.." + MAX_RANDOM_BYTES);
        }
        if (length == 0) {
            return SecretBytes.adopt(new byte[0]);
        }
        return withSession("C_GenerateRandom", s -> SecretBytes.adopt(s.generateRandom(length)));
    }

    @Override
    public void destroy(ObjectId key) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        withSession("destroy", s -> {
            requireLogin(s);
            // Forget first: no other thread should pick up a handle that is about to die.
            forget(key);
            for (long handle : keyObjects(s, key)) {
                destroyIfPresent(s, handle);
            }
            for (long handle : s.findAllObjectsSingle(new AttributeVector().class_(CKO_CERTIFICATE).id(key.bytes()))) {
                destroyIfPresent(s, handle);
            }
            forget(key);
            return null;
        });
    }

    /**
     * Replaces the certificate objects with the key's id by one for {@code certificateDer},
     * which must certify the key pair's own public key.
     * The old one goes first: SunPKCS11's KeyStore refuses an entry whose CKA_ID two
     * certificates share, so a reader loading in between misses the entry for an instant
     * rather than failing on two.
     */
    @Override
    public void putCertificate(ObjectId key, String label, byte[] certificateDer) throws EnclaveException {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(label, "label");
        java.security.cert.X509Certificate cert;
        try {
            cert = (java.security.cert.X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(new java.io.ByteArrayInputStream(certificateDer));
        } catch (java.security.cert.CertificateException e) {
            throw new EnclaveException.BadInput("not an X.509 certificate: " + e.getMessage());
        }
        withSession("put certificate", s -> {
            requireLogin(s);
            key(s, key, CKO_PRIVATE_KEY); // ObjectNotFound unless the key pair is there
            KeyHandle pub = key(s, key, CKO_PUBLIC_KEY);
            if (pub.algorithm() == null || !Arrays.equals(readPublicKey(s, pub.handle(), pub.algorithm()).getEncoded(),
                    cert.getPublicKey().getEncoded())) {
                // A certificate under the wrong id would pair a private key with another key's name.
                throw new EnclaveException.BadInput("the certificate is not for key pair " + key.hex());
            }
            for (long handle : s.findAllObjectsSingle(new AttributeVector().class_(CKO_CERTIFICATE).id(key.bytes()))) {
                destroyIfPresent(s, handle);
            }
            s.createObject(AttributeVector.newX509Certificate()
                    .token(true)
                    // Public, as certificates are: a TLS stack may list it before it logs in.
                    .private_(false)
                    .id(key.bytes())
                    .label(label)
                    .subject(cert.getSubjectX500Principal().getEncoded())
                    .issuer(cert.getIssuerX500Principal().getEncoded())
                    .serialNumber(Der.integer(cert.getSerialNumber()))
                    .value(certificateDer.clone()));
            return null;
        });
    }

    /**
     * Every private-key and secret-key object that has a CKA_ID, whoever created it — the
     * reconciliation needs to see foreign and weak objects too.
     *
     * <p>Objects of a type the enclave never generates (other curves, RSA sizes, non-AES
     * secret keys) are reported with algorithm {@code null} rather than skipped: an object
     * that carries a key version's id but the wrong algorithm is exactly what reconciliation
     * must hear about. Callers check for null before asking
     * {@link KeyProtection#weaknesses(KeyAlgorithm)}. Objects with an empty or over-long
     * (&gt; 64 bytes) CKA_ID cannot be key versions and are left out.
     *
     * <p>Attributes a token does not report read conservatively: a missing CKA_EXTRACTABLE,
     * CKA_MODIFIABLE or CKA_COPYABLE counts as true and a missing CKA_SENSITIVE,
     * CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_TOKEN or CKA_PRIVATE as false, so
     * that silence shows as a weakness; a missing usage flag (CKA_ENCRYPT on a private key,
     * say) counts as false, because a key cannot perform a function it has no flag for.
     */
    @Override
    public List<EnclaveObject> list() throws EnclaveException {
        return withSession("list", s -> {
            // Logged out, the token would list no private objects, and reconciliation would
            // conclude that every key is gone.
            requireLogin(s);
            List<EnclaveObject> out = new ArrayList<>();
            for (long objectClass : new long[] {CKO_PRIVATE_KEY, CKO_SECRET_KEY}) {
                for (long handle : s.findAllObjectsSingle(new AttributeVector().class_(objectClass))) {
                    try {
                        EnclaveObject o = describe(s, handle, objectClass);
                        if (o != null) {
                            out.add(o);
                        }
                    } catch (PKCS11Exception e) {
                        if (!HANDLE_STALE.contains(e.getErrorCode())) {
                            throw e;
                        }
                        // Destroyed between the search and the read: it is not on the token any more.
                    }
                }
            }
            return List.copyOf(out);
        });
    }

    @Override
    public void close() {
        synchronized (reopenLock) {
            if (closed) {
                return;
            }
            closed = true;
            Generation g = current;
            if (g != null) {
                // Closing our last session on the token logs us out (PKCS#11 C_CloseSession).
                // Sessions still borrowed are closed as they come back.
                g.retire(false);
                g.handles.clear();
            }
            Arrays.fill(pin, '\0');
        }
    }

    @Override
    public String toString() {
        return "Pkcs11Enclave[" + config.tokenDescription() + " in " + library.path() + "]";
    }

    /** How often the enclave reopened its sessions; for tests and the status report. */
    int reopenCount() {
        return reopens.get();
    }

    // ---------------------------------------------------------------- keys and attributes

    private record HandleKey(ObjectId id, long objectClass) {
    }

    /** A cached object handle and the algorithm the token says the key has (null: none of ours). */
    private record KeyHandle(long handle, KeyAlgorithm algorithm) {
    }

    private KeyHandle secretKey(Session s, ObjectId id) throws PKCS11Exception, EnclaveException {
        KeyHandle k = key(s, id, CKO_SECRET_KEY);
        requireAlgorithm(id, k, KeyAlgorithm.AES_256_GCM);
        return k;
    }

    private KeyHandle key(Session s, ObjectId id, long objectClass) throws PKCS11Exception, EnclaveException {
        HandleKey cacheKey = new HandleKey(id, objectClass);
        KeyHandle cached = handles().get(cacheKey);
        if (cached != null) {
            return cached;
        }
        long[] found = s.findObjectsSingle(new AttributeVector().class_(objectClass).id(id.bytes()), 2);
        if (found.length == 0) {
            // Private objects are invisible to a session that lost its login (SoftHSM then
            // finds nothing instead of failing): make sure "not found" means not there.
            requireLogin(s);
            throw new EnclaveException.ObjectNotFound(id);
        }
        if (found.length > 1) {
            throw new EnclaveException.Unavailable("more than one " + className(objectClass) + " has id " + id.hex()
                    + "; refusing to guess which one to use", null);
        }
        KeyHandle k = new KeyHandle(found[0], algorithmOf(s, found[0], objectClass));
        handles().put(cacheKey, k);
        return k;
    }

    /**
     * Fails with CKR_USER_NOT_LOGGED_IN, which makes the caller reopen and log in again, when
     * the session has lost the user login (the application's last session on the token was
     * closed, or someone called C_Logout).
     */
    private static void requireLogin(Session s) throws PKCS11Exception {
        long state = s.getSessionInfo().getState();
        if (state != CKS_RW_USER_FUNCTIONS && state != CKS_RO_USER_FUNCTIONS) {
            throw new PKCS11Exception(CKR_USER_NOT_LOGGED_IN);
        }
    }

    private static void requireAlgorithm(ObjectId id, KeyHandle k, KeyAlgorithm wanted) throws EnclaveException {
        if (k.algorithm() != wanted) {
            throw new EnclaveException.BadInput("key " + id.hex() + " is "
                    + (k.algorithm() == null ? "not a key of any algorithm this enclave uses" : k.algorithm())
                    + ", not " + wanted);
        }
    }

    private void forget(ObjectId id) {
        handles().keySet().removeIf(k -> k.id().equals(id));
    }

    /** The handle cache of the generation the current operation's session belongs to. */
    private ConcurrentHashMap<HandleKey, KeyHandle> handles() {
        Generation g = WORKING_GENERATION.get();
        if (g == null) {
            throw new IllegalStateException("handle cache used outside withSession");
        }
        return g.handles;
    }

    /** Handles of every key object (secret, private, public) with this CKA_ID. */
    private static List<Long> keyObjects(Session s, ObjectId id) throws PKCS11Exception {
        List<Long> out = new ArrayList<>();
        for (long objectClass : new long[] {CKO_SECRET_KEY, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
            for (long h : s.findAllObjectsSingle(new AttributeVector().class_(objectClass).id(id.bytes()))) {
                out.add(h);
            }
        }
        return out;
    }

    private static void destroyIfPresent(Session s, long handle) throws PKCS11Exception {
        try {
            s.destroyObject(handle);
        } catch (PKCS11Exception e) {
            if (!HANDLE_STALE.contains(e.getErrorCode())) {
                throw e;
            }
        }
    }

    private static KeyAlgorithm algorithmOf(Session s, long handle, long objectClass) throws PKCS11Exception {
        Long keyType = s.getAttrValues(handle, CKA_KEY_TYPE).keyType();
        if (keyType == null) {
            return null;
        }
        byte[] ecParams = null;
        BigInteger modulus = null;
        Integer valueLen = null;
        if (keyType == CKK_EC || keyType == CKK_EC_EDWARDS) {
            ecParams = s.getAttrValues(handle, CKA_EC_PARAMS).ecParams();
        } else if (keyType == CKK_RSA) {
            modulus = s.getAttrValues(handle, CKA_MODULUS).modulus();
        } else if (objectClass == CKO_SECRET_KEY) {
            valueLen = s.getAttrValues(handle, CKA_VALUE_LEN).valueLen();
        }
        return KeyTemplates.infer(objectClass, keyType, ecParams, modulus, valueLen);
    }

    private EnclaveObject describe(Session s, long handle, long objectClass) throws PKCS11Exception {
        AttributeVector a = s.getAttrValues(handle, CKA_ID, CKA_LABEL, CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
                CKA_ALWAYS_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_MODIFIABLE, CKA_COPYABLE,
                CKA_DERIVE, CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_SIGN);
        byte[] id = a.id();
        if (id == null || id.length == 0 || id.length > 64) {
            return null;
        }
        KeyProtection protection = new KeyProtection(
                flag(a, CKA_TOKEN, false),
                flag(a, CKA_PRIVATE, false),
                flag(a, CKA_SENSITIVE, false),
                flag(a, CKA_ALWAYS_SENSITIVE, false),
                flag(a, CKA_EXTRACTABLE, true),
                flag(a, CKA_NEVER_EXTRACTABLE, false),
                flag(a, CKA_MODIFIABLE, true),
                flag(a, CKA_COPYABLE, true),
                flag(a, CKA_DERIVE, false),
                flag(a, CKA_ENCRYPT, false),
                flag(a, CKA_DECRYPT, false),
                flag(a, CKA_WRAP, false),
                flag(a, CKA_UNWRAP, false),
                flag(a, CKA_SIGN, false));
        String label = a.label();
        return new EnclaveObject(new ObjectId(id), label == null ? "" : label,
                algorithmOf(s, handle, objectClass), protection);
    }

    private static boolean flag(AttributeVector a, long type, boolean whenAbsent) {
        Boolean b = a.getBooleanAttrValue(type);
        return b != null ? b : whenAbsent;
    }

    private PublicKey readPublicKey(Session s, long handle, KeyAlgorithm algorithm)
            throws PKCS11Exception, EnclaveException {
        try {
            if (algorithm == KeyAlgorithm.RSA_3072_PSS_SHA256) {
                AttributeVector a = s.getAttrValues(handle, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
                return KeyTemplates.publicKey(algorithm, null, a.modulus(), a.publicExponent());
            }
            // Read CKA_EC_POINT as the token stores it (a DER OCTET STRING in PKCS#11 2.40 and
            // 3.0) and unwrap it ourselves, instead of relying on the wrapper's guesswork.
            return KeyTemplates.publicKey(algorithm, rawAttribute(s, handle, CKA_EC_POINT), null, null);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new EnclaveException.Unavailable("the token's public key for " + algorithm
                    + " cannot be decoded: " + e.getMessage(), e);
        }
    }

    private byte[] rawAttribute(Session s, long handle, long type) throws PKCS11Exception {
        CK_ATTRIBUTE[] template = {new CK_ATTRIBUTE()};
        template[0].type = type;
        try {
            library.module().getPKCS11Module().C_GetAttributeValue(s.getSessionHandle(), handle, template, true);
        } catch (iaik.pkcs.pkcs11.wrapper.PKCS11Exception e) {
            throw library.module().convertException(e);
        }
        if (!(template[0].pValue instanceof byte[] value)) {
            throw new PKCS11Exception(org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_ATTRIBUTE_VALUE_INVALID);
        }
        return value;
    }

    private static String className(long objectClass) {
        return objectClass == CKO_SECRET_KEY ? "secret key" : objectClass == CKO_PRIVATE_KEY ? "private key"
                : "public key";
    }

    /**
     * Throws BadInput when the key exists but refuses this function (wrong type, no usage
     * flag for it); otherwise returns {@code e} for the caller to throw.
     */
    private static PKCS11Exception unlessWrongKey(PKCS11Exception e, ObjectId key) throws EnclaveException {
        if (WRONG_KEY.contains(e.getErrorCode())) {
            throw new EnclaveException.BadInput("key " + key.hex() + " does not permit this operation ("
                    + e.getErrorName() + ")");
        }
        return e;
    }

    // ---------------------------------------------------------------- sessions

    @FunctionalInterface
    private interface SessionWork<T> {
        T run(Session session) throws TokenException, EnclaveException;
    }

    /**
     * Runs {@code work} on a pooled session, recovering once from a lost session, login or
     * object handle. EnclaveExceptions thrown by the work pass through unchanged; every
     * other device error becomes {@link EnclaveException.Unavailable}.
     */
    private <T> T withSession(String operation, SessionWork<T> work) throws EnclaveException {
        for (int attempt = 1; ; attempt++) {
            Generation gen = live();
            acquire(operation);
            Session session = null;
            // Any failure may leave an operation active on the session: SoftHSM, against the
            // standard, keeps it after e.g. CKR_ARGUMENTS_BAD, and the session then answers
            // CKR_OPERATION_ACTIVE forever. Such a session is replaced, not reused.
            boolean discard = true;
            try {
                session = gen.take();
                WORKING_GENERATION.set(gen);
                T result = work.run(session);
                discard = false;
                return result;
            } catch (EnclaveException.ObjectNotFound e) {
                discard = false; // a search, finished: the session is clean
                throw e;
            } catch (PKCS11Exception e) {
                long code = e.getErrorCode();
                boolean stale = HANDLE_STALE.contains(code);
                if (stale && session != null && !loggedIn(session)) {
                    // SoftHSM answers CKR_OBJECT_HANDLE_INVALID for a private object used in a
                    // session that lost its login: that is a lost login, not a stale handle.
                    stale = false;
                    code = CKR_USER_NOT_LOGGED_IN;
                }
                boolean lost = SESSIONS_GONE.contains(code) || SESSIONS_UNUSABLE.contains(code);
                // An operation left active by an earlier failure: the session is replaced
                // (discard stays true) and the call retried on a clean one.
                boolean busy = code == CKR_OPERATION_ACTIVE;
                if (!lost && !stale && !busy) {
                    throw new EnclaveException.Unavailable(operation + " failed: " + e.getErrorName(), e);
                }
                if (attempt > 1) {
                    throw new EnclaveException.Unavailable(operation + " failed again after recovering: "
                            + e.getErrorName(), e);
                }
                LOG.log(System.Logger.Level.INFO, "{0} on token {1} failed with {2}; {3} and retrying once",
                        operation, config.tokenDescription(), e.getErrorName(),
                        lost ? "reopening the sessions" : stale ? "forgetting cached handles" : "dropping the session");
                if (lost) {
                    reopen(gen, SESSIONS_GONE.contains(code));
                } else if (stale) {
                    gen.handles.clear();
                }
            } catch (TokenException e) {
                throw new EnclaveException.Unavailable(operation + " failed: " + e.getMessage(), e);
            } finally {
                WORKING_GENERATION.remove();
                if (session != null) {
                    gen.giveBack(session, discard);
                }
                permits.release();
            }
        }
    }

    private static boolean loggedIn(Session s) {
        try {
            long state = s.getSessionInfo().getState();
            return state == CKS_RW_USER_FUNCTIONS || state == CKS_RO_USER_FUNCTIONS;
        } catch (PKCS11Exception e) {
            return false;
        }
    }

    private Generation live() throws EnclaveException {
        Generation g = current;
        if (closed || g == null) {
            throw new EnclaveException.Unavailable("the enclave is closed", null);
        }
        return g;
    }

    private void acquire(String operation) throws EnclaveException {
        try {
            if (!permits.tryAcquire(SESSION_WAIT_SECONDS, TimeUnit.SECONDS)) {
                throw new EnclaveException.Unavailable(operation + ": no PKCS#11 session became free within "
                        + SESSION_WAIT_SECONDS + " s", null);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EnclaveException.Unavailable(operation + ": interrupted while waiting for a session", e);
        }
    }

    /**
     * Replaces generation {@code seen} by a freshly connected one, unless another thread did
     * so already. The new session logs in before the old ones close, so the application is
     * never without a session on the token (closing the last one would log it out).
     */
    private void reopen(Generation seen, boolean sessionsGone) throws EnclaveException {
        synchronized (reopenLock) {
            if (current != seen || closed) {
                return;
            }
            Generation next = connect(seen.number + 1);
            current = next; // a new generation starts with an empty handle cache
            seen.retire(sessionsGone);
            reopens.incrementAndGet();
        }
    }

    /** Finds the token, opens one session and logs in on it. */
    private Generation connect(int number) throws EnclaveException {
        String where = config.tokenDescription() + " in " + library.path();
        List<Pkcs11Library.SlotToken> found;
        try {
            found = library.find(config.tokenLabel(), config.tokenSerial());
        } catch (PKCS11Exception e) {
            throw new EnclaveException.Unavailable("cannot list the tokens of " + library.path() + ": "
                    + e.getErrorName(), e);
        }
        if (found.isEmpty()) {
            throw new EnclaveException.Unavailable("no initialised token with " + where, null);
        }
        if (found.size() > 1) {
            throw new EnclaveException.Unavailable(found.size() + " tokens have " + where
                    + "; name the token by its serial number instead", null);
        }
        Token token = found.getFirst().slot().getToken();
        Session session;
        try {
            session = token.openSession(true);
        } catch (PKCS11Exception e) {
            throw new EnclaveException.Unavailable("cannot open a session on the token with " + where + ": "
                    + e.getErrorName(), e);
        }
        try {
            session.login(CKU_USER, pin);
        } catch (PKCS11Exception e) {
            if (e.getErrorCode() != CKR_USER_ALREADY_LOGGED_IN) {
                closeQuietly(session);
                throw new EnclaveException.Unavailable(loginFailure(e, where), e);
            }
            // Login is per application and token: another part of this process logged in already.
        }
        Generation g = new Generation(number, token);
        g.idle.add(session);
        return g;
    }

    private String loginFailure(PKCS11Exception e, String where) {
        long code = e.getErrorCode();
        String hint;
        if (code == CKR_PIN_INCORRECT) {
            hint = "the user PIN in " + config.userPinFile() + " is wrong";
        } else if (code == CKR_PIN_LOCKED) {
            hint = "the user PIN is locked; the security officer must reset it";
        } else if (code == CKR_PIN_EXPIRED) {
            hint = "the user PIN has expired and must be changed";
        } else if (code == CKR_USER_PIN_NOT_INITIALIZED) {
            hint = "the token has no user PIN yet; provision it first (kmsctl provision)";
        } else {
            hint = "login refused";
        }
        return "cannot log in to the token with " + where + ": " + hint + " (" + e.getErrorName() + ")";
    }

    private static void closeQuietly(Session s) {
        try {
            s.closeSession();
        } catch (PKCS11Exception e) {
            LOG.log(System.Logger.Level.DEBUG, "closing a PKCS#11 session failed: {0}", e.getErrorName());
        }
    }

    /**
     * The sessions opened since the last (re)connect. A generation is retired when the
     * enclave reopens or closes; its sessions are then closed as they come back, or dropped
     * without closing when the device declared their handles invalid.
     */
    private static final class Generation {
        final int number;
        final Token token;
        final ConcurrentLinkedDeque<Session> idle = new ConcurrentLinkedDeque<>();
        /** Object handles found through this generation's sessions, by id and class. */
        final ConcurrentHashMap<HandleKey, KeyHandle> handles = new ConcurrentHashMap<>();
        volatile boolean sessionsGone;
        volatile boolean retired;

        Generation(int number, Token token) {
            this.number = number;
            this.token = token;
        }

        /** An idle session, or a new one: it shares the application's login on this token. */
        Session take() throws PKCS11Exception {
            Session s = idle.pollFirst();
            return s != null ? s : token.openSession(true);
        }

        void giveBack(Session s, boolean discard) {
            if (retired) {
                if (!sessionsGone) {
                    closeQuietly(s);
                }
                return;
            }
            if (discard) {
                // Open the replacement before closing: if this were the application's last
                // session on the token, closing it would log the application out.
                try {
                    idle.offerFirst(token.openSession(true));
                } catch (PKCS11Exception e) {
                    LOG.log(System.Logger.Level.DEBUG, "opening a replacement session failed: {0}", e.getErrorName());
                }
                closeQuietly(s);
                if (retired) {
                    retire(sessionsGone); // raced with retire(): drain what we just added
                }
                return;
            }
            // Most recently used first: a few sessions stay busy, the rest are rarely opened.
            idle.offerFirst(s);
            // retire() may have drained the queue between the check above and the offer.
            if (retired && idle.remove(s) && !sessionsGone) {
                closeQuietly(s);
            }
        }

        void retire(boolean gone) {
            sessionsGone = gone; // written before retired: whoever sees retired sees this too
            retired = true;
            for (Session s = idle.pollFirst(); s != null; s = idle.pollFirst()) {
                if (!gone) {
                    closeQuietly(s);
                }
            }
        }
    }
}
