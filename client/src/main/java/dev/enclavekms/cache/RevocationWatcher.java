package dev.enclavekms.cache;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.Revocation;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a {@link DataKeyCache} in step with the daemon's revocations: on a virtual thread
 * of its own, over a connection of its own, it subscribes to {@code Kms.WatchRevocations}
 * and drops the cached keys of every version the daemon reports unusable.
 *
 * <p>Fail safe: whenever the stream is not live — connection lost, daemon restarted,
 * stream ended — revocations may be missed, so the cache is cleared when the stream is
 * lost and again when a new subscription is confirmed (dropping anything cached in the
 * gap). It reconnects with exponential backoff (100 ms doubling to 30 s). Losing the
 * stream is logged once per outage, without key material.
 */
public final class RevocationWatcher implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(RevocationWatcher.class.getName());
    static final Duration FIRST_BACKOFF = Duration.ofMillis(100);
    static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

    /** Opens (and, if needed, authenticates) the watcher's own connection. */
    @FunctionalInterface
    public interface Connector {
        KmsClient connect() throws Exception;
    }

    private final DataKeyCache cache;
    private final Connector connector;
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final Object state = new Object();
    private final Thread thread;
    private volatile KmsClient current;
    private boolean subscribed;
    private long subscriptions;
    private long revocations;

    private RevocationWatcher(DataKeyCache cache, Connector connector) {
        this.cache = Objects.requireNonNull(cache, "cache");
        this.connector = Objects.requireNonNull(connector, "connector");
        this.thread = Thread.ofVirtual().name("kms-revocation-watcher").unstarted(this::run);
    }

    /** Starts watching the daemon at {@code socket} for {@code cache}. */
    public static RevocationWatcher start(DataKeyCache cache, Path socket) {
        Objects.requireNonNull(socket, "socket");
        return start(cache, () -> KmsClient.connect(socket));
    }

    /** Starts watching with connections from {@code connector} (e.g. one that authenticates with a token). */
    public static RevocationWatcher start(DataKeyCache cache, Connector connector) {
        RevocationWatcher w = new RevocationWatcher(cache, connector);
        w.thread.start();
        return w;
    }

    /**
     * Waits until a subscription is live.
     *
     * @return false when {@code timeout} passed first
     */
    public boolean awaitSubscribed(Duration timeout) throws InterruptedException {
        return await(() -> subscribed, timeout);
    }

    /** Waits until at least {@code n} subscriptions were confirmed; false on timeout. */
    public boolean awaitSubscriptions(long n, Duration timeout) throws InterruptedException {
        return await(() -> subscriptions >= n, timeout);
    }

    /** Waits until at least {@code n} revocations were applied to the cache; false on timeout. */
    public boolean awaitRevocations(long n, Duration timeout) throws InterruptedException {
        return await(() -> revocations >= n, timeout);
    }

    private boolean await(java.util.function.BooleanSupplier done, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (state) {
            while (!done.getAsBoolean()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return false;
                TimeUnit.NANOSECONDS.timedWait(state, left);
            }
            return true;
        }
    }

    /** Whether a subscription is live now. */
    public boolean subscribed() {
        synchronized (state) {
            return subscribed;
        }
    }

    /** Subscriptions confirmed so far (a reconnect adds one). */
    public long subscriptions() {
        synchronized (state) {
            return subscriptions;
        }
    }

    /** Revocation events received so far. */
    public long revocations() {
        synchronized (state) {
            return revocations;
        }
    }

    /** Stops watching and closes the connection; the cache stays open (close it yourself). */
    @Override
    public void close() {
        stopped.countDown();
        KmsClient c = current;
        if (c != null) {
            try {
                c.close(); // unblocks the stream
            } catch (Exception ignored) {
                // closing anyway
            }
        }
        try {
            thread.join(Duration.ofSeconds(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private boolean stopping() {
        return stopped.getCount() == 0;
    }

    private void run() {
        Duration backoff = FIRST_BACKOFF;
        boolean outageReported = false;
        while (!stopping()) {
            String why;
            try (KmsClient c = connector.connect()) {
                current = c;
                if (stopping()) break;
                c.watchRevocations(new KmsClient.RevocationListener() {
                    @Override
                    public void subscribed() {
                        cache.clear(); // anything cached while no stream was live may be stale
                        synchronized (state) {
                            subscribed = true;
                            subscriptions++;
                            state.notifyAll();
                        }
                    }

                    @Override
                    public void revoked(Revocation r) {
                        cache.revoke(r.key(), r.version());
                        synchronized (state) {
                            revocations++;
                            state.notifyAll();
                        }
                    }
                });
                why = "the daemon ended the stream";
            } catch (Exception e) {
                why = e.getClass().getSimpleName() + ": " + e.getMessage();
            } finally {
                current = null;
            }
            boolean wasLive;
            synchronized (state) {
                wasLive = subscribed;
                subscribed = false;
            }
            int dropped = cache.clear();
            if (stopping()) break;
            if (wasLive) {
                backoff = FIRST_BACKOFF;
                outageReported = false;
            }
            if (!outageReported) {
                LOG.log(System.Logger.Level.WARNING, "revocation stream lost (" + why + "); dropped " + dropped
                        + " cached data key(s); reconnecting");
                outageReported = true;
            } else {
                LOG.log(System.Logger.Level.DEBUG, "revocation stream: still reconnecting (" + why + ")");
            }
            try {
                if (stopped.await(backoff.toMillis(), TimeUnit.MILLISECONDS)) break;
            } catch (InterruptedException e) {
                break;
            }
            backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
        }
    }
}
