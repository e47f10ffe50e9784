package dev.enclavekms.shard;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * Encrypts or decrypts a sequence of segments, on the calling thread or on a pool, and
 * hands the results to a sink <em>in segment order</em>. With one thread everything runs
 * inline; with {@code threads > 1} the pool has {@code threads - 1} threads and the caller
 * is the last one: whenever it would wait for a segment (the window is full, or at the
 * end) it first takes segments that no pool thread has started and transforms them
 * itself, so {@code threads} threads do crypto while the caller also reads and writes.
 * Up to {@code 2 × threads} segments are in flight, so memory is about
 * {@code (2·threads + 1) · 2 · segment size}.
 *
 * <p>Since each segment's nonce depends only on its index and the last-segment flag, the
 * output does not depend on the number of threads.
 *
 * <p>When a segment fails, every segment before it has been handed to the sink and none
 * after it; the failure is thrown from {@link #submit} or {@link #finish}. {@link #close()}
 * stops the pool and wipes every buffer (they hold plaintext on one side or the other).
 *
 * <p>Used by one thread (the caller); the pool's threads only run the transform.
 */
final class SegmentPipeline implements AutoCloseable {

    /** Turns one segment into another; returns the output length. */
    interface Transform {
        int apply(SegmentCipher cipher, long index, boolean last, byte[] in, int len, byte[] out) throws ShardException;
    }

    /** Where results go, in order. */
    interface Sink {
        void write(byte[] b, int off, int len) throws IOException;
    }

    private record Done(byte[] in, byte[] out, int length) { }

    private static final AtomicInteger POOLS = new AtomicInteger();

    private final int inCapacity;
    private final int outCapacity;
    private final Transform transform;
    private final Sink sink;
    private final SegmentCipher inline;
    private final ExecutorService pool;
    /**
     * Ciphers (each holds the segment key) lent to whichever thread runs a transform and
     * returned after it: at most {@code threads} exist, and they belong to this pipeline,
     * not to a thread (a thread-local would leave the key on any long-lived caller thread
     * that ever helped, for as long as that thread lives).
     */
    private final java.util.concurrent.ConcurrentLinkedQueue<SegmentCipher> idleCiphers =
            new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final Supplier<SegmentCipher> newCipher;
    private final int window;
    private final ArrayDeque<FutureTask<Done>> inFlight = new ArrayDeque<>();
    private final ArrayDeque<byte[]> freeIn = new ArrayDeque<>();
    private final ArrayDeque<byte[]> freeOut = new ArrayDeque<>();
    private final List<byte[]> allocated = new ArrayList<>();

    SegmentPipeline(int threads, int inCapacity, int outCapacity, Supplier<SegmentCipher> ciphers, Transform transform,
                    Sink sink) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1");
        }
        JitWarmup.startFor(Math.min(inCapacity, outCapacity));
        this.inCapacity = inCapacity;
        this.outCapacity = outCapacity;
        this.transform = transform;
        this.sink = sink;
        this.inline = ciphers.get();
        this.newCipher = ciphers;
        idleCiphers.add(inline);
        if (threads == 1) {
            this.pool = null;
            this.window = 0;
        } else {
            int id = POOLS.incrementAndGet();
            AtomicInteger n = new AtomicInteger();
            ThreadFactory factory = r -> {
                Thread t = new Thread(r, "shard-segments-" + id + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            };
            this.pool = Executors.newFixedThreadPool(threads - 1, factory);
            this.window = 2 * threads;
        }
    }

    /** A buffer of the input capacity to fill and pass to {@link #submit}. */
    byte[] inputBuffer() {
        byte[] b = freeIn.poll();
        return b != null ? b : allocate(inCapacity);
    }

    private byte[] outputBuffer() {
        byte[] b = freeOut.poll();
        return b != null ? b : allocate(outCapacity);
    }

    private byte[] allocate(int n) {
        byte[] b = new byte[n];
        allocated.add(b);
        return b;
    }

    /**
     * Processes segment {@code index} held in {@code in[0..len)}; {@code in} belongs to the
     * pipeline from now on. May block while earlier segments are written.
     */
    void submit(long index, boolean last, byte[] in, int len) throws IOException {
        if (pool == null) {
            byte[] out = outputBuffer();
            int n = transform.apply(inline, index, last, in, len, out);
            sink.write(out, 0, n);
            recycle(in, out);
            return;
        }
        while (inFlight.size() >= window) {
            drainOne();
        }
        byte[] out = outputBuffer();
        FutureTask<Done> task = new FutureTask<>(() -> new Done(in, out, transformWithLentCipher(index, last, in,
                len, out)));
        inFlight.add(task);
        pool.execute(task);
    }

    /** Writes every segment still in flight. */
    void finish() throws IOException {
        while (!inFlight.isEmpty()) {
            drainOne();
        }
    }

    private int transformWithLentCipher(long index, boolean last, byte[] in, int len, byte[] out)
            throws ShardException {
        SegmentCipher c = idleCiphers.poll();
        if (c == null) {
            c = newCipher.get();
        }
        try {
            return transform.apply(c, index, last, in, len, out);
        } finally {
            idleCiphers.add(c);
        }
    }

    private void drainOne() throws IOException {
        FutureTask<Done> f = inFlight.poll();
        // Help instead of waiting: run() transforms a segment no pool thread has started and
        // returns at once for one that is running or done (FutureTask lets one thread run it).
        if (!f.isDone()) {
            f.run();
            for (FutureTask<Done> later : inFlight) {
                if (f.isDone()) {
                    break;
                }
                later.run();
            }
        }
        Done d;
        try {
            d = f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while processing segments");
        } catch (ExecutionException e) {
            switch (e.getCause()) {
                case IOException io -> throw io;
                case RuntimeException r -> throw r;
                case Error err -> throw err;
                default -> throw new IllegalStateException(e.getCause());
            }
        }
        sink.write(d.out(), 0, d.length());
        recycle(d.in(), d.out());
    }

    private void recycle(byte[] in, byte[] out) {
        freeIn.add(in);
        freeOut.add(out);
    }

    /** Stops the pool (waiting for segments being processed) and wipes every buffer. Idempotent. */
    @Override
    public void close() {
        if (pool != null) {
            for (Future<Done> f : inFlight) {
                f.cancel(false);
            }
            inFlight.clear();
            pool.close(); // waits for running transforms, so no buffer is wiped under one
        }
        idleCiphers.clear();
        for (byte[] b : allocated) {
            Arrays.fill(b, (byte) 0);
        }
        allocated.clear();
        freeIn.clear();
        freeOut.clear();
    }
}
