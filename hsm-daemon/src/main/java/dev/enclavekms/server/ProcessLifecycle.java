package dev.enclavekms.server;

import sun.misc.Signal;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The daemon process under a service manager: SIGTERM and SIGINT drain the calls in
 * flight and end the process with status 0, SIGHUP reloads, and systemd is told each step
 * ({@code READY=1}, {@code RELOADING=1}, {@code STOPPING=1}).
 *
 * <p>Why signal handlers rather than a shutdown hook: on SIGTERM the JVM runs its hooks
 * and then exits with status 143, which systemd counts as a failure; JUL's own hook
 * resets the log handlers concurrently, swallowing the drain's log lines; and the JVM's
 * default for SIGHUP is to exit. {@code sun.misc.Signal} (module jdk.unsupported) is the
 * JDK's supported way to replace those defaults. The handlers are installed before the
 * token is opened, so a SIGTERM during start-up also ends in a clean stop. A shutdown
 * hook remains as a safety net for any other exit path; stopping twice is harmless.
 */
final class ProcessLifecycle {
    private static final System.Logger LOG = System.getLogger(ProcessLifecycle.class.getName());

    private final SystemdNotifier notifier;
    private final CountDownLatch stopRequested = new CountDownLatch(1);
    private final AtomicReference<String> stopSignal = new AtomicReference<>();
    private volatile Daemon daemon;

    private ProcessLifecycle(SystemdNotifier notifier) {
        this.notifier = notifier;
    }

    /** Installs the handlers for SIGTERM, SIGINT and SIGHUP. */
    static ProcessLifecycle install(SystemdNotifier notifier) {
        ProcessLifecycle p = new ProcessLifecycle(notifier);
        p.handle("TERM", p::requestStop);
        p.handle("INT", p::requestStop);
        p.handle("HUP", s -> p.reload());
        return p;
    }

    private void handle(String name, sun.misc.SignalHandler handler) {
        try {
            Signal.handle(new Signal(name), handler);
        } catch (IllegalArgumentException e) {
            // e.g. the JVM runs with -Xrs: the signal keeps its default action
            LOG.log(System.Logger.Level.WARNING, "cannot handle SIG" + name + ": " + e.getMessage());
        }
    }

    private void requestStop(Signal s) {
        stopSignal.compareAndSet(null, "SIG" + s.getName());
        stopRequested.countDown();
    }

    private void reload() {
        Daemon d = daemon;
        if (d == null) {
            LOG.log(System.Logger.Level.INFO, "SIGHUP during start-up ignored");
            return;
        }
        notifier.reloading("reloading");
        try {
            d.reload();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "reload failed; serving with the previous configuration", e);
        }
        notifier.ready(d.summary());
    }

    /** Tells systemd why the daemon could not start (shown by {@code systemctl status}). */
    void startFailed(String why) {
        notifier.status("cannot start: " + why);
    }

    /**
     * Reports the started daemon ready, serves until SIGTERM or SIGINT, then drains the
     * calls in flight within {@code drain} and releases everything.
     *
     * @return the process's exit status: 0
     */
    int serveUntilStopped(Daemon started, Duration drain) {
        this.daemon = started;
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("enclave-kmsd-shutdown")
                .unstarted(() -> started.stop(drain)));
        notifier.ready(started.summary());
        boolean interrupted = false;
        while (true) {
            try {
                stopRequested.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        LOG.log(System.Logger.Level.INFO, stopSignal.get() + ": stopping, draining calls in flight (at most "
                + drain.toSeconds() + " s)");
        notifier.stopping("draining calls in flight");
        started.stop(drain);
        LOG.log(System.Logger.Level.INFO, "stopped");
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }
}
