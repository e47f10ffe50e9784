package dev.enclavekms.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The watcher without a daemon: what it does while it cannot subscribe (the daemon side is tested in hsm-daemon). */
@Timeout(30)
class RevocationWatcherTest {

    @Test
    void daemonUnreachable_cacheIsCleared_retriesWithBackoff_warnsOnce_closeStopsPromptly() throws Exception {
        DataKeyCacheTest.Keys keys = new DataKeyCacheTest.Keys();
        byte[] env = keys.add("k", 1);
        AtomicInteger attempts = new AtomicInteger();
        CountDownLatch threeAttempts = new CountDownLatch(3);
        try (DataKeyCacheTest.LogCapture log = new DataKeyCacheTest.LogCapture();
             DataKeyCache cache = new DataKeyCache(keys::decrypt, DataKeyCache.Limits.of(Duration.ofHours(1)))) {
            cache.unwrap(env, Map.of());
            assertEquals(1, cache.stats().entries());
            RevocationWatcher w = RevocationWatcher.start(cache, () -> {
                attempts.incrementAndGet();
                threeAttempts.countDown();
                throw new IOException("cannot connect to /run/nowhere.sock");
            });
            // 100 ms, 200 ms between attempts: three attempts well within 10 s.
            assertTrue(threeAttempts.await(10, TimeUnit.SECONDS));
            assertFalse(w.subscribed());
            assertEquals(0, cache.stats().entries(), "no stream: nothing cached may be trusted");
            long t0 = System.nanoTime();
            w.close();
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(2), "close waits for the backoff");
            int after = attempts.get();
            assertFalse(w.awaitSubscribed(Duration.ofMillis(300)));
            assertEquals(after, attempts.get(), "no attempt after close");
            long warnings = log.records.stream().filter(r -> r.getLevel() == Level.WARNING).count();
            assertEquals(1, warnings, log.text());
        }
    }
}
