package dev.enclavekms.enclave.pkcs11;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveContractTest;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Constants;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

/**
 * The contract on a real SoftHSM token (one per class), plus what only PKCS#11 can show:
 * the attributes as the token stores them, read through a separate session; the token's
 * refusals to reveal, wrap, copy or weaken the keys; recovery from sessions and logins lost
 * behind the enclave's back; the PIN file rules.
 */
class Pkcs11EnclaveTest extends EnclaveContractTest {

    private TestTokens.TestToken token;

    @Override
    protected Enclave openEnclave() throws EnclaveException {
        if (token == null) {
            token = TestTokens.fresh("p11-enclave");
        }
        Pkcs11Enclave e = Pkcs11Enclave.open(token.config().withBinding(binding()));
        assertEquals(binding(), e.binding());
        return e;
    }

    /** The binding of the hot calls under test: the default, FFM (Pkcs11EnclaveWrapperTest: the wrapper). */
    protected Pkcs11Binding binding() {
        return Pkcs11Binding.FFM;
    }

    @Override
    protected Set<KeyAlgorithm> supportedAlgorithms() {
        return EnumSet.allOf(KeyAlgorithm.class);
    }

    private Pkcs11Enclave pkcs11() {
        return (Pkcs11Enclave) enclave;
    }

    // ---------------------------------------------------------------- attributes on the token

    @ParameterizedTest
    @EnumSource(KeyAlgorithm.class)
    void generatedKey_attributesReadDirectlyFromToken_matchTheTemplate(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = sharedKey(algorithm);
        try (TokenInspector t = new TokenInspector(token)) {
            long main = t.only(algorithm.signs() ? CKO_PRIVATE_KEY : CKO_SECRET_KEY, k.id());
            Map<Long, Boolean> expected = new java.util.LinkedHashMap<>();
            expected.put(CKA_TOKEN, true);
            expected.put(CKA_PRIVATE, true);
            expected.put(CKA_SENSITIVE, true);
            expected.put(CKA_ALWAYS_SENSITIVE, true);
            expected.put(CKA_EXTRACTABLE, false);
            expected.put(CKA_NEVER_EXTRACTABLE, true);
            expected.put(CKA_MODIFIABLE, false);
            expected.put(CKA_COPYABLE, false);
            expected.put(CKA_DESTROYABLE, true);
            expected.put(CKA_DERIVE, false);
            expected.put(CKA_LOCAL, true);
            if (algorithm.signs()) {
                expected.put(CKA_SIGN, true);
                expected.put(CKA_SIGN_RECOVER, false);
                expected.put(CKA_DECRYPT, false);
                expected.put(CKA_UNWRAP, false);
            } else {
                // AES: encrypt and decrypt only; HMAC: sign (compute MACs) only.
                boolean mac = algorithm.macs();
                expected.put(CKA_ENCRYPT, !mac);
                expected.put(CKA_DECRYPT, !mac);
                expected.put(CKA_WRAP, false);
                expected.put(CKA_UNWRAP, false);
                expected.put(CKA_SIGN, mac);
                expected.put(CKA_VERIFY, false);
                assertEquals(32L, t.attribute(main, CKA_VALUE_LEN));
            }
            assertAttributes(t, main, expected);
            assertArrayEquals(k.id().bytes(), (byte[]) t.attribute(main, CKA_ID));
            assertEquals(k.label(), new String((char[]) t.attribute(main, CKA_LABEL)));

            if (algorithm.signs()) {
                long pub = t.only(CKO_PUBLIC_KEY, k.id());
                Map<Long, Boolean> pubExpected = new java.util.LinkedHashMap<>();
                pubExpected.put(CKA_TOKEN, true);
                pubExpected.put(CKA_PRIVATE, true);
                pubExpected.put(CKA_MODIFIABLE, false);
                pubExpected.put(CKA_COPYABLE, false);
                pubExpected.put(CKA_DERIVE, false);
                pubExpected.put(CKA_VERIFY, true);
                pubExpected.put(CKA_VERIFY_RECOVER, false);
                pubExpected.put(CKA_ENCRYPT, false);
                pubExpected.put(CKA_WRAP, false);
                assertAttributes(t, pub, pubExpected);
                assertEquals(k.label(), new String((char[]) t.attribute(pub, CKA_LABEL)));
            } else {
                assertEquals(0, t.find(CKO_PUBLIC_KEY, k.id()).length);
                assertEquals(0, t.find(CKO_PRIVATE_KEY, k.id()).length);
            }
        }
    }

    private static void assertAttributes(TokenInspector t, long object, Map<Long, Boolean> expected) throws Exception {
        List<String> wrong = new ArrayList<>();
        for (Map.Entry<Long, Boolean> e : expected.entrySet()) {
            Object value = t.attribute(object, e.getKey());
            if (value instanceof byte[] b && b.length == 1) {
                // The JNI layer predates CKA_COPYABLE and CKA_DESTROYABLE and returns them as bytes.
                value = b[0] != 0;
            }
            if (!e.getValue().equals(value)) {
                wrong.add(PKCS11Constants.ckaCodeToName(e.getKey()) + "=" + value + " (want " + e.getValue() + ")");
            }
        }
        assertEquals(List.of(), wrong);
    }

    @ParameterizedTest
    @EnumSource(KeyAlgorithm.class)
    void secretParts_readDirectlyFromToken_refusedAsSensitive(KeyAlgorithm algorithm) throws Exception {
        GeneratedKey k = sharedKey(algorithm);
        try (TokenInspector t = new TokenInspector(token)) {
            long main = t.only(algorithm.signs() ? CKO_PRIVATE_KEY : CKO_SECRET_KEY, k.id());
            List<Long> secretAttributes = algorithm == KeyAlgorithm.RSA_3072_PSS_SHA256
                    ? List.of(CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT)
                    : List.of(CKA_VALUE);
            for (long type : secretAttributes) {
                assertEquals(CKR_ATTRIBUTE_SENSITIVE, t.readError(main, type), PKCS11Constants.ckaCodeToName(type));
            }
        }
    }

    @Test
    void wrapKey_masterKeyUnderAnotherKey_refusedAsUnextractable() throws Exception {
        GeneratedKey master = sharedKey(KeyAlgorithm.AES_256_GCM);
        GeneratedKey signer = sharedKey(KeyAlgorithm.EC_P256_SHA256);
        try (TokenInspector t = new TokenInspector(token)) {
            // A session key that may wrap, made by the "attacker" who holds the PIN.
            long wrapping = t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector()
                    .class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(32).token(false)
                    .wrap(true).unwrap(true).encrypt(true).decrypt(true).extractable(true).sensitive(false));
            long masterHandle = t.only(CKO_SECRET_KEY, master.id());
            long signerHandle = t.only(CKO_PRIVATE_KEY, signer.id());
            for (long target : new long[] {masterHandle, signerHandle}) {
                assertRefused(CKR_KEY_UNEXTRACTABLE, () -> t.raw.C_WrapKey(t.handle(),
                        ckMechanism(CKM_AES_KEY_WRAP_PAD), wrapping, target, true));
            }
            // Nor can the master key wrap anything: it has no CKA_WRAP.
            assertRefused(CKR_KEY_FUNCTION_NOT_PERMITTED, () -> t.raw.C_WrapKey(t.handle(),
                    ckMechanism(CKM_AES_KEY_WRAP_PAD), masterHandle, wrapping, true));
            t.session.destroyObject(wrapping);
        }
    }

    @Test
    void setAttribute_weakeningGeneratedKey_refused() throws Exception {
        GeneratedKey master = sharedKey(KeyAlgorithm.AES_256_GCM);
        GeneratedKey signer = sharedKey(KeyAlgorithm.ED25519);
        try (TokenInspector t = new TokenInspector(token)) {
            long masterHandle = t.only(CKO_SECRET_KEY, master.id());
            long signerHandle = t.only(CKO_PRIVATE_KEY, signer.id());
            for (long object : new long[] {masterHandle, signerHandle}) {
                Set<Long> refusals = Set.of(CKR_ATTRIBUTE_READ_ONLY, CKR_ACTION_PROHIBITED);
                assertTrue(refusals.contains(t.setError(object, new AttributeVector().extractable(true))), "EXTRACTABLE");
                assertTrue(refusals.contains(t.setError(object, new AttributeVector().sensitive(false))), "SENSITIVE");
                // Not modifiable: no usage flag can be added either (SoftHSM would allow it otherwise).
                assertEquals(CKR_ACTION_PROHIBITED, t.setError(object, new AttributeVector().wrap(true)), "WRAP");
                assertEquals(CKR_ACTION_PROHIBITED, t.setError(object, new AttributeVector().decrypt(true)), "DECRYPT");
                assertEquals(CKR_ACTION_PROHIBITED, t.setError(object, new AttributeVector().label("renamed")), "LABEL");
                // Nor copied into a weaker object.
                assertRefused(CKR_ACTION_PROHIBITED, () -> t.raw.C_CopyObject(t.handle(), object,
                        new AttributeVector().token(false).toCkAttributes(), true));
                assertEquals(Boolean.FALSE, t.attribute(object, CKA_EXTRACTABLE));
                assertEquals(Boolean.TRUE, t.attribute(object, CKA_SENSITIVE));
            }
        }
    }

    // ---------------------------------------------------------------- list() of foreign objects

    @Test
    void list_weakKeyMadeOutsideTheEnclave_reportedWithItsWeaknesses() throws Exception {
        ObjectId id = ObjectId.random();
        try (TokenInspector t = new TokenInspector(token)) {
            // What a careless tool makes: token defaults plus wrap and decrypt on one key.
            t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector()
                    .class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(32).token(true).private_(true)
                    .sensitive(false).extractable(true).encrypt(true).decrypt(true).wrap(true).unwrap(true)
                    .id(id.bytes()).label("weak"));
        }
        try {
            EnclaveObject weak = enclave.list().stream().filter(o -> o.id().equals(id)).findFirst().orElseThrow();
            assertEquals(KeyAlgorithm.AES_256_GCM, weak.algorithm());
            assertEquals("weak", weak.label());
            String reasons = String.join("\n", weak.protection().weaknesses(weak.algorithm()));
            for (String expected : List.of("CKA_SENSITIVE=false", "CKA_ALWAYS_SENSITIVE=false", "CKA_EXTRACTABLE=true",
                    "CKA_NEVER_EXTRACTABLE=false", "CKA_MODIFIABLE=true", "CKA_COPYABLE=true", "wrap and decrypt",
                    "unwrap and encrypt", "must not wrap or unwrap")) {
                assertTrue(reasons.contains(expected), expected + " in:\n" + reasons);
            }
        } finally {
            enclave.destroy(id);
        }
    }

    @Test
    void list_keyOfAnotherAlgorithm_reportedWithNullAlgorithm() throws Exception {
        ObjectId aes128 = ObjectId.random();
        ObjectId secp256k1 = ObjectId.random();
        try (TokenInspector t = new TokenInspector(token)) {
            t.session.generateKey(new Mechanism(CKM_AES_KEY_GEN), KeyTemplates.secretKey(aes128, "aes-128").valueLen(16));
            var template = KeyTemplates.keyPair(KeyAlgorithm.EC_P256_SHA256, secp256k1, "k1");
            template.publicKey().ecParams(java.util.HexFormat.of().parseHex("06052b8104000a"));
            t.session.generateKeyPair(new Mechanism(CKM_EC_KEY_PAIR_GEN), template);
        }
        try {
            List<EnclaveObject> listed = enclave.list();
            for (ObjectId id : List.of(aes128, secp256k1)) {
                EnclaveObject o = listed.stream().filter(e -> e.id().equals(id)).findFirst().orElseThrow();
                assertNull(o.algorithm(), o.label());
            }
            // And it is never used as if it were one of ours.
            assertThrows(EnclaveException.BadInput.class, () -> enclave.encrypt(aes128, new byte[0], new byte[1]));
            assertThrows(EnclaveException.BadInput.class,
                    () -> enclave.sign(secp256k1, KeyAlgorithm.EC_P256_SHA256, new byte[32]));
        } finally {
            enclave.destroy(aes128);
            enclave.destroy(secp256k1);
        }
    }

    // ---------------------------------------------------------------- algorithm mismatches

    @Test
    void sign_algorithmOtherThanTheKeys_throwsBadInput() throws Exception {
        GeneratedKey p256 = sharedKey(KeyAlgorithm.EC_P256_SHA256);
        // A P-384-sized digest on a P-256 key would be truncated silently by CKM_ECDSA.
        assertThrows(EnclaveException.BadInput.class, () -> enclave.sign(p256.id(), KeyAlgorithm.EC_P384_SHA384, new byte[48]));
        assertThrows(EnclaveException.BadInput.class,
                () -> enclave.sign(p256.id(), KeyAlgorithm.RSA_3072_PSS_SHA256, new byte[32]));
        assertThrows(EnclaveException.BadInput.class, () -> enclave.publicKey(p256.id(), KeyAlgorithm.ED25519));
    }

    @Test
    void sign_ed25519EmptyMessage_unsupportedAndNextCallsWork() throws Exception {
        GeneratedKey ed = sharedKey(KeyAlgorithm.ED25519);
        assertThrows(EnclaveException.Unsupported.class, () -> enclave.sign(ed.id(), KeyAlgorithm.ED25519, new byte[0]));
        byte[] message = {1};
        assertTrue(verify(KeyAlgorithm.ED25519, ed.publicKey(), message, enclave.sign(ed.id(), KeyAlgorithm.ED25519, message)));
    }

    @Test
    void failedOperations_neverLeaveAStuckSessionOrLogOut() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        Sealed sealed = enclave.encrypt(key, new byte[0], new byte[] {1});
        // More failures than the pool has sessions: each failed session is replaced, and
        // replacing never closes the last session (which would log the application out).
        for (int i = 0; i < 3 * Pkcs11Config.DEFAULT_SESSION_POOL_SIZE; i++) {
            assertThrows(EnclaveException.AuthenticationFailed.class, () -> enclave.decrypt(key, new byte[] {9}, sealed));
        }
        int reopens = pkcs11().reopenCount();
        assertEquals(1, enclave.decrypt(key, new byte[0], sealed).length());
        assertEquals(reopens, pkcs11().reopenCount(), "no reopen was needed");
    }

    @Test
    void encrypt_withSigningKeyId_throwsObjectNotFound() throws Exception {
        GeneratedKey p256 = sharedKey(KeyAlgorithm.EC_P256_SHA256);
        // There is no secret key with that id.
        assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.encrypt(p256.id(), new byte[0], new byte[1]));
    }

    // ---------------------------------------------------------------- recovery

    @Test
    void allSessionsClosedBehindItsBack_nextOperationsSucceedAfterOneReopen() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        GeneratedKey signer = sharedKey(KeyAlgorithm.EC_P256_SHA256);
        Sealed before = enclave.encrypt(key, new byte[] {7}, new byte[] {1, 2, 3});
        int reopens = pkcs11().reopenCount();
        try (TokenInspector t = new TokenInspector(token)) {
            // Also logs the application out: its last session on the token is gone.
            t.raw.C_CloseAllSessions(t.slot.getSlotID());
        }
        try (SecretBytes back = enclave.decrypt(key, new byte[] {7}, before)) {
            assertArrayEquals(new byte[] {1, 2, 3}, back.reveal());
        }
        assertEquals(reopens + 1, pkcs11().reopenCount());
        byte[] digest = signingInput(KeyAlgorithm.EC_P256_SHA256, new byte[] {9});
        assertTrue(verify(KeyAlgorithm.EC_P256_SHA256, signer.publicKey(), new byte[] {9},
                enclave.sign(signer.id(), KeyAlgorithm.EC_P256_SHA256, digest)));
        assertEquals(reopens + 1, pkcs11().reopenCount(), "one reopen serves every later call");
    }

    @Test
    void loggedOutBehindItsBack_nextOperationLogsInAgain() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        int reopens = pkcs11().reopenCount();
        try (TokenInspector t = new TokenInspector(token)) {
            t.session.logout(); // logs out every session of this application on the token
        }
        Sealed sealed = enclave.encrypt(key, new byte[0], new byte[] {5});
        try (SecretBytes back = enclave.decrypt(key, new byte[0], sealed)) {
            assertArrayEquals(new byte[] {5}, back.reveal());
        }
        assertEquals(reopens + 1, pkcs11().reopenCount());
    }

    /**
     * Eight threads keep using the enclave while all its sessions are closed three times; each
     * loss is discovered by several threads at once, one reopens, the others retry on the new
     * sessions. The closing never overlaps a call into SoftHSM (a read/write lock around each
     * call): SoftHSM 2.6.1 frees a session in C_CloseAllSessions while another thread may still
     * be inside a call on it (seen as CKR_GENERAL_ERROR from C_EncryptInit; a use after free),
     * a race of the simulation, not of a real device removal.
     */
    @Test
    void sessionsClosedRepeatedlyDuringConcurrentUse_everyOperationSucceeds() throws Exception {
        ObjectId key = sharedKey(KeyAlgorithm.AES_256_GCM).id();
        int reopens = pkcs11().reopenCount();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger operations = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.locks.ReentrantReadWriteLock calls = new java.util.concurrent.locks.ReentrantReadWriteLock();
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
             TokenInspector t = new TokenInspector(token)) {
            List<Future<Integer>> results = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                results.add(threads.submit(() -> {
                    int wrong = 0;
                    while (!stop.get()) {
                        byte[] plaintext = bytes(24);
                        Sealed sealed;
                        calls.readLock().lock();
                        try {
                            sealed = enclave.encrypt(key, new byte[] {1}, plaintext);
                        } finally {
                            calls.readLock().unlock();
                        }
                        calls.readLock().lock();
                        try (SecretBytes back = enclave.decrypt(key, new byte[] {1}, sealed)) {
                            if (!java.util.Arrays.equals(plaintext, back.reveal())) {
                                wrong++;
                            }
                        } finally {
                            calls.readLock().unlock();
                        }
                        operations.incrementAndGet();
                    }
                    return wrong;
                }));
            }
            for (int i = 0; i < 3; i++) {
                // Let the workers make progress between losses: wait on their count, not a clock.
                awaitAtLeast(operations, operations.get() + 50);
                calls.writeLock().lock();
                try {
                    t.raw.C_CloseAllSessions(t.slot.getSlotID());
                } finally {
                    calls.writeLock().unlock();
                }
            }
            awaitAtLeast(operations, operations.get() + 50);
            stop.set(true);
            for (Future<Integer> r : results) {
                assertEquals(0, r.get()); // and no exception: every call recovered
            }
        }
        assertTrue(operations.get() > 100, "operations: " + operations.get());
        assertTrue(pkcs11().reopenCount() >= reopens + 3,
                "reopened " + (pkcs11().reopenCount() - reopens) + " times for 3 losses");
    }

    /** Polls {@code counter} until it reaches {@code target} (fails after 60 s). */
    private static void awaitAtLeast(java.util.concurrent.atomic.AtomicInteger counter, int target) {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
        while (counter.get() < target) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("workers stalled at " + counter.get() + " operations, waiting for " + target);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }

    @Test
    void tokenReinitialisedBehindItsBack_unavailableWithReason_thenRecoversWhenProvisioned() throws Exception {
        TestTokens.TestToken other = TestTokens.fresh("p11-reinit");
        try (Pkcs11Enclave e = other.open()) {
            assertEquals(4, e.random(4).length());
            // An operator resets the token: all sessions closed, token initialised afresh (its
            // keys and its user PIN gone). C_InitToken needs a token without open sessions.
            try (TokenInspector t = new TokenInspector(other)) {
                t.raw.C_CloseAllSessions(t.slot.getSlotID());
                t.raw.C_InitToken(t.slot.getSlotID(), other.soPin().toCharArray(),
                        String.format("%-32s", other.label()).toCharArray(), true);
            }
            EnclaveException.Unavailable down = assertThrows(EnclaveException.Unavailable.class, () -> e.random(4));
            assertTrue(down.getMessage().contains("CKR_USER_PIN_NOT_INITIALIZED"), down.getMessage());
            assertTrue(down.getMessage().contains("provision"), down.getMessage());
            // Still down for everything that needs the login (C_GenerateRandom does not).
            EnclaveException.Unavailable still = assertThrows(EnclaveException.Unavailable.class, e::list);
            assertTrue(still.getMessage().contains("CKR_USER_PIN_NOT_INITIALIZED"), still.getMessage());

            // Provisioned again with the same PINs: the enclave comes back by itself.
            assertTrue(Pkcs11Provisioner.provision(other.config().library(), other.label(), other.soPinFile(),
                    other.userPinFile()).created());
            assertEquals(4, e.random(4).length());
            ObjectId id = ObjectId.random();
            e.generate(id, KeyAlgorithm.AES_256_GCM, "after reset");
            assertEquals(1, e.list().size());
        }
    }

    @Test
    void closed_operations_throwUnavailable() throws Exception {
        Pkcs11Enclave second = token.open();
        second.close();
        second.close(); // idempotent
        assertThrows(EnclaveException.Unavailable.class, () -> second.random(8));
        // Closing one enclave leaves another on the same token logged in and working.
        assertEquals(8, enclave.random(8).length());
        assertEquals(8, enclave.encrypt(sharedKey(KeyAlgorithm.AES_256_GCM).id(), new byte[0], new byte[8])
                .ciphertext().length - 16);
    }

    @Test
    void twoTokensInOneProcess_eachSeesOnlyItsOwnKeys() throws Exception {
        TestTokens.TestToken other = TestTokens.fresh("p11-second");
        try (Pkcs11Enclave second = other.open()) {
            ObjectId id = ObjectId.random();
            second.generate(id, KeyAlgorithm.AES_256_GCM, "second");
            Sealed sealed = second.encrypt(id, new byte[0], new byte[] {42});
            assertThrows(EnclaveException.ObjectNotFound.class, () -> enclave.decrypt(id, new byte[0], sealed));
            assertTrue(enclave.list().stream().noneMatch(o -> o.id().equals(id)));
            assertEquals(other.label(), second.info().label());
            assertEquals(token.label(), enclave.info().label());
        }
    }

    @Test
    void info_softHsmToken_reportsLabelMakerAndUnknownFreeSpace() throws Exception {
        EnclaveInfo info = enclave.info();
        assertEquals("pkcs11", info.kind());
        assertEquals(token.label(), info.label());
        assertEquals("SoftHSM project", info.manufacturer());
        assertEquals("SoftHSM v2", info.model());
        assertFalse(info.serial().isBlank());
        assertEquals("2.6", info.firmwareVersion());
        assertEquals(-1, info.freeSpace());
    }

    // ---------------------------------------------------------------- PIN and login

    @Test
    void open_pinFileReadableByOthers_refusedWithoutShowingThePin() throws Exception {
        for (String mode : List.of("rw-r--r--", "rw-r-----", "rw----r--", "rwx------", "rw--w----")) {
            Path pin = TestTokens.writePinFile("mode", token.userPin());
            Files.setPosixFilePermissions(pin, PosixFilePermissions.fromString(mode));
            EnclaveException.Unavailable e = assertThrows(EnclaveException.Unavailable.class,
                    () -> Pkcs11Enclave.open(Pkcs11Config.forLabel(token.label(), pin)));
            assertTrue(e.getMessage().contains("mode"), e.getMessage());
            assertTrue(e.getMessage().contains(pin.toString()), e.getMessage());
            assertFalse(e.getMessage().contains(token.userPin()), "message shows the PIN");
        }
        Path pin = TestTokens.writePinFile("mode", token.userPin());
        Files.setPosixFilePermissions(pin, PosixFilePermissions.fromString("rw-r--r--"));
        Pkcs11Pins.RefusedException e = assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(pin));
        assertTrue(e.getMessage().contains("0644"), e.getMessage());
    }

    @Test
    void open_pinFile0400_accepted() throws Exception {
        Path pin = TestTokens.writePinFile("ro", token.userPin() + "\n");
        Files.setPosixFilePermissions(pin, PosixFilePermissions.fromString("r--------"));
        try (Pkcs11Enclave e = Pkcs11Enclave.open(Pkcs11Config.forLabel(token.label(), pin))) {
            assertEquals(4, e.random(4).length());
        }
    }

    @Test
    void open_pinFileSymlinkOrDirectory_refused() throws Exception {
        Path link = token.userPinFile().resolveSibling("link-" + ObjectId.random().hex() + ".pin");
        Files.createSymbolicLink(link, token.userPinFile());
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(link));
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(link.getParent()));
    }

    @Test
    void open_pinFileOwnedByAnotherUser_refused() throws Exception {
        Path pin = TestTokens.writePinFile("owner", "1234");
        UserPrincipal nobody = pin.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody");
        boolean root = "root".equals(System.getProperty("user.name"));
        if (root) {
            Files.setOwner(pin, nobody);
            Pkcs11Pins.RefusedException e = assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(pin));
            assertTrue(e.getMessage().contains("owned by uid"), e.getMessage());
        } else {
            // Only root can give a file away; an ordinary user can still check its own files pass.
            assertArrayEquals("1234".toCharArray(), Pkcs11Pins.read(pin));
        }
    }

    @Test
    void readPin_trailingNewline_strippedOnce() throws Exception {
        assertArrayEquals("abc".toCharArray(), Pkcs11Pins.read(TestTokens.writePinFile("nl", "abc\n")));
        assertArrayEquals("abc".toCharArray(), Pkcs11Pins.read(TestTokens.writePinFile("crlf", "abc\r\n")));
        assertArrayEquals("abc".toCharArray(), Pkcs11Pins.read(TestTokens.writePinFile("none", "abc")));
        assertArrayEquals("abc\n".toCharArray(), Pkcs11Pins.read(TestTokens.writePinFile("two", "abc\n\n")));
        assertArrayEquals(" pässwörd ".toCharArray(), Pkcs11Pins.read(TestTokens.writePinFile("utf8", " pässwörd \n")));
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(TestTokens.writePinFile("empty", "")));
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(TestTokens.writePinFile("nlonly", "\n")));
        assertThrows(Pkcs11Pins.RefusedException.class, () -> Pkcs11Pins.read(TestTokens.writePinFile("big", "x".repeat(300))));
    }

    @Test
    void open_wrongUserPin_unavailableWithoutShowingEitherPin() throws Exception {
        String wrongPin = "wrong-" + ObjectId.random().hex();
        Path pin = TestTokens.writePinFile("wrong", wrongPin);
        // Login is per process and token: while this class's enclave is logged in, a second
        // login is not checked at all, so use a token no one here is logged in to.
        TestTokens.TestToken other = TestTokens.fresh("p11-wrongpin");
        EnclaveException.Unavailable e = assertThrows(EnclaveException.Unavailable.class,
                () -> Pkcs11Enclave.open(Pkcs11Config.forLabel(other.label(), pin)));
        assertTrue(e.getMessage().contains("CKR_PIN_INCORRECT"), e.getMessage());
        assertFalse(e.getMessage().contains(wrongPin));
        assertFalse(e.getMessage().contains(other.userPin()));
        // The right PIN still works: nothing was locked.
        try (Pkcs11Enclave right = other.open()) {
            assertEquals(1, right.random(1).length());
        }
    }

    @Test
    void open_unknownTokenOrLibrary_unavailable() throws Exception {
        EnclaveException.Unavailable noToken = assertThrows(EnclaveException.Unavailable.class,
                () -> Pkcs11Enclave.open(Pkcs11Config.forLabel("no-such-token", token.userPinFile())));
        assertTrue(noToken.getMessage().contains("no-such-token"), noToken.getMessage());
        EnclaveException.Unavailable noLibrary = assertThrows(EnclaveException.Unavailable.class,
                () -> Pkcs11Enclave.open(Pkcs11Config.forLabel(token.label(), token.userPinFile())
                        .withLibrary(Path.of("/nonexistent/libpkcs11.so"))));
        assertTrue(noLibrary.getMessage().contains("/nonexistent/libpkcs11.so"), noLibrary.getMessage());
    }

    @Test
    void open_bySerial_findsTheSameToken() throws Exception {
        String serial = enclave.info().serial();
        try (Pkcs11Enclave bySerial = Pkcs11Enclave.open(Pkcs11Config.forSerial(serial, token.userPinFile()))) {
            assertEquals(token.label(), bySerial.info().label());
            GeneratedKey k = sharedKey(KeyAlgorithm.AES_256_GCM);
            Sealed sealed = enclave.encrypt(k.id(), new byte[0], "x".getBytes(StandardCharsets.UTF_8));
            assertEquals(1, bySerial.decrypt(k.id(), new byte[0], sealed).length());
        }
    }

    @Test
    void generate_overlongLabel_throwsBadInput() {
        assertThrows(EnclaveException.BadInput.class,
                () -> enclave.generate(ObjectId.random(), KeyAlgorithm.AES_256_GCM, "x".repeat(256)));
    }

    // ---------------------------------------------------------------- HMAC against an independent implementation

    @Test
    void hmac_keyOfKnownValue_matchesJcaHmacSha256() throws Exception {
        // The SPI never imports keys, so the known key is created with C_CreateObject as the
        // enclave's template would have it (but with CKA_VALUE given): the enclave then finds
        // it by id and must compute what the JDK's HmacSHA256 computes with the same bytes.
        byte[] keyBytes = java.util.HexFormat.of().parseHex(
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        ObjectId id = ObjectId.random();
        try (TokenInspector t = new TokenInspector(token)) {
            t.session.createObject(new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_GENERIC_SECRET)
                    .value(keyBytes).token(true).private_(true).sensitive(true).extractable(false)
                    .copyable(false).derive(false).encrypt(false).decrypt(false).wrap(false).unwrap(false)
                    .sign(true).verify(false).id(id.bytes()).label("known hmac key").modifiable(false));
        }
        try {
            javax.crypto.Mac jca = javax.crypto.Mac.getInstance("HmacSHA256");
            jca.init(new javax.crypto.spec.SecretKeySpec(keyBytes, "HmacSHA256"));
            for (int length : new int[] {0, 1, 55, 64, 65, 1000, Enclave.MAX_HMAC_INPUT_BYTES}) {
                byte[] data = bytes(length);
                assertArrayEquals(jca.doFinal(data), enclave.hmac(id, data), length + " bytes");
            }
        } finally {
            enclave.destroy(id);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static iaik.pkcs.pkcs11.wrapper.CK_MECHANISM ckMechanism(long mechanism) {
        iaik.pkcs.pkcs11.wrapper.CK_MECHANISM m = new iaik.pkcs.pkcs11.wrapper.CK_MECHANISM();
        m.mechanism = mechanism;
        return m;
    }

    @FunctionalInterface
    private interface RawCall {
        void run() throws iaik.pkcs.pkcs11.wrapper.PKCS11Exception;
    }

    private static void assertRefused(long expectedCode, RawCall call) {
        iaik.pkcs.pkcs11.wrapper.PKCS11Exception e =
                assertThrows(iaik.pkcs.pkcs11.wrapper.PKCS11Exception.class, call::run);
        assertEquals(PKCS11Constants.ckrCodeToName(expectedCode), PKCS11Constants.ckrCodeToName(e.getErrorCode()));
    }
}
