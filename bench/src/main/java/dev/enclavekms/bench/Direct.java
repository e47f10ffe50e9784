package dev.enclavekms.bench;

import org.HdrHistogram.Histogram;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/** Runs an operation in-process on {@code threads} threads for a time: the direct and process baselines. */
final class Direct {
    private Direct() {
    }

    interface Op {
        /** Does one operation; returns how many units (data keys for a batch) it did. */
        int run(int thread, long i) throws Exception;
    }

    static double run(int threads, Op op, double seconds, long maxCalls, Histogram into) throws Exception {
        long start = System.nanoTime();
        long deadline = start + (long) (seconds * 1e9);
        long[] units = new long[threads];
        long[] last = new long[threads];
        Histogram[] hs = new Histogram[threads];
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int ti = t;
            hs[t] = new Histogram(3_600_000_000_000L, 3);
            ts.add(Thread.ofPlatform().name("direct-" + t).start(() -> {
                try {
                    // at least one call per thread, however late the thread starts
                    for (long i = 0; (i == 0 || System.nanoTime() < deadline) && (maxCalls <= 0 || i < maxCalls); i++) {
                        long s = System.nanoTime();
                        units[ti] += op.run(ti, i);
                        long e = System.nanoTime();
                        hs[ti].recordValue(e - s);
                        last[ti] = e;
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        for (Thread t : ts) t.join();
        if (failure.get() != null) throw new IllegalStateException(failure.get().toString(), failure.get());
        long total = 0;
        long end = start;
        for (int t = 0; t < threads; t++) {
            total += units[t];
            end = Math.max(end, last[t]);
            into.add(hs[t]);
        }
        return total / ((end - start) / 1e9);
    }
}
