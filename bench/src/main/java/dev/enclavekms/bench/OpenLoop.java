package dev.enclavekms.bench;

import dev.enclavekms.varlink.FrameReader;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Fixed arrival rate (open loop): calls are due at evenly spaced instants whether or not
 * earlier calls have been answered, spread over {@code conns} connections, and a call's
 * latency is measured from the instant it was <em>due</em>, not from when it was written.
 * A closed loop (wait for a reply, then send) sends less while the daemon stalls and so
 * hides the stall from its percentiles (coordinated omission); here a stall delays every
 * call due during it, and each of them counts. Per connection one thread writes on
 * schedule and another reads the in-order replies.
 */
final class OpenLoop {
    /** Calls written but not answered, per connection; beyond it the writer waits (still counting). */
    private static final int MAX_OUTSTANDING = 4096;
    private static final long END = Long.MIN_VALUE;

    private OpenLoop() {
    }

    /** @return the achieved completion rate (calls/s); latencies (ns from due time) go into {@code into} */
    static double run(Path socket, int conns, double ratePerS, double seconds, Load.Calls calls, Histogram into)
            throws Exception {
        List<Load.Conn> cs = new ArrayList<>();
        try {
            for (int i = 0; i < conns; i++) cs.add(new Load.Conn(socket));
            long intervalNs = (long) (conns * 1e9 / ratePerS); // per connection
            long start = System.nanoTime() + 20_000_000L; // every thread started before the first call is due
            long end = start + (long) (seconds * 1e9);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            Histogram[] hs = new Histogram[conns];
            long[] done = new long[conns];
            long[] last = new long[conns];
            for (int c = 0; c < conns; c++) {
                final int ci = c;
                Load.Conn conn = cs.get(c);
                BlockingQueue<Long> due = new ArrayBlockingQueue<>(MAX_OUTSTANDING);
                hs[c] = new Histogram(3_600_000_000_000L, 3);
                threads.add(Thread.ofPlatform().name("open-write-" + c).start(() -> {
                    try {
                        int next = ci * 7;
                        for (long t = start + ci * intervalNs / conns; t < end && failure.get() == null;
                             t += intervalNs) {
                            long wait;
                            while ((wait = t - System.nanoTime()) > 0) LockSupport.parkNanos(wait);
                            // queued before the write, so the reader always finds it
                            while (!due.offer(t, 100, TimeUnit.MILLISECONDS)) {
                                if (failure.get() != null) return;
                            }
                            conn.out.write(calls.frames()[next++ % calls.frames().length]);
                        }
                        while (!due.offer(END, 100, TimeUnit.MILLISECONDS)) {
                            if (failure.get() != null) return;
                        }
                    } catch (Throwable e) {
                        fail(failure, e, conn);
                    }
                }));
                threads.add(Thread.ofPlatform().name("open-read-" + c).start(() -> {
                    try {
                        while (true) {
                            Long t = due.poll(100, TimeUnit.MILLISECONDS);
                            if (t == null && failure.get() != null) break;
                            if (t == null) continue;
                            if (t == END) break;
                            FrameReader.Frame fr = conn.reader.next();
                            long now = System.nanoTime();
                            if (!(fr instanceof FrameReader.Frame.Text text)) throw new IOException("bad reply " + fr);
                            Load.checkReply(text.json());
                            hs[ci].recordValue(now - t);
                            done[ci]++;
                            last[ci] = now;
                        }
                    } catch (Throwable e) {
                        fail(failure, e, conn);
                    }
                }));
            }
            for (Thread t : threads) t.join();
            if (failure.get() != null) {
                throw new IllegalStateException(calls.name() + " (open loop): " + failure.get(), failure.get());
            }
            long total = 0;
            long lastNs = start;
            for (int c = 0; c < conns; c++) {
                total += done[c];
                lastNs = Math.max(lastNs, last[c]);
                into.add(hs[c]);
            }
            return total / ((lastNs - start) / 1e9);
        } finally {
            for (Load.Conn c : cs) c.close();
        }
    }

    /** Records the first failure and closes the connection, so its other thread stops too. */
    private static void fail(AtomicReference<Throwable> failure, Throwable e, Load.Conn conn) {
        failure.compareAndSet(null, e);
        try {
            conn.close();
        } catch (IOException ignored) {
            // already failing; the first failure is what gets reported
        }
    }
}
