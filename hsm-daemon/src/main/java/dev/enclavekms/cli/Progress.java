package dev.enclavekms.cli;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar on standard error for commands that stream large files:
 * percentage, bytes done of total, rate, time left, and the file being processed.
 *
 * <pre>
 * encrypt  37% [#######.............] 1.2 GiB / 3.3 GiB  812 MiB/s  ETA 0:03  file 2/10
 * </pre>
 *
 * Redrawn in place ({@code \r}) at most ten times a second, and only when enabled (by
 * default when standard error is a terminal), so logs and pipes never see it.
 */
final class Progress implements AutoCloseable {
    private static final long REDRAW_NANOS = 100_000_000L;
    private static final int BAR = 20;

    private final PrintStream err;
    private final boolean enabled;
    private final String verb;
    private final long total;
    private final int files;
    private final LongSupplier clock;
    private final long start;
    private long done;
    private int file;
    private long lastDraw;
    private int lastWidth;

    Progress(PrintStream err, boolean enabled, String verb, long totalBytes, int files, LongSupplier nanoClock) {
        this.err = err;
        this.enabled = enabled;
        this.verb = verb;
        this.total = Math.max(0, totalBytes);
        this.files = files;
        this.clock = nanoClock;
        this.start = nanoClock.getAsLong();
        this.lastDraw = start - REDRAW_NANOS;
    }

    /**
     * True when standard error is a terminal. Java has no isatty for fd 2; on Linux
     * {@code /proc/self/fd/2} names the terminal device. Elsewhere, a console on
     * stdin/stdout is the best guess.
     */
    static boolean stderrIsTerminal(Environment env) {
        if (env.err() != System.err) {
            return false; // a test, or an embedding that captures the output
        }
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (IOException | UnsupportedOperationException e) {
            java.io.Console c = System.console();
            return c != null && c.isTerminal();
        }
    }

    /** Starts file {@code index} (1-based) of the run. */
    void file(int index) {
        this.file = index;
        draw(false);
    }

    void advance(long bytes) {
        done += bytes;
        draw(false);
    }

    /** Erases the bar, so that a line can be printed; the next update draws it again. */
    void clear() {
        if (enabled && lastWidth > 0) {
            err.print("\r" + " ".repeat(lastWidth) + "\r");
            err.flush();
            lastWidth = 0;
            lastDraw = clock.getAsLong() - REDRAW_NANOS;
        }
    }

    /** Bytes counted so far. */
    long done() {
        return done;
    }

    /** Seconds since the start. */
    double seconds() {
        return (clock.getAsLong() - start) / 1e9;
    }

    /** An input stream that counts what is read from it here. */
    InputStream counting(InputStream in) {
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                int b = super.read();
                if (b >= 0) advance(1);
                return b;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                int n = super.read(b, off, len);
                if (n > 0) advance(n);
                return n;
            }

            @Override
            public long skip(long n) throws IOException {
                long k = super.skip(n);
                advance(k);
                return k;
            }
        };
    }

    private void draw(boolean last) {
        if (!enabled) {
            return;
        }
        long now = clock.getAsLong();
        if (!last && now - lastDraw < REDRAW_NANOS) {
            return;
        }
        lastDraw = now;
        String line = line(now);
        int pad = Math.max(0, lastWidth - line.length());
        err.print("\r" + line + " ".repeat(pad));
        lastWidth = line.length();
        if (last) {
            err.println();
        }
        err.flush();
    }

    /** The bar's text at time {@code now} (exposed for tests). */
    String line(long now) {
        double secs = Math.max(1e-9, (now - start) / 1e9);
        double fraction = total == 0 ? 1 : Math.min(1, (double) done / total);
        int filled = (int) Math.round(fraction * BAR);
        double rate = done / secs;
        StringBuilder b = new StringBuilder();
        b.append(verb).append(' ').append(String.format(Locale.ROOT, "%3d%%", (int) Math.floor(fraction * 100)))
                .append(" [").append("#".repeat(filled)).append(".".repeat(BAR - filled)).append("] ")
                .append(bytes(done)).append(" / ").append(bytes(total)).append("  ").append(bytes((long) rate))
                .append("/s");
        if (done > 0 && done < total) {
            b.append("  ETA ").append(clockTime((long) Math.ceil((total - done) / rate)));
        }
        if (files > 1) {
            b.append("  file ").append(file).append('/').append(files);
        }
        return b.toString();
    }

    @Override
    public void close() {
        draw(true);
    }

    /** 1023 B, 1.5 KiB, 12.0 MiB, 3.25 GiB. */
    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
    }

    /** 0:07, 12:05, 1:02:03. */
    static String clockTime(long seconds) {
        long h = seconds / 3600, m = seconds % 3600 / 60, s = seconds % 60;
        return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, s) : String.format(Locale.ROOT, "%d:%02d", m, s);
    }
}
