package dev.enclavekms.service;

import dev.enclavekms.format.EncryptionContext;
import dev.enclavekms.format.Envelope;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
 *   <li><b>Overlapped</b>: the calling thread parses envelopes and drives the device chunk
 *       by chunk; a second thread hands each finished chunk to the sink (which encodes it
 *       for the reply) while the device works on the next.</li>
 * </ul>
 *
 * <p>The hand-off queue is unbounded on purpose: at most the whole batch waits in it, the
 * same bound as holding every plaintext until the end, and a device thread that never
 * blocks on it cannot deadlock with a failed sink.
 */
final class BatchDecryption {
    /** Entries per hand-off: small, so that the last chunk's encoding adds little after the device is done. */
    static final int CHUNK_ENTRIES = 256;
    /** Tells the sink's thread that no chunk follows. */
    private static final List<CryptoService.BatchEntry> END = List.of();

    private final CryptoService service;
    private final EncryptionContext context;
    /** Per key version and scheme an envelope header names: an {@link Opening} or the caller's error. */
    private final Map<Header, Object> decided = new HashMap<>();

    private record Header(String keyName, int keyVersion, Envelope.SealingScheme scheme) { }

    /** A key version checked for this call, and the AAD of its envelopes under the call's context. */
    private record Opening(CryptoService.Source source, byte[] aad) { }

    BatchDecryption(CryptoService service, EncryptionContext context) {
        this.service = service;
        this.context = context;
    }

    void run(List<byte[]> ciphertexts, CryptoService.BatchSink sink) throws KmsError {
        LinkedBlockingQueue<List<CryptoService.BatchEntry>> done = new LinkedBlockingQueue<>();
        SinkThread handOver = new SinkThread(done, sink);
        Thread thread = Thread.ofVirtual().name("decrypt-batch-sink").start(handOver);
        try {
            for (int from = 0; from < ciphertexts.size() && handOver.failure == null; from += CHUNK_ENTRIES) {
                done.add(decrypt(ciphertexts.subList(from, Math.min(from + CHUNK_ENTRIES, ciphertexts.size()))));
            }
        } finally {
            done.add(END);
            joinUninterruptibly(thread); // the sink must be finished with its chunks before we return or throw
        }
        if (handOver.failure != null) {
            throw handOver.failure;
        }
    }

    /** Decrypts one chunk; a fault of the service closes what the chunk holds and fails the call. */
    private List<CryptoService.BatchEntry> decrypt(List<byte[]> chunk) throws KmsError {
        List<CryptoService.BatchEntry> out = new ArrayList<>(chunk.size());
        try {
            for (byte[] c : chunk) {
                out.add(entry(c));
            }
        } catch (KmsError.ServiceFault | RuntimeException e) {
            // The device is gone (the rest would fail the same way), or a bug: release what we hold.
            close(out);
            throw e;
        }
        return out;
    }

    private CryptoService.BatchEntry entry(byte[] ciphertext) throws KmsError.ServiceFault {
        try {
            Envelope env = CryptoService.envelope(ciphertext);
            Opening o = opening(env);
            return new CryptoService.BatchEntry(service.unseal(o.source(), env, o.aad()), null);
        } catch (KmsError.CallerError e) {
            return new CryptoService.BatchEntry(null, e);
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
                known = new Opening(service.decryptionSource(env, context), env.aad(context));
            } catch (KmsError.CallerError e) {
                known = e;
            }
            decided.put(h, known); // a service fault is not remembered: it fails the call
        }
        if (known instanceof KmsError.CallerError e) {
            throw e;
        }
        return (Opening) known;
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
            for (List<CryptoService.BatchEntry> chunk = take(); chunk != END; chunk = take()) {
                if (failure != null) {
                    close(chunk);
                    continue;
                }
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

        /** Nobody interrupts this thread; if someone does, it still must drain the queue to END. */
        private List<CryptoService.BatchEntry> take() {
            while (true) {
                try {
                    return done.take();
                } catch (InterruptedException e) {
                    // keep going: the caller waits for END to be reached
                }
            }
        }
    }
}
