package dev.enclavekms.cli;

import java.io.PrintStream;
import java.time.Duration;

/**
 * Progress of {@code kmsctl rewrap} on standard error: a bar redrawn in place when
 * standard error is a terminal (at most ten times a second), otherwise a plain line
 * every {@code interval} (0: after every file), which reads well in a log or a CI job.
 * Standard output stays for the summary.
 */
final class RewrapProgress {
    private static final long REDRAW_NANOS = 100_000_000L;
    private static final int BAR_WIDTH = 30;

    private final PrintStream err;
    private final boolean terminal;
    private final long intervalNanos;
    private final long total;
    private final long started = System.nanoTime();
    private long lastShown = started;
    private boolean drawn;

    RewrapProgress(PrintStream err, boolean terminal, Duration interval, long total) {
        this.err = err;
        this.terminal = terminal;
        this.intervalNanos = interval.toNanos();
        this.total = total;
    }

    /** {@code done} files of {@code total} are finished (rewrapped, current, skipped or failed). */
    void update(long done) {
        long now = System.nanoTime();
        if (terminal) {
            if (now - lastShown >= REDRAW_NANOS || done == total || !drawn) {
                err.print("\r" + bar(done, now) + "\u001b[K");
                err.flush();
                lastShown = now;
                drawn = true;
            }
        } else if (now - lastShown >= intervalNanos && done > 0) {
            err.println("rewrap: " + line(done, now));
            err.flush();
            lastShown = now;
        }
    }

    /** Clears the bar, so that what follows starts on a clean line. */
    void finish() {
        if (terminal && drawn) {
            err.print("\r\u001b[K");
            err.flush();
            drawn = false;
        }
    }

    /** A message on its own line, above the bar when there is one. */
    void note(String message) {
        if (terminal && drawn) {
            err.print("\r\u001b[K");
        }
        err.println(message);
        drawn = false;
        err.flush();
    }

    private String bar(long done, long now) {
        int filled = total == 0 ? BAR_WIDTH : (int) (BAR_WIDTH * done / total);
        return "[" + "#".repeat(filled) + "-".repeat(BAR_WIDTH - filled) + "] " + line(done, now);
    }

    /** {@code 1234/5000 files (24%), 250 files/s, ETA 15s}. */
    private String line(long done, long now) {
        double seconds = Math.max((now - started) / 1e9, 1e-3);
        double rate = done / seconds;
        String eta = rate <= 0 ? "?" : Output.duration(Math.round((total - done) / rate));
        long percent = total == 0 ? 100 : 100 * done / total;
        return done + "/" + total + " files (" + percent + "%), " + Math.round(rate) + " files/s, ETA " + eta;
    }
}
