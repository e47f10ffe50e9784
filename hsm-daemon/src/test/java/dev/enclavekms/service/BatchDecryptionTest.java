package dev.enclavekms.service;

import dev.enclavekms.enclave.Enclave;
import dev.enclavekms.enclave.EnclaveException;
import dev.enclavekms.enclave.EnclaveInfo;
import dev.enclavekms.enclave.EnclaveObject;
import dev.enclavekms.enclave.KeyAlgorithm;
import dev.enclavekms.enclave.ObjectId;
import dev.enclavekms.enclave.Sealed;
import dev.enclavekms.enclave.SecretBytes;
import dev.enclavekms.enclave.pkcs11.Pkcs11Enclave;
import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.format.Envelope;
import dev.enclavekms.registry.Purpose;
import dev.enclavekms.registry.RegistryCommand;
import dev.enclavekms.registry.SqliteRegistryStore;
import dev.enclavekms.registry.VersionState;
import dev.enclavekms.testing.TestTokens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.security.PublicKey;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.enclavekms.service.BatchDecryption.CHUNK_ENTRIES;
import static dev.enclavekms.service.BatchDecryption.FIRST_CHUNK_ENTRIES;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DecryptBatch as chunks on a real SoftHSM token and a real registry: every size around the
 * chunk boundaries, per-entry errors anywhere in a chunk, mixed key versions, and a failing
 * device or sink in the middle of a batch (every plaintext the device produced is wiped).
 */
class BatchDecryptionTest {
    private static final EncryptionContext CTX = EncryptionContext.of(Map.of("model", "llama-3-8b"));

    @TempDir
    static Path dir;
    static Pkcs11Enclave enclave;
    static SqliteRegistryStore registry;
    static KeyAdmin admin;
    static CryptoService crypto;
    static KeyHealth health;
    static UsageMeter usage;

    @BeforeAll
    static void setUp() throws Exception {
        enclave = TestTokens.fresh("batch-decryption").open();
        registry = SqliteRegistryStore.open(dir.resolve("registry.db"));
        admin = new KeyAdmin(enclave, registry, Clock.systemUTC());
        admin.createKey("weights", Purpose.ENCRYPT, null, "", List.of("model"));
        health = KeyHealth.reconcile(enclave, registry.list());
        usage = new UsageMeter(registry, UsageMeter.DEFAULT_ROTATION_LIMIT, () -> { });
        crypto = new CryptoService(enclave, registry, health, usage);
    }

    @AfterAll
    static void tearDown() {
        registry.close();
        enclave.close();
    }

    /** What the sink saw: the chunks in order and the threads it ran on. */
    private static final class Recorder implements CryptoService.BatchSink {
        final List<CryptoService.BatchEntry> entries = Collections.synchronizedList(new ArrayList<>());
        final List<Integer> chunkSizes = Collections.synchronizedList(new ArrayList<>());
        final List<Thread> threads = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void accept(List<CryptoService.BatchEntry> chunk) {
            chunkSizes.add(chunk.size());
            threads.add(Thread.currentThread());
            entries.addAll(chunk);
        }
    }

    private static List<CryptoService.GeneratedDataKey> dataKeys(String key, int n) throws KmsError {
        return n == 0 ? List.of() : crypto.generateDataKeys(key, CTX, 32, n);
    }

    private static List<byte[]> ciphertexts(List<CryptoService.GeneratedDataKey> keys) {
        return new ArrayList<>(keys.stream().map(CryptoService.GeneratedDataKey::ciphertext).toList());
    }

    @Test
    void everySizeAroundTheChunkBoundaries_decryptsEveryEntryInOrder() throws Exception {
        List<CryptoService.GeneratedDataKey> keys = dataKeys("weights", 2 * CHUNK_ENTRIES + 1);
        // The chunks grow from FIRST_CHUNK_ENTRIES (16, 64, 256, ...): sizes on both sides of their ends.
        for (int n : new int[] {0, 1, FIRST_CHUNK_ENTRIES - 1, FIRST_CHUNK_ENTRIES, FIRST_CHUNK_ENTRIES + 1, 80, 81,
                CHUNK_ENTRIES, 336, 337, 2 * CHUNK_ENTRIES + 1}) {
            Recorder sink = new Recorder();
            crypto.decryptBatch(ciphertexts(keys.subList(0, n)), CTX, sink);
            assertEquals(n, sink.entries.size(), "entries for " + n);
            for (int i = 0; i < n; i++) {
                CryptoService.BatchEntry e = sink.entries.get(i);
                assertNull(e.error(), "entry " + i + " of " + n);
                assertArrayEquals(keys.get(i).plaintext().reveal(), e.result().plaintext().reveal(), "entry " + i + " of " + n);
                assertEquals("weights", e.result().key());
                e.result().close();
            }
            assertEquals(BatchDecryption.chunkSizes(n), sink.chunkSizes, "chunks for " + n);
            assertTrue(sink.chunkSizes.stream().allMatch(s -> s >= 1 && s <= CHUNK_ENTRIES), sink.chunkSizes.toString());
            if (n > 0) assertEquals(Math.min(n, FIRST_CHUNK_ENTRIES), sink.chunkSizes.getFirst(), "a small first chunk");
            if (n > 0) {
                // Every chunk but the last is encoded beside the device; the last one on the
                // calling thread, after the device, with no hand-off left.
                assertTrue(sink.threads.subList(0, sink.threads.size() - 1).stream().noneMatch(t -> t == Thread.currentThread()),
                        "the sink runs beside the device, not on the caller's thread");
                assertSame(Thread.currentThread(), sink.threads.getLast(), "the last chunk on the caller's thread");
            }
        }
    }

    @Test
    void errorsAtTheEdgesAndInTheMiddleOfChunks_areReportedPerEntry() throws Exception {
        int n = 2 * CHUNK_ENTRIES + 2;
        List<CryptoService.GeneratedDataKey> keys = dataKeys("weights", n);
        List<byte[]> cts = ciphertexts(keys);
        List<Integer> tampered = List.of(0, CHUNK_ENTRIES - 1, CHUNK_ENTRIES, CHUNK_ENTRIES + 7, n - 1);
        for (int i : tampered) {
            byte[] bad = cts.get(i).clone();
            bad[bad.length - 1] ^= 1;
            cts.set(i, bad);
        }
        int garbage = CHUNK_ENTRIES / 2;
        cts.set(garbage, new byte[3]);
        // Two entries naming a key that does not exist, one each side of a chunk boundary:
        // the lookup is decided once per call, and each entry still gets its own answer.
        List<Integer> unknown = List.of(CHUNK_ENTRIES + 1, 2 * CHUNK_ENTRIES - 3);
        for (int i : unknown) {
            Envelope env = Envelope.parse(cts.get(i));
            cts.set(i, new Envelope("no-such-key", env.keyVersion(), env.scheme(), env.iv(), env.ciphertext()).encode());
        }

        List<CryptoService.BatchEntry> r = crypto.decryptBatch(cts, CTX);

        assertEquals(n, r.size());
        for (int i = 0; i < n; i++) {
            CryptoService.BatchEntry e = r.get(i);
            if (tampered.contains(i) || i == garbage) {
                assertInstanceOf(KmsError.DecryptionFailed.class, e.error(), "entry " + i);
                assertNull(e.result());
            } else if (unknown.contains(i)) {
                KmsError.KeyNotFound nf = assertInstanceOf(KmsError.KeyNotFound.class, e.error(), "entry " + i);
                assertTrue(nf.getMessage().contains("no-such-key"), nf.getMessage());
            } else {
                assertNull(e.error(), "entry " + i);
                assertArrayEquals(keys.get(i).plaintext().reveal(), e.result().plaintext().reveal(), "entry " + i);
            }
        }
        BatchDecryption.close(r);
    }

    @Test
    void mixedKeyVersions_eachEntryUsesItsOwnVersion_andAStateChangeShowsInTheNextCall() throws Exception {
        admin.createKey("rollout", Purpose.ENCRYPT, null, "", List.of());
        List<CryptoService.GeneratedDataKey> v1 = dataKeys("rollout", CHUNK_ENTRIES);
        ObjectId v2Id = ObjectId.random();
        enclave.generate(v2Id, KeyAlgorithm.AES_256_GCM, "rollout v2");
        registry.apply(new RegistryCommand.AddVersion("rollout", 2, v2Id, VersionState.ENABLED, false, Instant.now()));
        registry.apply(new RegistryCommand.SetPrimaryVersion("rollout", 2, Instant.now()));
        List<CryptoService.GeneratedDataKey> v2 = dataKeys("rollout", CHUNK_ENTRIES);
        List<CryptoService.GeneratedDataKey> mixed = new ArrayList<>();
        List<CryptoService.GeneratedDataKey> weights = dataKeys("weights", CHUNK_ENTRIES / 2);
        for (int i = 0; i < CHUNK_ENTRIES; i++) {
            mixed.add(i % 3 == 0 ? v2.get(i) : v1.get(i)); // both versions in every chunk
            if (i % 2 == 0) mixed.add(weights.get(i / 2)); // and another key
        }

        List<CryptoService.BatchEntry> r = crypto.decryptBatch(ciphertexts(mixed), CTX);
        assertEquals(mixed.size(), r.size());
        for (int i = 0; i < mixed.size(); i++) {
            assertNull(r.get(i).error(), "entry " + i);
            assertEquals(mixed.get(i).key(), r.get(i).result().key());
            assertEquals(mixed.get(i).version(), r.get(i).result().version(), "entry " + i);
            assertArrayEquals(mixed.get(i).plaintext().reveal(), r.get(i).result().plaintext().reveal(), "entry " + i);
        }
        BatchDecryption.close(r);

        // The per-call decisions are per call: the next batch sees version 1 disabled.
        registry.apply(new RegistryCommand.SetVersionState("rollout", 1, VersionState.DISABLED, Instant.now()));
        try {
            r = crypto.decryptBatch(ciphertexts(mixed), CTX);
            for (int i = 0; i < mixed.size(); i++) {
                boolean disabled = mixed.get(i).key().equals("rollout") && mixed.get(i).version() == 1;
                if (disabled) {
                    KmsError.KeyVersionUnusable u = assertInstanceOf(KmsError.KeyVersionUnusable.class, r.get(i).error(),
                            "entry " + i);
                    assertEquals("DISABLED", u.state());
                } else {
                    assertNull(r.get(i).error(), "entry " + i);
                }
            }
            BatchDecryption.close(r);
        } finally {
            registry.apply(new RegistryCommand.SetVersionState("rollout", 1, VersionState.ENABLED, Instant.now()));
        }
    }

    @Test
    void deviceFailureInTheMiddleOfAChunk_failsTheCall_andWipesEveryPlaintext() throws Exception {
        List<CryptoService.GeneratedDataKey> keys = dataKeys("weights", 2 * CHUNK_ENTRIES + 5);
        FailingEnclave failing = new FailingEnclave(enclave, CHUNK_ENTRIES + 10);
        CryptoService service = new CryptoService(failing, registry, health, usage);
        List<Integer> seen = Collections.synchronizedList(new ArrayList<>());

        KmsError.EnclaveUnavailable e = assertThrows(KmsError.EnclaveUnavailable.class,
                () -> service.decryptBatch(ciphertexts(keys), CTX, chunk -> {
                    seen.add(chunk.size());
                    chunk.forEach(b -> b.result().close()); // as KmsApi does once it has encoded them
                }));

        assertTrue(e.getMessage().contains("unavailable"), e.getMessage());
        assertEquals(CHUNK_ENTRIES + 10, failing.produced.size(), "the device stopped at the failure");
        assertTrue(failing.produced.stream().allMatch(FailingEnclave::wiped), "every plaintext is wiped");
        List<Integer> finished = new ArrayList<>();
        for (int size : BatchDecryption.chunkSizes(keys.size())) {
            if (finished.stream().mapToInt(Integer::intValue).sum() + size > CHUNK_ENTRIES + 10) break;
            finished.add(size);
        }
        assertEquals(List.of(FIRST_CHUNK_ENTRIES, 4 * FIRST_CHUNK_ENTRIES), finished); // 16 + 64 end before 266
        assertEquals(finished, seen, "only the finished chunks reached the sink");
    }

    @Test
    void sinkFailure_failsTheCall_stopsTheDevice_andWipesEveryPlaintext() throws Exception {
        List<CryptoService.GeneratedDataKey> keys = dataKeys("weights", 3 * CHUNK_ENTRIES);
        FailingEnclave counting = new FailingEnclave(enclave, Integer.MAX_VALUE);
        CryptoService service = new CryptoService(counting, registry, health, usage);
        IllegalStateException bug = new IllegalStateException("the sink's bug");
        AtomicInteger calls = new AtomicInteger();

        IllegalStateException thrown = assertThrows(IllegalStateException.class,
                () -> service.decryptBatch(ciphertexts(keys), CTX, chunk -> {
                    if (calls.incrementAndGet() == 1) {
                        throw bug; // without closing: the batch must close them
                    }
                    chunk.forEach(b -> b.result().close());
                }));

        assertSame(bug, thrown);
        assertEquals(1, calls.get(), "no chunk reaches a sink that failed");
        assertTrue(counting.produced.stream().allMatch(FailingEnclave::wiped), "every plaintext is wiped");
        assertNotEquals(0, counting.produced.size());
    }

    @Test
    void sinkFailureOnTheLastChunk_onTheCallersThread_failsTheCall_andWipesEveryPlaintext() throws Exception {
        List<CryptoService.GeneratedDataKey> keys = dataKeys("weights", CHUNK_ENTRIES + 3);
        int chunks = BatchDecryption.chunkSizes(keys.size()).size();
        FailingEnclave counting = new FailingEnclave(enclave, Integer.MAX_VALUE);
        CryptoService service = new CryptoService(counting, registry, health, usage);
        IllegalStateException bug = new IllegalStateException("the sink's bug on the last chunk");
        AtomicInteger calls = new AtomicInteger();

        IllegalStateException thrown = assertThrows(IllegalStateException.class,
                () -> service.decryptBatch(ciphertexts(keys), CTX, chunk -> {
                    if (calls.incrementAndGet() == chunks) {
                        throw bug; // without closing: the batch must close them
                    }
                    chunk.forEach(b -> b.result().close());
                }));

        assertSame(bug, thrown);
        assertEquals(chunks, calls.get());
        assertEquals(keys.size(), counting.produced.size());
        assertTrue(counting.produced.stream().allMatch(FailingEnclave::wiped), "every plaintext is wiped");
    }

    /**
     * The real enclave, whose decrypt fails as if the device were gone after {@code failAt}
     * successes, and which keeps every plaintext it produced to check they were wiped.
     */
    private static final class FailingEnclave implements Enclave {
        private final Enclave real;
        private final int failAt;
        final List<SecretBytes> produced = Collections.synchronizedList(new ArrayList<>());

        FailingEnclave(Enclave real, int failAt) {
            this.real = real;
            this.failAt = failAt;
        }

        static boolean wiped(SecretBytes s) {
            try {
                s.reveal();
                return false;
            } catch (IllegalStateException destroyed) {
                return true;
            }
        }

        @Override
        public SecretBytes decrypt(ObjectId key, byte[] aad, Sealed sealed) throws EnclaveException {
            if (produced.size() == failAt) {
                throw new EnclaveException.Unavailable("decrypt failed: CKR_DEVICE_REMOVED", null);
            }
            SecretBytes s = real.decrypt(key, aad, sealed);
            produced.add(s);
            return s;
        }

        @Override
        public EnclaveInfo info() throws EnclaveException {
            return real.info();
        }

        @Override
        public PublicKey generate(ObjectId id, KeyAlgorithm algorithm, String label) throws EnclaveException {
            return real.generate(id, algorithm, label);
        }

        @Override
        public Sealed encrypt(ObjectId key, byte[] aad, byte[] plaintext) throws EnclaveException {
            return real.encrypt(key, aad, plaintext);
        }

        @Override
        public byte[] sign(ObjectId key, KeyAlgorithm algorithm, byte[] input) throws EnclaveException {
            return real.sign(key, algorithm, input);
        }

        @Override
        public byte[] hmac(ObjectId key, byte[] data) throws EnclaveException {
            return real.hmac(key, data);
        }

        @Override
        public PublicKey publicKey(ObjectId key, KeyAlgorithm algorithm) throws EnclaveException {
            return real.publicKey(key, algorithm);
        }

        @Override
        public SecretBytes random(int length) throws EnclaveException {
            return real.random(length);
        }

        @Override
        public void destroy(ObjectId key) throws EnclaveException {
            real.destroy(key);
        }

        @Override
        public List<EnclaveObject> list() throws EnclaveException {
            return real.list();
        }

        @Override
        public void close() {
            // the real enclave is closed by tearDown
        }
    }
}
