package dev.enclavekms.cache;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KeyVersionUnusableException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.Revocation;
import dev.enclavekms.testing.InProcessDaemon;
import dev.enclavekms.testing.MutableClock;
import dev.enclavekms.varlink.VarlinkClient;
import dev.enclavekms.varlink.VarlinkError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The data-key cache against the real daemon on a SoftHSM token: Kms.WatchRevocations
 * streams a revoked version to the cache's watcher, which drops exactly that version's
 * entries within a second; a daemon restart (stream lost) clears the cache and the watcher
 * subscribes again.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(120)
class RevocationStreamTest {
    static final Map<String, String> CTX = Map.of("model", "llama");
    static final MutableClock CLOCK = new MutableClock(Instant.parse("2026-11-22T00:00:00Z"));

    @TempDir
    static Path dir;
    static InProcessDaemon daemon;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(dir, "revocation-stream", CLOCK);
        try (KmsClient kms = daemon.client()) {
            kms.createKey("weights", "ENCRYPT");
            kms.createKey("other", "ENCRYPT");
        }
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    @Test
    @Order(1)
    void revokeVersion_itsCachedKeysGoWithinASecond_othersStay() throws Exception {
        try (KmsClient kms = daemon.client();
             DataKeyCache cache = DataKeyCache.using(kms, DataKeyCache.Limits.of(Duration.ofHours(1)));
             RevocationWatcher watcher = RevocationWatcher.start(cache, daemon.socket())) {
            assertTrue(watcher.awaitSubscribed(Duration.ofSeconds(10)));
            DataKey v1a = kms.generateDataKey("weights", CTX);
            DataKey v1b = kms.generateDataKey("weights", CTX);
            assertEquals(2, kms.rotateKey("weights").primaryVersion());
            DataKey v2 = kms.generateDataKey("weights", CTX);
            DataKey other = kms.generateDataKey("other", CTX);
            for (DataKey dk : List.of(v1a, v1b, v2, other)) {
                assertArrayEquals(dk.plaintext(), cache.unwrap(dk.ciphertext(), CTX));
            }
            assertEquals(4, cache.stats().entries());

            long t0 = System.nanoTime();
            kms.revokeKeyVersion("weights", 1);
            assertTrue(watcher.awaitRevocations(1, Duration.ofSeconds(1)), "no revocation within a second");
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 1000, ms + " ms");

            assertNull(cache.segmentOf(v1a.ciphertext(), CTX));
            assertNull(cache.segmentOf(v1b.ciphertext(), CTX));
            assertNotNull(cache.segmentOf(v2.ciphertext(), CTX));
            assertNotNull(cache.segmentOf(other.ciphertext(), CTX));
            assertEquals(2, cache.stats().entries());
            // The daemon, asked again, refuses the revoked version: the cache no longer answers for it.
            assertThrows(KeyVersionUnusableException.class, () -> cache.unwrap(v1a.ciphertext(), CTX));
            assertArrayEquals(v2.plaintext(), cache.unwrap(v2.ciphertext(), CTX));
        }
    }

    @Test
    @Order(2)
    void stream_namesKeyVersionAndState_forDisableAndScheduledDestruction() throws Exception {
        try (KmsClient admin = daemon.client(); KmsClient watch = daemon.client()) {
            List<Revocation> seen = new ArrayList<>();
            Thread t = Thread.ofVirtual().start(() -> {
                try {
                    watch.watchRevocations(new KmsClient.RevocationListener() {
                        @Override
                        public void subscribed() {
                            synchronized (seen) {
                                seen.add(new Revocation("-", 0, "SUBSCRIBED"));
                                seen.notifyAll();
                            }
                        }

                        @Override
                        public void revoked(Revocation r) {
                            synchronized (seen) {
                                seen.add(r);
                                seen.notifyAll();
                            }
                        }
                    });
                } catch (Exception closed) {
                    // the test closes the connection to end the stream
                }
            });
            awaitSize(seen, 1);
            admin.rotateKey("other");
            admin.disableKeyVersion("other", 1);
            admin.scheduleKeyVersionDestruction("weights", 1, null);
            awaitSize(seen, 3);
            watch.close();
            t.join(Duration.ofSeconds(10));
            assertEquals(List.of(new Revocation("-", 0, "SUBSCRIBED"), new Revocation("other", 1, "DISABLED"),
                    new Revocation("weights", 1, "DESTROY_SCHEDULED")), seen);
        }
    }

    @Test
    @Order(3)
    void withoutMore_isRefusedWithExpectedMore() throws Exception {
        try (VarlinkClient v = VarlinkClient.connect(daemon.socket())) {
            VarlinkError e = assertThrows(VarlinkError.class,
                    () -> v.call("dev.enclavekms.Kms.WatchRevocations", Map.of()));
            assertEquals("org.varlink.service.ExpectedMore", e.error());
        }
    }

    @Test
    @Order(4)
    void daemonRestart_clearsTheCache_andTheWatcherSubscribesAgain() throws Exception {
        try (KmsClient kms = daemon.client()) {
            kms.rotateKey("other");
        }
        DataKey dk;
        try (KmsClient kms = daemon.client()) {
            dk = kms.generateDataKey("other", CTX);
        }
        Path socket = daemon.socket();
        try (DataKeyCache cache = new DataKeyCache((env, ctx) -> {
                 try (KmsClient c = KmsClient.connect(socket)) {
                     return c.decrypt(env, ctx);
                 }
             }, DataKeyCache.Limits.of(Duration.ofHours(1)));
             RevocationWatcher watcher = RevocationWatcher.start(cache, socket)) {
            assertTrue(watcher.awaitSubscribed(Duration.ofSeconds(10)));
            cache.unwrap(dk.ciphertext(), CTX);
            assertEquals(1, cache.stats().entries());
            daemon.restart(); // the stream ends with the old daemon: revocations may be missed
            assertTrue(watcher.awaitSubscriptions(2, Duration.ofSeconds(30)));
            assertEquals(0, cache.stats().entries());
            assertArrayEquals(dk.plaintext(), cache.unwrap(dk.ciphertext(), CTX));
        }
    }

    private static void awaitSize(List<Revocation> seen, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        synchronized (seen) {
            while (seen.size() < n) {
                long left = deadline - System.nanoTime();
                if (left <= 0) throw new AssertionError("only " + seen + " within 10 s");
                java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(seen, left);
            }
        }
    }
}
