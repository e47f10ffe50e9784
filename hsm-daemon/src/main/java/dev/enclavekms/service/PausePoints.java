package dev.enclavekms.service;

import java.io.PrintStream;
import java.util.concurrent.CountDownLatch;

/**
 * Crash-test support: named points between the steps of multi-step changes (rotate,
 * destroy). A test daemon started with one point armed stops there for good, after
 * printing {@code PAUSED AT <point>}, so the test can SIGKILL it at exactly that step.
 * Armed only in development mode (--dev); production builds it with {@link #NONE}.
 */
public final class PausePoints {
    public static final PausePoints NONE = new PausePoints(null, null);

    private final String armed;
    private final PrintStream out;

    private PausePoints(String armed, PrintStream out) {
        this.armed = armed;
        this.out = out;
    }

    public static PausePoints armed(String point, PrintStream out) {
        return point == null || point.isBlank() ? NONE : new PausePoints(point, out);
    }

    void reach(String point) {
        if (point.equals(armed)) {
            out.println("PAUSED AT " + point);
            out.flush();
            try {
                new CountDownLatch(1).await(); // until the test kills the process
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
