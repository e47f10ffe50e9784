package dev.enclavekms.server;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs the lifecycle sweep on one background thread: every interval, and soon after
 * {@link #wake} (a key version reached its usage limit). Wake-ups while a sweep is
 * queued are merged, so a busy data plane cannot flood it.
 */
final class LifecycleScheduler implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(LifecycleScheduler.class.getName());

    private final Duration interval;
    private final ScheduledExecutorService executor = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("lifecycle-sweep").factory());
    private final AtomicBoolean queued = new AtomicBoolean();
    private volatile Runnable sweep;

    LifecycleScheduler(Duration interval) {
        this.interval = interval;
    }

    void start(Runnable sweep) {
        this.sweep = sweep;
        long ms = interval.toMillis();
        executor.scheduleWithFixedDelay(this::runOnce, ms, ms, TimeUnit.MILLISECONDS);
    }

    /** Asks for a sweep soon; cheap to call often. */
    void wake() {
        if (sweep != null && queued.compareAndSet(false, true)) {
            executor.execute(this::runOnce);
        }
    }

    private void runOnce() {
        queued.set(false);
        try {
            sweep.run();
        } catch (RuntimeException e) {
            // A failed sweep must not end the schedule; the next one retries.
            LOG.log(System.Logger.Level.ERROR, "lifecycle sweep failed", e);
        }
    }

    @Override
    public void close() {
        executor.shutdownNow();
        try {
            executor.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
