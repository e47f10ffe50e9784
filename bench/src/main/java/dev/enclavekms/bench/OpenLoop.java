package dev.enclavekms.bench;

import dev.enclavekms.varlink.FrameReader;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Fixed arrival rate (open loop): calls are due at evenly spaced instants whether or not
 * earlier calls have been answered, dealt round-robin over {@code conns} connections, and a
 * call's latency is measured from the instant it was <em>due</em>, not from when it was
 * written. A closed loop (wait for a reply, then send) sends less while the daemon stalls
 * and so hides the stall from its percentiles (coordinated omission); here a stall delays
 * every call due during it, and each of them counts.
 *
 * <p>The generator shares the machine's CPUs with the daemon, so it is kept lean: one
 * sender thread writes every call on schedule (catching up at once on any it is late for),
 * and one reader thread per connection blocks in {@code read} for the in-order replies and
 * takes each call's due time from a lock-free ring — a reply costs the generator one
 * wake-up, not a hand-off between its own threads. The sender's timer slack is 1 µs
 * ({@link TimerSlack}). How late it still wrote the calls (the machine's wake-up delay,
 * which the latency from due time includes) is measured and reported beside the latency.
 */
final class OpenLoop {
    /** Calls written but not answered, per connection (a power of two); beyond it the sender waits, still counting. */
    private static final int MAX_OUTSTANDING = 4096;

    private OpenLoop() {
    }

    /**
     * @param callsPerS      the achieved completion rate
     * @param sendLatenessNs how long after its due instant each call was written
     */
    record Result(double callsPerS, Histogram sendLatenessNs) {
        /** For a row's note: how late the generator itself wrote the calls. */
        String lateness() {
            return String.format(Locale.ROOT, "the generator wrote calls p50 %.0f µs, p99 %.0f µs after they were due",
                    sendLatenessNs.getValueAtPercentile(50) / 1000.0, sendLatenessNs.getValueAtPercentile(99) / 1000.0);
        }
    }

    /** The due instants of one connection's calls written and not yet answered, oldest first. */
    private static final class Outstanding {
        final long[] due = new long[MAX_OUTSTANDING];
        /** Written by the sender only, read by the reader: how many due instants are in {@link #due}. */
        volatile long written;
        /** Written by the reader only: how many replies it has taken. */
        volatile long answered;
    }

    /** Latencies (ns from due time) go into {@code into}. */
    static Result run(Path socket, int conns, double ratePerS, double seconds, Load.Calls calls, Histogram into)
            throws Exception {
        List<Load.Conn> cs = new ArrayList<>();
        try {
            for (int i = 0; i < conns; i++) cs.add(new Load.Conn(socket));
            long intervalNs = Math.max(1, (long) (1e9 / ratePerS));
            long total = Math.max(conns, (long) (seconds * 1e9) / intervalNs);
            long start = System.nanoTime() + 20_000_000L; // every reader started before the first call is due
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Outstanding[] out = new Outstanding[conns];
            Histogram[] hs = new Histogram[conns];
            long[] last = new long[conns];
            List<Thread> readers = new ArrayList<>();
            for (int c = 0; c < conns; c++) {
                final int ci = c;
                Outstanding o = out[c] = new Outstanding();
                Histogram h = hs[c] = Bench.histogram();
                Load.Conn conn = cs.get(c);
                long expected = total / conns + (c < total % conns ? 1 : 0); // calls i with i % conns == c
                readers.add(Thread.ofPlatform().name("open-read-" + c).start(() -> {
                    try {
                        for (long n = 0; n < expected; n++) {
                            FrameReader.Frame fr = conn.reader.next();
                            long now = System.nanoTime();
                            // the sender published the due instant before writing the call
                            while (o.written <= n) Thread.onSpinWait();
                            long t = o.due[(int) (n & (MAX_OUTSTANDING - 1))];
                            o.answered = n + 1;
                            if (!(fr instanceof FrameReader.Frame.Text text)) throw new IOException("bad reply " + fr);
                            Load.checkReply(text.json());
                            h.recordValue(now - t);
                            last[ci] = now;
                        }
                    } catch (Throwable e) {
                        fail(failure, e, conn);
                    }
                }));
            }
            Histogram lateness = Bench.histogram();
            Thread sender = Thread.ofPlatform().name("open-send").start(() -> {
                try {
                    TimerSlack.setForThisThread(1_000);
                    send(cs, out, calls, start, intervalNs, total, lateness, failure);
                } catch (Throwable e) {
                    for (Load.Conn conn : cs) fail(failure, e, conn);
                }
            });
            sender.join();
            for (Thread t : readers) t.join();
            if (failure.get() != null) {
                throw new IllegalStateException(calls.name() + " (open loop): " + failure.get(), failure.get());
            }
            long lastNs = start;
            long answered = 0;
            for (int c = 0; c < conns; c++) {
                answered += out[c].answered;
                lastNs = Math.max(lastNs, last[c]);
                into.add(hs[c]);
            }
            return new Result(answered / ((lastNs - start) / 1e9), lateness);
        } finally {
            for (Load.Conn c : cs) c.close();
        }
    }

    /** Writes call {@code i} at {@code start + i × interval} on connection {@code i mod conns}. */
    private static void send(List<Load.Conn> cs, Outstanding[] out, Load.Calls calls, long start, long intervalNs,
                             long total, Histogram lateness, AtomicReference<Throwable> failure) throws IOException {
        int conns = cs.size();
        byte[][] frames = calls.frames();
        int[] next = new int[conns];
        for (int c = 0; c < conns; c++) next[c] = c * 7;
        for (long i = 0; i < total && failure.get() == null; i++) {
            long t = start + i * intervalNs;
            long wait;
            while ((wait = t - System.nanoTime()) > 0) LockSupport.parkNanos(wait);
            int c = (int) (i % conns);
            Outstanding o = out[c];
            long n = o.written;
            while (n - o.answered >= MAX_OUTSTANDING) {
                if (failure.get() != null) return;
                LockSupport.parkNanos(50_000);
            }
            o.due[(int) (n & (MAX_OUTSTANDING - 1))] = t;
            o.written = n + 1;
            long now = System.nanoTime();
            lateness.recordValue(Math.max(0, now - t));
            cs.get(c).out.write(frames[next[c]++ % frames.length]);
        }
    }

    /** Records the first failure and closes the connection, so its reader stops too. */
    private static void fail(AtomicReference<Throwable> failure, Throwable e, Load.Conn conn) {
        failure.compareAndSet(null, e);
        try {
            conn.close();
        } catch (IOException ignored) {
            // already failing; the first failure is what gets reported
        }
    }
}
