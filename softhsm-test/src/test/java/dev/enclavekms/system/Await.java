package dev.enclavekms.system;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;

/** Waits for a condition by polling it until a deadline; system tests never sleep a fixed time. */
final class Await {
    private static final long POLL_NANOS = Duration.ofMillis(50).toNanos();

    private Await() {
    }

    /**
     * Returns as soon as {@code condition} holds (it may throw; a throw fails the wait at once).
     *
     * @throws AssertionError naming {@code what} when it still does not hold after {@code timeout}
     */
    static void until(String what, Duration timeout, Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.call()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            }
            LockSupport.parkNanos(POLL_NANOS);
        }
    }
}
