package dev.enclavekms.cache;

import dev.enclavekms.client.Plaintext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataKeyCacheTest {
    private static final Map<String, String> CTX = Map.of("model", "llama");
    private static final Duration AGE = Duration.ofMinutes(5);

    private final Keys keys = new Keys();
    private final TestClock clock = new TestClock();
    /** Owns the pages of caches built with {@link #keptCache}: freed only after the test. */
    private final Arena testArena = Arena.ofShared();
    private final List<KeptArena> kept = new ArrayList<>();

    @AfterEach
    void freeTestMemory() {
        testArena.close();
    }

    // ------------------------------------------------------------------ hits, misses, limits

    @Test
    void secondUnwrap_isAHitWithoutTheKms() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            assertArrayEquals(keys.plain(env), c.unwrap(env, CTX));
            assertArrayEquals(keys.plain(env), c.unwrap(env, CTX));
            assertEquals(1, keys.decrypts.get());
            assertEquals(new DataKeyCache.Stats(1, 1, 0, 1), c.stats());
        }
    }

    @Test
    void returnedArray_isAFreshCopy() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            byte[] first = c.unwrap(env, CTX);
            java.util.Arrays.fill(first, (byte) 0); // the shard library wipes what it gets
            assertArrayEquals(keys.plain(env), c.unwrap(env, CTX));
        }
    }

    @Test
    void otherContext_isAMissDecidedByTheKms() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            c.unwrap(env, CTX);
            c.unwrap(env, Map.of("model", "other"));
            assertEquals(2, keys.decrypts.get());
            assertEquals(0, c.stats().hits());
        }
    }

    @Test
    void entryReachingMaxAge_isEvictedAndDecryptedAgain() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            c.unwrap(env, CTX);
            clock.advance(AGE.minusMillis(1));
            c.unwrap(env, CTX);
            assertEquals(1, keys.decrypts.get());
            clock.advance(Duration.ofMillis(1));
            assertEquals(1, c.evictExpired());
            assertEquals(0, c.stats().entries());
            c.unwrap(env, CTX);
            assertEquals(2, keys.decrypts.get());
            assertEquals(new DataKeyCache.Stats(1, 2, 1, 1), c.stats());
        }
    }

    @Test
    void expiredEntry_isEvictedByTheNextUnwrapOfAnyKey() throws Exception {
        byte[] a = keys.add("k", 1);
        byte[] b = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            c.unwrap(a, CTX);
            clock.advance(AGE);
            c.unwrap(b, CTX);
            assertEquals(1, c.stats().evictions());
            assertEquals(1, c.stats().entries());
        }
    }

    @Test
    void entryReachingMaxUses_isEvicted() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE).withMaxUses(3))) {
            for (int i = 0; i < 3; i++) c.unwrap(env, CTX);
            assertEquals(1, keys.decrypts.get());
            assertEquals(new DataKeyCache.Stats(2, 1, 1, 0), c.stats());
            c.unwrap(env, CTX);
            assertEquals(2, keys.decrypts.get());
        }
    }

    @Test
    void maxUsesOfOne_neverCaches() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE).withMaxUses(1))) {
            c.unwrap(env, CTX);
            c.unwrap(env, CTX);
            assertEquals(2, keys.decrypts.get());
            assertEquals(0, c.stats().entries());
        }
    }

    @Test
    void reportedBytesReachingMaxBytes_evict() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE).withMaxBytes(100))) {
            c.unwrap(env, CTX, 60);
            c.unwrap(env, CTX, 30);
            assertEquals(1, c.stats().entries());
            c.unwrap(env, CTX, 10); // 100 reported: this use is served, then the key is retired
            assertEquals(0, c.stats().entries());
            assertEquals(1, keys.decrypts.get());
            c.protecting(100).unwrap(env, CTX); // alone reaches the bound: served, not cached
            assertEquals(2, keys.decrypts.get());
            assertEquals(0, c.stats().entries());
        }
    }

    @Test
    void fullCache_evictsTheEldestEntry() throws Exception {
        byte[] a = keys.add("k", 1);
        byte[] b = keys.add("k", 1);
        byte[] d = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE).withMaxEntries(2))) {
            c.unwrap(a, CTX);
            c.unwrap(b, CTX);
            c.unwrap(d, CTX);
            assertEquals(2, c.stats().entries());
            assertNull(c.segmentOf(a, CTX));
            assertNotNull(c.segmentOf(b, CTX));
            assertNotNull(c.segmentOf(d, CTX));
        }
    }

    // ------------------------------------------------------------------ revocation

    @Test
    void revoke_dropsThatVersionsEntriesOnly() throws Exception {
        byte[] v1a = keys.add("k", 1);
        byte[] v1b = keys.add("k", 1);
        byte[] v2 = keys.add("k", 2);
        byte[] other = keys.add("other", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            for (byte[] e : List.of(v1a, v1b, v2, other)) c.unwrap(e, CTX);
            assertEquals(2, c.revoke("k", 1));
            assertNull(c.segmentOf(v1a, CTX));
            assertNull(c.segmentOf(v1b, CTX));
            assertNotNull(c.segmentOf(v2, CTX));
            assertNotNull(c.segmentOf(other, CTX));
            c.unwrap(v1a, CTX);
            assertEquals(5, keys.decrypts.get());
        }
    }

    @Test
    void revocationDuringAMiss_resultIsServedButNotCached() throws Exception {
        byte[] env = keys.add("k", 1);
        DataKeyCache[] self = new DataKeyCache[1];
        DataKeyCache.Source revokingSource = (e, ctx) -> {
            self[0].revoke("k", 1); // arrives while the KMS call is in flight
            return keys.decrypt(e, ctx);
        };
        try (DataKeyCache c = new DataKeyCache(revokingSource, DataKeyCache.Limits.of(AGE), clock)) {
            self[0] = c;
            assertArrayEquals(keys.plain(env), c.unwrap(env, CTX));
            assertEquals(0, c.stats().entries());
        }
    }

    // ------------------------------------------------------------------ memory

    @Test
    void evictedEntryMemory_readsBackAsZeros() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = keptCache(DataKeyCache.Limits.of(AGE))) {
            c.unwrap(env, CTX);
            MemorySegment page = c.segmentOf(env, CTX);
            assertArrayEquals(keys.plain(env), page.asSlice(0, 32).toArray(ValueLayout.JAVA_BYTE));
            clock.advance(AGE);
            c.evictExpired();
            // Safe to read: the cache closed its arena (a KeptArena), but the pages belong to
            // testArena, which stays open until @AfterEach; in production the arena frees them.
            assertTrue(kept.getFirst().closed);
            assertAllZero(page);
        }
    }

    @Test
    void close_zeroesEveryEntry_andLaterUnwrapsFail() throws Exception {
        byte[] a = keys.add("k", 1);
        byte[] b = keys.add("k", 2);
        DataKeyCache c = keptCache(DataKeyCache.Limits.of(AGE));
        c.unwrap(a, CTX);
        c.unwrap(b, CTX);
        MemorySegment pa = c.segmentOf(a, CTX);
        MemorySegment pb = c.segmentOf(b, CTX);
        c.close();
        c.close(); // idempotent
        assertAllZero(pa); // safe: see evictedEntryMemory_readsBackAsZeros
        assertAllZero(pb);
        assertTrue(kept.stream().allMatch(k -> k.closed));
        assertEquals(2, c.stats().evictions());
        assertThrows(IllegalStateException.class, () -> c.unwrap(a, CTX));
    }

    @Test
    void revokedEntryMemory_readsBackAsZeros() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = keptCache(DataKeyCache.Limits.of(AGE))) {
            c.unwrap(env, CTX);
            MemorySegment page = c.segmentOf(env, CTX);
            c.revoke("k", 1);
            assertAllZero(page); // safe: see evictedEntryMemory_readsBackAsZeros
        }
    }

    @Test
    void productionEntry_isPageAlignedAndFreedOnEviction() throws Exception {
        byte[] env = keys.add("k", 1);
        try (DataKeyCache c = cache(DataKeyCache.Limits.of(AGE))) {
            c.unwrap(env, CTX);
            MemorySegment page = c.segmentOf(env, CTX);
            long pageSize = MemoryLock.libc().pageSize();
            assertEquals(0, page.address() % pageSize);
            assertEquals(pageSize, page.byteSize());
            c.clear();
            // Its own arena is closed: the memory can no longer be reached from Java at all.
            assertFalse(page.scope().isAlive());
        }
    }

    @Test
    void realMlock_locksOrReportsWhy() {
        try (Arena a = Arena.ofConfined()) {
            MemoryLock libc = MemoryLock.libc();
            MemorySegment page = a.allocate(libc.pageSize(), libc.pageSize());
            String failure = libc.lock(page);
            // Either locked, or refused for the documented reasons (RLIMIT_MEMLOCK).
            assertTrue(failure == null || failure.contains("EPERM") || failure.contains("ENOMEM")
                    || failure.contains("EAGAIN"), failure);
            libc.unlock(page);
        }
    }

    @Test
    void mlockRefused_warnsOnceAndStillCaches() throws Exception {
        AtomicInteger attempts = new AtomicInteger();
        MemoryLock refusing = new MemoryLock() {
            @Override
            public String lock(MemorySegment segment) {
                attempts.incrementAndGet();
                return "mlock: EPERM";
            }

            @Override
            public void unlock(MemorySegment segment) {
            }

            @Override
            public long pageSize() {
                return 4096;
            }
        };
        try (LogCapture log = new LogCapture();
             DataKeyCache c = new DataKeyCache(keys::decrypt, DataKeyCache.Limits.of(AGE), clock, refusing,
                     Arena::ofShared)) {
            for (int i = 0; i < 3; i++) {
                byte[] env = keys.add("k", 1);
                assertArrayEquals(keys.plain(env), c.unwrap(env, CTX));
                c.unwrap(env, CTX);
            }
            assertEquals(3, attempts.get());
            assertEquals(3, c.stats().hits());
            List<LogRecord> warnings = log.records.stream().filter(r -> r.getLevel() == Level.WARNING).toList();
            assertEquals(1, warnings.size(), log.text());
            assertTrue(log.text().contains("not locked"), log.text());
        }
    }

    @Test
    void logs_neverContainKeyBytes() throws Exception {
        MemoryLock refusing = new MemoryLock() {
            @Override
            public String lock(MemorySegment segment) {
                return "mlock: ENOMEM";
            }

            @Override
            public void unlock(MemorySegment segment) {
            }

            @Override
            public long pageSize() {
                return 4096;
            }
        };
        List<byte[]> envelopes = new ArrayList<>();
        try (LogCapture log = new LogCapture()) {
            try (DataKeyCache c = new DataKeyCache(keys::decrypt, DataKeyCache.Limits.of(AGE).withMaxEntries(2), clock,
                    refusing, Arena::ofShared)) {
                for (int i = 0; i < 4; i++) {
                    byte[] env = keys.add("k", 1 + i % 2);
                    envelopes.add(env);
                    c.unwrap(env, CTX);
                    c.unwrap(env, CTX);
                }
                c.revoke("k", 1);
                c.revoke("k", 2);
                clock.advance(AGE);
                c.evictExpired();
            }
            assertFalse(log.records.isEmpty(), "expected the warning and revocation lines");
            String text = log.text();
            for (byte[] env : envelopes) {
                byte[] key = keys.plain(env);
                for (String form : List.of(HexFormat.of().formatHex(key), HexFormat.of().withUpperCase().formatHex(key),
                        Base64.getEncoder().encodeToString(key), Base64.getUrlEncoder().withoutPadding().encodeToString(key),
                        java.util.Arrays.toString(key), new String(key, StandardCharsets.ISO_8859_1))) {
                    assertFalse(text.contains(form), "key bytes in the log: " + text);
                }
            }
        }
    }

    // ------------------------------------------------------------------ fixtures

    private DataKeyCache cache(DataKeyCache.Limits limits) {
        return new DataKeyCache(keys::decrypt, limits, clock);
    }

    /** Pages from {@link #testArena}: still readable after the cache closed the entry's arena. */
    private DataKeyCache keptCache(DataKeyCache.Limits limits) {
        return new DataKeyCache(keys::decrypt, limits, clock, MemoryLock.libc(), () -> {
            KeptArena k = new KeptArena(testArena);
            kept.add(k);
            return k;
        });
    }

    private static void assertAllZero(MemorySegment page) {
        byte[] all = page.toArray(ValueLayout.JAVA_BYTE);
        for (int i = 0; i < all.length; i++) {
            if (all[i] != 0) throw new AssertionError("byte " + i + " of an evicted page is not zero");
        }
    }

    /** An arena whose close only records that it was called: the pages stay with the test. */
    private static final class KeptArena implements Arena {
        private final Arena owner;
        volatile boolean closed;

        KeptArena(Arena owner) {
            this.owner = owner;
        }

        @Override
        public MemorySegment allocate(long byteSize, long byteAlignment) {
            return owner.allocate(byteSize, byteAlignment);
        }

        @Override
        public MemorySegment.Scope scope() {
            return owner.scope();
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** A KMS standing in for the daemon: random 32-byte keys behind made-up envelopes. */
    static final class Keys {
        private static final SecureRandom RANDOM = new SecureRandom();
        private final Map<String, Plaintext> byEnvelope = new HashMap<>();
        final AtomicInteger decrypts = new AtomicInteger();
        private int next;

        synchronized byte[] add(String key, int version) {
            byte[] env = ("envelope-" + next++).getBytes(StandardCharsets.US_ASCII);
            byte[] k = new byte[32];
            RANDOM.nextBytes(k);
            byEnvelope.put(new String(env, StandardCharsets.US_ASCII), new Plaintext(key, version, k));
            return env;
        }

        synchronized byte[] plain(byte[] env) {
            return byEnvelope.get(new String(env, StandardCharsets.US_ASCII)).plaintext().clone();
        }

        synchronized Plaintext decrypt(byte[] env, Map<String, String> context) {
            decrypts.incrementAndGet();
            Plaintext p = byEnvelope.get(new String(env, StandardCharsets.US_ASCII));
            return new Plaintext(p.key(), p.version(), p.plaintext().clone());
        }
    }

    static final class TestClock extends Clock {
        private volatile Instant now = Instant.parse("2026-01-01T00:00:00Z");

        void advance(Duration d) {
            now = now.plus(d);
        }

        @Override
        public Instant instant() {
            return now;
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }
    }

    /** Everything the cache's System.Logger writes (it goes to java.util.logging). */
    static final class LogCapture extends Handler implements AutoCloseable {
        final List<LogRecord> records = new java.util.concurrent.CopyOnWriteArrayList<>();
        private final Logger logger = Logger.getLogger(DataKeyCache.class.getPackageName());
        private final Level before = logger.getLevel();

        LogCapture() {
            logger.setLevel(Level.ALL);
            setLevel(Level.ALL);
            logger.addHandler(this);
        }

        String text() {
            StringBuilder b = new StringBuilder();
            java.util.logging.Formatter f = new java.util.logging.SimpleFormatter();
            for (LogRecord r : records) {
                b.append(f.formatMessage(r)).append(" | ").append(r.getMessage());
                if (r.getParameters() != null) {
                    for (Object p : r.getParameters()) b.append(" | ").append(p);
                }
                b.append('\n');
            }
            return b.toString();
        }

        @Override
        public void publish(LogRecord r) {
            records.add(r);
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
            logger.removeHandler(this);
            logger.setLevel(before);
        }
    }
}
