package dev.enclavekms.shard;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.function.Supplier;

/**
 * Processes segments {@code 0 .. count-1} on {@code threads} threads at once, the calling
 * thread being one of them: each thread takes the next index, reads its segment, transforms
 * it and writes the result itself (positioned I/O), so no thread feeds the others and
 * {@code threads = 2} means two threads doing crypto. Used where segments can be placed
 * independently: file to file ({@link ShardEncryptor#encryptFile}, {@link
 * ShardReader#decryptInto}) and multi-segment random reads.
 *
 * <p>On failure the others stop taking indexes; since indexes are taken in order, every
 * index below the failing one was taken and finishes, so the failure reported is the one
 * of the lowest segment index that failed, whatever the number of threads.
 */
final class SegmentWorkers {

    /** One thread's state (its cipher and buffers); used by that thread only. */
    interface Worker extends AutoCloseable {
        /** Processes segment {@code index}; returns the bytes of input it covered (for progress). */
        long process(long index) throws IOException;

        /** Wipes the worker's buffers. */
        @Override
        void close();
    }

    private static final AtomicInteger RUNS = new AtomicInteger();

    private final long count;
    private final Supplier<? extends Worker> workers;
    private final LongConsumer progress;
    private final AtomicLong next = new AtomicLong();
    private volatile boolean stop;
    private long failedIndex = Long.MAX_VALUE;
    /** Helpers inside {@link #participate}, and whether the caller has closed the door on late ones. */
    private int active;
    private boolean closed;
    private Throwable failure;

    private SegmentWorkers(long count, Supplier<? extends Worker> workers, LongConsumer progress) {
        this.count = count;
        this.workers = workers;
        this.progress = progress;
    }

    /**
     * Runs segments {@code 0 .. count-1} to completion or to the first failure.
     *
     * @param threads  threads working, the caller included (1: the caller alone)
     * @param helpers  where the other {@code threads - 1} run; null to start that many
     *                 threads for this call
     * @param progress called with each segment's {@link Worker#process} result, one call
     *                 at a time (from any of the threads); null for none
     * @throws IOException the failure of the lowest segment index that failed
     */
    static void run(long count, int threads, ExecutorService helpers, Supplier<? extends Worker> workers,
                    LongConsumer progress) throws IOException {
        SegmentWorkers run = new SegmentWorkers(count, workers, progress);
        int others = (int) Math.max(0, Math.min(threads - 1, count - 1));
        List<Thread> started = new ArrayList<>();
        if (others > 0) {
            int id = RUNS.incrementAndGet();
            for (int t = 0; t < others; t++) {
                if (helpers != null) {
                    helpers.execute(run::helperTurn);
                } else {
                    started.add(Thread.ofPlatform().daemon().name("shard-workers-" + id + "-" + (t + 1))
                            .start(run::helperTurn));
                }
            }
        }
        run.participate();
        // Every helper that entered must have left before the caller returns: they write into
        // the caller's buffer and use buffers the caller wipes. One that has not entered yet
        // (still queued on the pool) never will, and is not waited for.
        boolean interrupted = run.closeAndAwaitHelpers();
        for (Thread t : started) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        run.rethrow(interrupted);
    }

    /** A helper's turn: takes part unless the caller has already finished the run. */
    private void helperTurn() {
        synchronized (this) {
            if (closed) {
                return;
            }
            active++;
        }
        try {
            participate();
        } finally {
            synchronized (this) {
                if (--active == 0) {
                    notifyAll();
                }
            }
        }
    }

    /** Lets no more helpers in and waits for those inside; returns whether the caller was interrupted. */
    private synchronized boolean closeAndAwaitHelpers() {
        closed = true;
        boolean interrupted = false;
        while (active > 0) {
            try {
                wait();
            } catch (InterruptedException e) {
                interrupted = true; // they use buffers the caller wipes: keep waiting
            }
        }
        return interrupted;
    }

    private void participate() {
        long index = -1;
        Worker w = null;
        try {
            w = workers.get();
            while (!stop) {
                index = next.getAndIncrement();
                if (index >= count) {
                    return;
                }
                long n = w.process(index);
                if (progress != null) {
                    synchronized (this) {
                        progress.accept(n);
                    }
                }
            }
        } catch (Throwable t) {
            fail(index, t);
        } finally {
            if (w != null) {
                w.close();
            }
        }
    }

    private synchronized void fail(long index, Throwable t) {
        stop = true;
        if (failure == null || index < failedIndex) {
            failure = t;
            failedIndex = index;
        }
    }

    private synchronized void rethrow(boolean interrupted) throws IOException {
        if (failure == null) {
            if (interrupted && next.get() < count) {
                throw new InterruptedIOException("interrupted while processing segments");
            }
            return;
        }
        switch (failure) {
            case IOException io -> throw io;
            case RuntimeException r -> throw r;
            case Error e -> throw e;
            default -> throw new IllegalStateException(failure);
        }
    }
}
