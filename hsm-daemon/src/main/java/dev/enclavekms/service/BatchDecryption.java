package dev.enclavekms.service;

import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.format.Envelope;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One DecryptBatch call (issue 9: a batch within 0.9× of the device's own rate). The
 * device's time per entry is fixed — SoftHSM serialises operations on a token key, so a
 * second session adds nothing (measured, docs/performance.md) — so the rest is kept off
 * the device's path in two ways:
 *
 * <ul>
 *   <li><b>Decided once per call</b>: the policy decision, registry lookup and version
 *       check for each key version the entries name, and its AAD. A batch is one call
 *       with one caller, one context and one audit record, so it sees one snapshot of the
 *       policy and the registry per key version, taken by the first entry naming it; an
 *       error is remembered too, so every entry naming a denied key gets the same error.</li>
 *   <li><b>Overlapped</b>: three stages, chunk by chunk. A preparing thread parses the
 *       envelopes and looks up their key versions; the calling thread only drives the
 *       device; a third thread hands each finished chunk to the sink (which encodes it for
 *       the reply). While the device works on chunk n, chunk n+1 is prepared and chunk
 *       n−1 encoded. The first chunk is prepared, and the last one handed to the sink, by
 *       the calling thread itself: no thread hand-off before the device's first entry or
 *       after its last.</li>
 * </ul>
 *
 * <p>The hand-off queues are unbounded on purpose: at most the whole batch waits in them,
 * the same bound as holding every plaintext until the end (as the one-stage loop did),
 * and a thread that never blocks on a full queue cannot deadlock with a failed stage.
 * Prepared entries hold no secret; only the last two stages see plaintexts, and every
 * plaintext is closed by the sink or, on a failure, here.
 */
final class BatchDecryption {
    /** Entries per hand-off: small, so that the first chunk's preparation and the last one's encoding add little. */
    static final int CHUNK_ENTRIES = 256;
    /**
     * The first chunk is smaller still, and the next ones grow to {@link #CHUNK_ENTRIES} (16, 64,
     * 256, ...): the device waits for the first chunk's preparation, which on a loaded machine
     * took 1–5 ms for 256 entries (session 5), while later chunks are prepared beside it.
     */
    static final int FIRST_CHUNK_ENTRIES = 16;
    /** Tells the next stage that no chunk follows (compared by identity). */
    private static final List<Prepared> NO_MORE = Collections.unmodifiableList(new ArrayList<>());
    private static final List<CryptoService.BatchEntry> END = Collections.unmodifiableList(new ArrayList<>());

    private final CryptoService service;
    private final EncryptionContext context;

    private record Header(String keyName, int keyVersion, Envelope.SealingScheme scheme) { }

    /** A key version checked for this call, and the AAD of its envelopes under the call's context. */
    private record Opening(CryptoService.Source source, byte[] aad) { }

    /** An entry ready for the device (envelope and opening), or the caller's error for it. */
    private record Prepared(Envelope envelope, Opening opening, KmsError.CallerError error) { }

    BatchDecryption(CryptoService service, EncryptionContext context) {
        this.service = service;
        this.context = context;
    }

    void run(List<byte[]> ciphertexts, CryptoService.BatchSink sink) throws KmsError {
        LinkedBlockingQueue<List<Prepared>> prepared = new LinkedBlockingQueue<>();
        LinkedBlockingQueue<List<CryptoService.BatchEntry>> done = new LinkedBlockingQueue<>();
        Preparer preparer = new Preparer(ciphertexts, prepared);
        SinkThread handOver = new SinkThread(done, sink);
        Thread preparing = Thread.ofVirtual().name("decrypt-batch-prepare").start(preparer);
        Thread handing = Thread.ofVirtual().name("decrypt-batch-sink").start(handOver);
        // The first and the last chunk stay on this thread: the device starts on entries
        // prepared here, not after the preparer is scheduled and hands them over, and ends
        // with the last chunk's encoding here, not after the sink is woken and joined (each
        // wake-up took 1–4 ms on a loaded machine, session 5). The stages in between are as before.
        List<CryptoService.BatchEntry> last = null;
        boolean endSent = false;
        try {
            List<Prepared> chunk = preparer.first();
            for (int from = 0; chunk != NO_MORE && handOver.failure == null; chunk = take(prepared)) {
                from += chunk.size();
                if (from == ciphertexts.size()) {
                    done.add(END); // the sink finishes the chunks before it while the device does this one
                    endSent = true;
                    last = decrypt(chunk);
                    break;
                }
                done.add(decrypt(chunk));
            }
            preparer.rethrowFailure();
        } finally {
            preparer.stopped = true;
            if (!endSent) done.add(END);
            // Both stages must be finished before we return or throw: the sink with its
            // chunks, the preparer with the registry and policy it reads.
            joinUninterruptibly(preparing);
            joinUninterruptibly(handing);
        }
        if (handOver.failure != null) {
            if (last != null) close(last);
            throw handOver.failure;
        }
        if (last != null && !last.isEmpty()) {
            handOver.accept(last); // after the sink thread ended (joined): in order, one at a time
            if (handOver.failure != null) throw handOver.failure;
        }
    }

    /** Decrypts one chunk; a fault of the service closes what the chunk holds and fails the call. */
    private List<CryptoService.BatchEntry> decrypt(List<Prepared> chunk) throws KmsError {
        List<CryptoService.BatchEntry> out = new ArrayList<>(chunk.size());
        try {
            for (Prepared p : chunk) {
                out.add(entry(p));
            }
        } catch (KmsError.ServiceFault | RuntimeException e) {
            // The device is gone (the rest would fail the same way), or a bug: release what we hold.
            close(out);
            throw e;
        }
        return out;
    }

    private CryptoService.BatchEntry entry(Prepared p) throws KmsError.ServiceFault {
        if (p.error() != null) {
            return new CryptoService.BatchEntry(null, p.error());
        }
        try {
            Opening o = p.opening();
            return new CryptoService.BatchEntry(service.unseal(o.source(), p.envelope(), o.aad()), null);
        } catch (KmsError.CallerError e) {
            return new CryptoService.BatchEntry(null, e);
        } catch (KmsError.ServiceFault e) {
            throw e;
        } catch (KmsError e) {
            throw new IllegalStateException("a KmsError is a caller error or a service fault", e);
        }
    }

    /** The first stage: envelopes parsed and key versions decided, chunk by chunk. */
    private final class Preparer implements Runnable {
        private final List<byte[]> ciphertexts;
        private final LinkedBlockingQueue<List<Prepared>> out;
        /**
         * Per key version and scheme an envelope header names: an {@link Opening} or the caller's
         * error. Shared by the calling thread (first chunk) and this one: decided once, by
         * whichever reaches the header first ({@code computeIfAbsent}).
         */
        private final ConcurrentHashMap<Header, Object> decided = new ConcurrentHashMap<>();
        volatile boolean stopped;
        private volatile Exception failure;

        Preparer(List<byte[]> ciphertexts, LinkedBlockingQueue<List<Prepared>> out) {
            this.ciphertexts = ciphertexts;
            this.out = out;
        }

        /**
         * The first chunk, prepared on the calling thread while this preparer's thread starts on
         * the second: the device starts without waiting for another thread.
         */
        List<Prepared> first() throws KmsError {
            return prepareChunk(0, FIRST_CHUNK_ENTRIES);
        }

        @Override
        public void run() {
            try {
                for (int from = FIRST_CHUNK_ENTRIES, size = nextChunkSize(FIRST_CHUNK_ENTRIES);
                     from < ciphertexts.size() && !stopped; from += size, size = nextChunkSize(size)) {
                    out.add(prepareChunk(from, size));
                }
            } catch (KmsError.ServiceFault | RuntimeException e) {
                failure = e;
            } catch (Error e) {
                failure = new IllegalStateException("preparing the batch failed", e);
            } finally {
                out.add(NO_MORE);
            }
        }

        private List<Prepared> prepareChunk(int from, int size) throws KmsError.ServiceFault {
            List<byte[]> chunk = ciphertexts.subList(Math.min(from, ciphertexts.size()),
                    Math.min(from + size, ciphertexts.size()));
            List<Prepared> ready = new ArrayList<>(chunk.size());
            for (byte[] c : chunk) {
                ready.add(prepare(c));
            }
            return ready;
        }

        private Prepared prepare(byte[] ciphertext) throws KmsError.ServiceFault {
            try {
                Envelope env = CryptoService.envelope(ciphertext);
                return new Prepared(env, opening(env), null);
            } catch (KmsError.CallerError e) {
                return new Prepared(null, null, e);
            } catch (KmsError.ServiceFault e) {
                throw e;
            } catch (KmsError e) {
                throw new IllegalStateException("a KmsError is a caller error or a service fault", e);
            }
        }

        private Opening opening(Envelope env) throws KmsError {
            Header h = new Header(env.keyName(), env.keyVersion(), env.scheme());
            Object known = decided.get(h);
            if (known == null) {
                try {
                    known = decided.computeIfAbsent(h, k -> {
                        try {
                            return new Opening(service.decryptionSource(env, context), env.aad(context));
                        } catch (KmsError.CallerError e) {
                            return e;
                        } catch (KmsError e) {
                            throw new NotDecided(e); // a service fault is not remembered: it fails the call
                        }
                    });
                } catch (NotDecided e) {
                    throw e.fault;
                }
            }
            if (known instanceof KmsError.CallerError e) {
                throw e;
            }
            return (Opening) known;
        }

        /** Read after NO_MORE was taken, which the preparer adds after setting any failure. */
        void rethrowFailure() throws KmsError {
            switch (failure) {
                case null -> { }
                case KmsError e -> throw e;
                case RuntimeException e -> throw e;
                default -> throw new IllegalStateException("preparing the batch failed", failure);
            }
        }
    }

    private static int nextChunkSize(int size) {
        return Math.min(CHUNK_ENTRIES, size * 4);
    }

    /** The sizes of the chunks a batch of {@code entries} is handed on in, in order. */
    static List<Integer> chunkSizes(int entries) {
        List<Integer> sizes = new ArrayList<>();
        for (int from = 0, size = FIRST_CHUNK_ENTRIES; from < entries; from += size, size = nextChunkSize(size)) {
            sizes.add(Math.min(size, entries - from));
        }
        return sizes;
    }

    /** Carries a service fault out of {@code computeIfAbsent}, which stores nothing for it. */
    private static final class NotDecided extends RuntimeException {
        private final KmsError fault;

        NotDecided(KmsError fault) {
            super(null, null, false, false);
            this.fault = fault;
        }
    }

    static void close(List<CryptoService.BatchEntry> entries) {
        for (CryptoService.BatchEntry e : entries) {
            if (e.result() != null) e.result().close();
        }
    }

    private static void joinUninterruptibly(Thread t) {
        boolean interrupted = false;
        while (true) {
            try {
                t.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** Every stage ends its queue with a marker, so waiting for the next item always ends. */
    private static <T> T take(LinkedBlockingQueue<T> queue) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return queue.take();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** Feeds finished chunks to the sink in order; after a failure of the sink it only closes them. */
    private static final class SinkThread implements Runnable {
        private final LinkedBlockingQueue<List<CryptoService.BatchEntry>> done;
        private final CryptoService.BatchSink sink;
        volatile RuntimeException failure;

        SinkThread(LinkedBlockingQueue<List<CryptoService.BatchEntry>> done, CryptoService.BatchSink sink) {
            this.done = done;
            this.sink = sink;
        }

        @Override
        public void run() {
            for (List<CryptoService.BatchEntry> chunk = take(done); chunk != END; chunk = take(done)) {
                if (failure != null) {
                    close(chunk);
                    continue;
                }
                accept(chunk);
            }
        }

        /** Hands one chunk to the sink; a failure of the sink is kept and closes the chunk. */
        void accept(List<CryptoService.BatchEntry> chunk) {
            try {
                sink.accept(chunk);
            } catch (RuntimeException e) {
                failure = e;
                close(chunk); // the sink should have; closing twice is harmless
            } catch (Error e) {
                failure = new IllegalStateException("the batch's sink failed", e);
                close(chunk);
            }
        }
    }
}
