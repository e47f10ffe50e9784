package dev.enclavekms.enclave;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What every {@link Enclave} must do, whatever the hardware: the PKCS#11 token and the Java
 * Card applet both extend this class.
 *
 * <p>A subclass opens its enclave on a device of its own (one per test class) and declares
 * the algorithms the device supports; the others must be refused with
 * {@link EnclaveException.Unsupported}. Nothing is skipped at run time. AES-256-GCM is
 * mandatory, and so are HMAC-SHA256 and ECDSA P-256, which the audit log needs.
 *
 * <p>Keys are generated once per algorithm and class and shared by the tests that only use
 * them (RSA-3072 generation is slow on every device); tests that destroy keys make their own.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class EnclaveContractTest {

    private static final SecureRandom RANDOM = new SecureRandom();

    /** The enclave under test; replaced by {@link #reopenEnclave}. */
    protected Enclave enclave;
    private final Map<KeyAlgorithm, GeneratedKey> sharedKeys = new EnumMap<>(KeyAlgorithm.class);

    /** Opens the enclave on the subclass's device (a fresh device on the first call). */
    protected abstract Enclave openEnclave() throws EnclaveException;

    /**
     * The algorithms this device supports; must contain {@link KeyAlgorithm#AES_256_GCM},
     * {@link KeyAlgorithm#HMAC_SHA256} and {@link KeyAlgorithm#EC_P256_SHA256}.
     */
    protected abstract Set<KeyAlgorithm> supportedAlgorithms();

    /** Closes {@code old} and opens the same device again, as a daemon restart would. */
    protected Enclave reopenEnclave(Enclave old) throws EnclaveException {
        old.close();
        return openEnclave();
    }

    /** A key the enclave generated, with the public key {@code generate} returned. */
    protected record GeneratedKey(ObjectId id, KeyAlgorithm algorithm, String label, PublicKey publicKey) {
    }

    @BeforeAll
    void openEnclaveForClass() throws EnclaveException {
        assertTrue(supportedAlgorithms().containsAll(Set.of(KeyAlgorithm.AES_256_GCM, KeyAlgorithm.HMAC_SHA256,
                KeyAlgorithm.EC_P256_SHA256)), "AES-256-GCM, HMAC-SHA256 and ECDSA P-256 are mandatory");
        enclave = openEnclave();
    }

    @AfterAll
    void closeEnclaveForClass() {
        if (enclave != null) {
            enclave.close();
        }
    }

    /** The class's shared key of this algorithm, generated on first use. */
    protected synchronized GeneratedKey sharedKey(KeyAlgorithm algorithm) throws EnclaveException {
        GeneratedKey k = sharedKeys.get(algorithm);
        if (k == null) {
            k = newKey(algorithm);
            sharedKeys.put(algorithm, k);
        }
        return k;
    }

    /** A new key of this algorithm, for tests that change or destroy it. */
    protected GeneratedKey newKey(KeyAlgorithm algorithm) throws EnclaveException {
        ObjectId id = ObjectId.random();
        String label = "contract " + algorithm + " " + id.hex().substring(0, 8);
        PublicKey pk = enclave.generate(id, algorithm, label);
        return new GeneratedKey(id, algorithm, label, pk);
    }

    protected Stream<KeyAlgorithm> supported() {
        return Arrays.stream(KeyAlgorithm.values()).filter(supportedAlgorithms()::contains);
    }

    protected Stream<KeyAlgorithm> unsupported() {
        return Arrays.stream(KeyAlgorithm.values()).filter(a -> !supportedAlgorithms().contains(a));
    }

    protected Stream<KeyAlgorithm> signing() {
        return supported().filter(KeyAlgorithm::signs);
    }

    protected Stream<KeyAlgorithm> digestSigning() {
        return signing().filter(a -> a.digestLength() > 0);
    }

    // ---------------------------------------------------------------- generate

    @ParameterizedTest
    @MethodSource("supported")
    void generate_supportedAlgorithm_returnsPublicKeyForPairsOnly(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = sharedKey(algorithm);
        switch (algorithm) {
            case AES_256_GCM, HMAC_SHA256 -> assertNull(k.publicKey());
            case EC_P256_SHA256, EC_P384_SHA384 -> {
                ECPublicKey ec = assertInstanceOf(ECPublicKey.class, k.publicKey());
                assertEquals(algorithm == KeyAlgorithm.EC_P256_SHA256 ? 256 : 384,
                        ec.getParams().getCurve().getField().getFieldSize());
            }
            case ED25519 -> {
                assertNotNull(k.publicKey());
                // RFC 8410 SubjectPublicKeyInfo: 12-byte header and the 32-byte key.
                assertEquals(44, k.publicKey().getEncoded().length);
                assertEquals("X.509", k.publicKey().getFormat());
            }
            case RSA_3072_PSS_SHA256 -> {
                RSAPublicKey rsa = assertInstanceOf(RSAPublicKey.class, k.publicKey());
                assertEquals(3072, rsa.getModulus().bitLength());
                assertEquals(BigInteger.valueOf(65537), rsa.getPublicExponent());
            }
        }
    }

    @ParameterizedTest(allowZeroInvocations = true)
    @MethodSource("unsupported")
    void generate_unsupportedAlgorithm_throwsUnsupported(KeyAlgorithm algorithm) {
        assertThrows(EnclaveException.Unsupported.class,
                () -> enclave.generate(ObjectId.random(), algorithm, "unsupported"));
    }

    @Test
    void generate_idAlreadyInUse_throwsBadInput() throws Exception {
        GeneratedKey k = sharedKey(KeyAlgorithm.AES_256_GCM);
        assertThrows(EnclaveException.BadInput.class,
                () -> enclave.generate(k.id(), KeyAlgorithm.AES_256_GCM, "duplicate"));
        // The existing key is untouched.
        Sealed sealed = enclave.encrypt(k.id(), new byte[0], bytes(8));
        assertEquals(8, enclave.decrypt(k.id(), new byte[0], sealed).length());
    }

    @ParameterizedTest
    @MethodSource("signing")
    void publicKey_ofGeneratedPair_equalsWhatGenerateReturned(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = sharedKey(algorithm);
        PublicKey read = enclave.publicKey(k.id(), algorithm);
        assertArrayEquals(k.publicKey().getEncoded(), read.getEncoded());
    }

    // ---------------------------------------------------------------- encrypt / decrypt

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 16, 1000, 65536})
    void encryptThenDecrypt_anyLength_returnsPlaintext(int length) throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        byte[] aad = "tenant=a;model=m".getBytes(StandardCharsets.UTF_8);
        byte[] plaintext = bytes(length);
        Sealed sealed = enclave.encrypt(key, aad, plaintext);
        assertEquals(12, sealed.iv().length);
        assertEquals(length + 16, sealed.ciphertext().length);
        try (SecretBytes back = enclave.decrypt(key, aad, sealed)) {
            assertArrayEquals(plaintext, back.reveal());
        }
    }

    @Test
    void encryptThenDecrypt_emptyAad_returnsPlaintext() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        byte[] plaintext = bytes(32);
        Sealed sealed = enclave.encrypt(key, new byte[0], plaintext);
        try (SecretBytes back = enclave.decrypt(key, new byte[0], sealed)) {
            assertArrayEquals(plaintext, back.reveal());
        }
    }

    @Test
    void encrypt_samePlaintextTwice_freshIvAndCiphertext() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        byte[] plaintext = bytes(32);
        Sealed a = enclave.encrypt(key, new byte[0], plaintext);
        Sealed b = enclave.encrypt(key, new byte[0], plaintext);
        assertFalse(Arrays.equals(a.iv(), b.iv()));
        assertFalse(Arrays.equals(a.ciphertext(), b.ciphertext()));
    }

    @Test
    void decrypt_wrongAad_throwsAuthenticationFailed() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        Sealed sealed = enclave.encrypt(key, "model=a".getBytes(StandardCharsets.UTF_8), bytes(32));
        assertThrows(EnclaveException.AuthenticationFailed.class,
                () -> enclave.decrypt(key, "model=b".getBytes(StandardCharsets.UTF_8), sealed));
        assertThrows(EnclaveException.AuthenticationFailed.class, () -> enclave.decrypt(key, new byte[0], sealed));
    }

    @Test
    void decrypt_flippedIvBit_throwsAuthenticationFailed() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        Sealed sealed = enclave.encrypt(key, new byte[0], bytes(32));
        for (int bit : new int[] {0, 47, 95}) {
            byte[] iv = sealed.iv();
            iv[bit / 8] ^= (byte) (1 << (bit % 8));
            Sealed tampered = new Sealed(iv, sealed.ciphertext());
            assertThrows(EnclaveException.AuthenticationFailed.class, () -> enclave.decrypt(key, new byte[0], tampered),
                    "IV bit " + bit);
        }
    }

    @Test
    void decrypt_flippedCiphertextOrTagBit_throwsAuthenticationFailed() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        Sealed sealed = enclave.encrypt(key, new byte[0], bytes(32));
        int bits = sealed.ciphertext().length * 8;
        // First and last bit of the ciphertext body, first and last of the tag.
        for (int bit : new int[] {0, 32 * 8 - 1, 32 * 8, bits - 1}) {
            byte[] ct = sealed.ciphertext();
            ct[bit / 8] ^= (byte) (1 << (bit % 8));
            Sealed tampered = new Sealed(sealed.iv(), ct);
            assertThrows(EnclaveException.AuthenticationFailed.class, () -> enclave.decrypt(key, new byte[0], tampered),
                    "ciphertext bit " + bit);
        }
    }

    @Test
    void decrypt_truncatedOrMalformed_throwsAuthenticationFailed() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        Sealed sealed = enclave.encrypt(key, new byte[0], bytes(32));
        byte[] ct = sealed.ciphertext();
        for (Sealed bad : List.of(
                new Sealed(sealed.iv(), Arrays.copyOf(ct, ct.length - 1)),
                new Sealed(sealed.iv(), Arrays.copyOf(ct, 15)),
                new Sealed(sealed.iv(), new byte[0]),
                new Sealed(Arrays.copyOf(sealed.iv(), 11), ct),
                new Sealed(new byte[0], ct))) {
            assertThrows(EnclaveException.AuthenticationFailed.class, () -> enclave.decrypt(key, new byte[0], bad));
        }
    }

    @Test
    void decrypt_underAnotherKey_throwsAuthenticationFailed() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        GeneratedKey other = newKey(KeyAlgorithm.AES_256_GCM);
        try {
            Sealed sealed = enclave.encrypt(key, new byte[0], bytes(32));
            assertThrows(EnclaveException.AuthenticationFailed.class,
                    () -> enclave.decrypt(other.id(), new byte[0], sealed));
        } finally {
            enclave.destroy(other.id());
        }
    }

    // ---------------------------------------------------------------- sign

    @ParameterizedTest
    @MethodSource("signing")
    void sign_eachSigningAlgorithm_verifiesWithJca(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = sharedKey(algorithm);
        // An empty message is signed through its digest; Ed25519 takes the message itself,
        // and whether a device accepts an empty one is its own business.
        int[] lengths = algorithm.digestLength() > 0 ? new int[] {0, 1, 100, 5000} : new int[] {1, 100, 5000};
        for (int length : lengths) {
            byte[] message = bytes(length);
            byte[] signature = enclave.sign(k.id(), algorithm, signingInput(algorithm, message));
            assertTrue(verify(algorithm, k.publicKey(), message, signature),
                    algorithm + " signature over " + length + " bytes");
            byte[] other = Arrays.copyOf(message, length + 1);
            assertFalse(verify(algorithm, k.publicKey(), other, signature), "verifies only its own message");
        }
    }

    @ParameterizedTest
    @MethodSource("digestSigning")
    void sign_digestOfWrongLength_throwsBadInput(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = sharedKey(algorithm);
        for (int length : new int[] {0, algorithm.digestLength() - 1, algorithm.digestLength() + 1, 64 + 1}) {
            byte[] input = bytes(length);
            assertThrows(EnclaveException.BadInput.class, () -> enclave.sign(k.id(), algorithm, input),
                    "digest of " + length + " bytes");
        }
    }

    @Test
    void sign_withAesAlgorithm_throwsBadInput() throws Exception {
        GeneratedKey k = sharedKey(KeyAlgorithm.AES_256_GCM);
        assertThrows(EnclaveException.BadInput.class, () -> enclave.sign(k.id(), KeyAlgorithm.AES_256_GCM, bytes(32)));
    }

    // ---------------------------------------------------------------- hmac

    @Test
    void hmac_sameKeyAndInput_sameThirtyTwoBytes() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.HMAC_SHA256).id();
        for (int length : new int[] {0, 1, 31, 32, 33, 64, 1000, Enclave.MAX_HMAC_INPUT_BYTES}) {
            byte[] data = bytes(length);
            byte[] mac = enclave.hmac(key, data);
            assertEquals(32, mac.length, length + " bytes");
            assertArrayEquals(mac, enclave.hmac(key, data.clone()), "deterministic for " + length + " bytes");
        }
    }

    @Test
    void hmac_differentInputOrKey_differentMac() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.HMAC_SHA256).id();
        GeneratedKey other = newKey(KeyAlgorithm.HMAC_SHA256);
        try {
            byte[] data = "model=llama-3-8b".getBytes(StandardCharsets.UTF_8);
            byte[] mac = enclave.hmac(key, data);
            byte[] longer = Arrays.copyOf(data, data.length + 1);
            byte[] flipped = data.clone();
            flipped[0] ^= 1;
            assertFalse(Arrays.equals(mac, enclave.hmac(key, longer)), "one byte appended");
            assertFalse(Arrays.equals(mac, enclave.hmac(key, flipped)), "one bit flipped");
            assertFalse(Arrays.equals(mac, enclave.hmac(other.id(), data)), "another key");
            assertFalse(Arrays.equals(enclave.hmac(key, new byte[0]), enclave.hmac(other.id(), new byte[0])),
                    "another key, empty input");
        } finally {
            enclave.destroy(other.id());
        }
    }

    @Test
    void hmac_overlongInput_throwsBadInput() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.HMAC_SHA256).id();
        assertThrows(EnclaveException.BadInput.class, () -> enclave.hmac(key, new byte[Enclave.MAX_HMAC_INPUT_BYTES + 1]));
    }

    @Test
    void keysOfOtherAlgorithms_crossUse_throwBadInput() throws Exception {
        ObjectId hmacKey = sharedKey(KeyAlgorithm.HMAC_SHA256).id();
        ObjectId aesKey = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        // An AES master key computes no MACs, an HMAC key neither encrypts nor signs.
        assertThrows(EnclaveException.BadInput.class, () -> enclave.hmac(aesKey, bytes(16)));
        assertThrows(EnclaveException.BadInput.class, () -> enclave.encrypt(hmacKey, new byte[0], bytes(16)));
        Sealed sealed = enclave.encrypt(aesKey, new byte[0], bytes(16));
        assertThrows(EnclaveException.BadInput.class, () -> enclave.decrypt(hmacKey, new byte[0], sealed));
        assertThrows(EnclaveException.BadInput.class, () -> enclave.sign(hmacKey, KeyAlgorithm.HMAC_SHA256, bytes(32)));
        assertThrows(EnclaveException.BadInput.class, () -> enclave.publicKey(hmacKey, KeyAlgorithm.HMAC_SHA256));
        for (KeyAlgorithm algorithm : signing().toList()) {
            ObjectId signer = sharedKey(algorithm).id();
            assertThrows(EnclaveException.BadInput.class, () -> enclave.hmac(signer, bytes(16)), algorithm.name());
        }
    }

    // ---------------------------------------------------------------- random

    @Test
    void random_requestedLengths_returnsThatManyFreshBytes() throws Exception {
        for (int length : new int[] {0, 1, 12, 32, 4096}) {
            try (SecretBytes r = enclave.random(length)) {
                assertEquals(length, r.length());
            }
        }
        try (SecretBytes a = enclave.random(32); SecretBytes b = enclave.random(32)) {
            assertNotEquals(a, b);
        }
    }

    @Test
    void random_negativeLength_throwsBadInput() {
        assertThrows(EnclaveException.BadInput.class, () -> enclave.random(-1));
    }

    // ---------------------------------------------------------------- destroy

    @ParameterizedTest
    @MethodSource("supported")
    void destroy_thenEveryOperation_throwsObjectNotFound(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = newKey(algorithm);
        Sealed sealed = algorithm.kind() == KeyAlgorithm.Kind.SECRET && !algorithm.macs()
                ? enclave.encrypt(k.id(), new byte[0], bytes(16)) : null;
        enclave.destroy(k.id());

        if (algorithm.macs()) {
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.hmac(k.id(), bytes(16)));
        } else if (algorithm.signs()) {
            byte[] input = signingInput(algorithm, bytes(10));
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.sign(k.id(), algorithm, input));
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.publicKey(k.id(), algorithm));
        } else {
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.encrypt(k.id(), new byte[0], bytes(16)));
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.decrypt(k.id(), new byte[0], sealed));
        }
        assertTrue(enclave.list().stream().noneMatch(o -> o.id().equals(k.id())), "gone from list()");
        // The id is free again.
        GeneratedKey again = new GeneratedKey(k.id(), algorithm, k.label(), enclave.generate(k.id(), algorithm, k.label()));
        enclave.destroy(again.id());
    }

    @Test
    void destroy_missingKey_succeedsQuietly() throws Exception {
        enclave.destroy(ObjectId.random());
        GeneratedKey k = newKey(KeyAlgorithm.AES_256_GCM);
        enclave.destroy(k.id());
        enclave.destroy(k.id());
    }

    // ---------------------------------------------------------------- unknown ids

    @Test
    void operations_unknownId_throwObjectNotFound() throws Exception {
        ObjectId unknown = ObjectId.random();
        Sealed sealed = enclave.encrypt(sharedKey(KeyAlgorithm.AES_256_GCM).id(), new byte[0], bytes(16));
        assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.encrypt(unknown, new byte[0], bytes(16)));
        assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.decrypt(unknown, new byte[0], sealed));
        assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.hmac(unknown, bytes(16)));
        for (KeyAlgorithm algorithm : signing().toList()) {
            byte[] input = signingInput(algorithm, bytes(10));
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.sign(unknown, algorithm, input));
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.publicKey(unknown, algorithm));
        }
    }

    // ---------------------------------------------------------------- list

    @Test
    void list_generatedKeys_presentWithAlgorithmLabelAndNoWeaknesses() throws Exception {
        List<GeneratedKey> keys = new ArrayList<>();
        for (KeyAlgorithm algorithm : supported().toList()) {
            keys.add(sharedKey(algorithm));
        }
        List<EnclaveObject> listed = enclave.list();
        for (GeneratedKey k : keys) {
            List<EnclaveObject> entries = listed.stream().filter(o -> o.id().equals(k.id())).toList();
            assertEquals(1, entries.size(), "one entry for " + k.algorithm() + " (a pair is listed once)");
            EnclaveObject o = entries.getFirst();
            assertEquals(k.algorithm(), o.algorithm());
            assertEquals(k.label(), o.label());
            assertEquals(List.of(), o.protection().weaknesses(k.algorithm()), k.algorithm() + " weaknesses");
        }
    }

    // ---------------------------------------------------------------- info, reopen, threads

    @Test
    void info_describesTheDevice() throws Exception {
        EnclaveInfo info = enclave.info();
        assertNotNull(info.kind());
        assertNotNull(info.label());
        assertNotNull(info.manufacturer());
        assertNotNull(info.serial());
        assertTrue(info.freeSpace() >= -1);
    }

    @Test
    void reopen_keysGeneratedBefore_stillServe() throws Exception {
        GeneratedKey aes = sharedKey(KeyAlgorithm.AES_256_GCM);
        byte[] plaintext = bytes(40);
        Sealed sealed = enclave.encrypt(aes.id(), new byte[] {1}, plaintext);
        List<GeneratedKey> signers = new ArrayList<>();
        for (KeyAlgorithm algorithm : signing().toList()) {
            signers.add(sharedKey(algorithm));
        }
        GeneratedKey hmacKey = sharedKey(KeyAlgorithm.HMAC_SHA256);
        byte[] mac = enclave.hmac(hmacKey.id(), plaintext);

        enclave = reopenEnclave(enclave);

        assertArrayEquals(mac, enclave.hmac(hmacKey.id(), plaintext), "the same HMAC key after reopening");
        try (SecretBytes back = enclave.decrypt(aes.id(), new byte[] {1}, sealed)) {
            assertArrayEquals(plaintext, back.reveal());
        }
        for (GeneratedKey k : signers) {
            byte[] message = bytes(20);
            byte[] signature = enclave.sign(k.id(), k.algorithm(), signingInput(k.algorithm(), message));
            assertTrue(verify(k.algorithm(), k.publicKey(), message, signature));
        }
    }

    @Test
    void concurrentUse_8VirtualThreadsTimes200_everyRoundTripCorrect() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        Set<String> ivs = ConcurrentHashMap.newKeySet();
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int thread = t;
                results.add(threads.submit(() -> {
                    int ok = 0;
                    for (int i = 0; i < 200; i++) {
                        byte[] aad = ("thread " + thread + " op " + i).getBytes(StandardCharsets.UTF_8);
                        byte[] plaintext = bytes(1 + (i % 64));
                        Sealed sealed = enclave.encrypt(key, aad, plaintext);
                        ivs.add(HexFormat.of().formatHex(sealed.iv()));
                        try (SecretBytes back = enclave.decrypt(key, aad, sealed)) {
                            if (Arrays.equals(plaintext, back.reveal())) {
                                ok++;
                            }
                        }
                    }
                    return ok;
                }));
            }
            for (Future<Integer> r : results) {
                assertEquals(200, r.get());
            }
        }
        assertEquals(8 * 200, ivs.size(), "no IV repeated");
    }

    // ---------------------------------------------------------------- helpers

    protected static byte[] bytes(int length) {
        byte[] b = new byte[length];
        RANDOM.nextBytes(b);
        return b;
    }

    /** What {@link Enclave#sign} takes for {@code message}: its digest, or the message for Ed25519. */
    protected static byte[] signingInput(KeyAlgorithm algorithm, byte[] message) throws GeneralSecurityException {
        return algorithm.digestName() == null ? message : MessageDigest.getInstance(algorithm.digestName()).digest(message);
    }

    /** Verifies with the JDK's own providers: the independent check of every signature. */
    protected static boolean verify(KeyAlgorithm algorithm, PublicKey key, byte[] message, byte[] signature)
            throws GeneralSecurityException {
        Signature verifier = switch (algorithm) {
            case EC_P256_SHA256 -> Signature.getInstance("SHA256withECDSA");
            case EC_P384_SHA384 -> Signature.getInstance("SHA384withECDSA");
            case ED25519 -> Signature.getInstance("Ed25519");
            case RSA_3072_PSS_SHA256 -> {
                Signature s = Signature.getInstance("RSASSA-PSS");
                s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
                yield s;
            }
            case AES_256_GCM, HMAC_SHA256 -> throw new IllegalArgumentException(algorithm + " does not sign");
        };
        verifier.initVerify(key);
        verifier.update(message);
        try {
            return verifier.verify(signature);
        } catch (java.security.SignatureException e) {
            return false; // malformed for this key: does not verify
        }
    }
}
