package dev.enclavekms.audit;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/**
 * Real stand-ins for the enclave in audit tests: a JCA ECDSA P-256 key that signs
 * checkpoints exactly as the enclave's key does (same algorithm, same DER), a JCA HMAC, and a
 * file channel that fails on demand as a full or broken disk would. No mocking library.
 */
final class AuditFixtures {
    private AuditFixtures() {
    }

    /** Signs checkpoints with a software P-256 key; a second instance is "another key". */
    static final class JcaSigner implements CheckpointSigner {
        final KeyPair pair;

        JcaSigner() {
            try {
                KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
                g.initialize(new ECGenParameterSpec("secp256r1"));
                pair = g.generateKeyPair();
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public Map<String, Object> keyFields() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put(AuditRecords.CHECKPOINT_KEY, AuditKeys.SIGNING_KEY);
            m.put(AuditRecords.CHECKPOINT_KEY_VERSION, 1L);
            m.put(AuditRecords.CHECKPOINT_KEY_ID, AuditKeys.keyId(pair.getPublic()));
            m.put(AuditRecords.CHECKPOINT_ALGORITHM, "EC_P256_SHA256");
            return m;
        }

        @Override
        public byte[] sign(byte[] message) throws GeneralSecurityException {
            Signature s = Signature.getInstance(JCA_ALGORITHM);
            s.initSign(pair.getPrivate());
            s.update(message);
            return s.sign();
        }

        @Override
        public PublicKey publicKey() {
            return pair.getPublic();
        }
    }

    /** HMAC-SHA256 under a fixed software key, formatted as the audit log shows it. */
    static StringHasher jcaHasher() {
        byte[] key = new byte[32];
        return value -> {
            try {
                javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
                mac.init(new javax.crypto.spec.SecretKeySpec(key, "HmacSHA256"));
                return StringHasher.PREFIX + HexFormat.of().formatHex(mac.doFinal(value.getBytes(StandardCharsets.UTF_8)));
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        };
    }

    /**
     * Opens real file channels that fail while {@link #failure} holds an exception: writes
     * fail after writing {@link #partialBytes} of their data (as a full disk does), and
     * fsync fails too.
     */
    static final class FaultyDisk implements AuditLog.ChannelOpener {
        final AtomicReference<IOException> failure = new AtomicReference<>();
        /** Like {@link #failure}, for record writes only (fsync, truncate and padding still work). */
        final AtomicReference<IOException> writeFailure = new AtomicReference<>();
        volatile int partialBytes;
        /**
         * When set, a record write waits for it first: holds the writer mid-commit while others
         * queue. The write that was held completes as it began, failures set meanwhile apply
         * to the writes after it.
         */
        volatile java.util.concurrent.CountDownLatch writeGate;
        /** Counted down as a record write starts waiting for {@link #writeGate}. */
        final java.util.concurrent.CountDownLatch writeHeld = new java.util.concurrent.CountDownLatch(1);
        /**
         * When set, the next fsync takes it (once) and waits for it: one commit's flush in
         * progress, for as long as a test needs, while later commits are written and flushed.
         */
        final AtomicReference<java.util.concurrent.CountDownLatch> forceGate = new AtomicReference<>();
        /** Counted down as an fsync starts waiting for {@link #forceGate}. */
        final java.util.concurrent.CountDownLatch forceHeld = new java.util.concurrent.CountDownLatch(1);
        /** What the held fsync throws once its gate opens (null: it succeeds). */
        volatile IOException heldForceFailure;
        /** Every fsync that completed without error, in order (the held one when it ends). */
        final java.util.concurrent.atomic.AtomicInteger forcesDone = new java.util.concurrent.atomic.AtomicInteger();
        /** The thread of every fsync that completed, in order ("virtual" for a virtual thread). */
        final java.util.Queue<String> forcedBy = new java.util.concurrent.ConcurrentLinkedQueue<>();

        @Override
        public FileChannel open(Path file, OpenOption... options) throws IOException {
            IOException f = failure.get();
            if (f != null) throw f;
            return new Channel(FileChannel.open(file, options));
        }

        final class Channel extends FileChannel {
            private final FileChannel d;

            Channel(FileChannel delegate) {
                this.d = delegate;
            }

            private void check() throws IOException {
                IOException f = failure.get();
                if (f != null) throw f;
            }

            @Override
            public int write(ByteBuffer src) throws IOException {
                return (int) write(new ByteBuffer[] {src}, 0, 1);
            }

            @Override
            public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
                java.util.concurrent.CountDownLatch gate = writeGate;
                if (gate != null && gate.getCount() > 0) { // once open, the gate holds no further write
                    writeHeld.countDown();
                    try {
                        gate.await();
                    } catch (InterruptedException e) {
                        throw new java.io.InterruptedIOException();
                    }
                    if (failure.get() == null) {
                        return d.write(srcs, offset, length); // the held write completes as it began
                    }
                }
                IOException f = failure.get() != null ? failure.get() : writeFailure.get();
                if (f != null) {
                    int n = partialBytes;
                    if (n > 0 && length > 0 && srcs[offset].remaining() > n) {
                        partialBytes = 0; // a partial write, then the error on the next one
                        ByteBuffer part = srcs[offset].slice(srcs[offset].position(), n);
                        int written = d.write(part);
                        srcs[offset].position(srcs[offset].position() + written);
                        return written;
                    }
                    throw f;
                }
                return d.write(srcs, offset, length);
            }

            @Override
            public void force(boolean metaData) throws IOException {
                java.util.concurrent.CountDownLatch gate = forceGate.getAndSet(null);
                if (gate != null) {
                    forceHeld.countDown();
                    try {
                        gate.await();
                    } catch (InterruptedException e) {
                        throw new java.io.InterruptedIOException();
                    }
                    IOException held = heldForceFailure;
                    if (held != null) throw held;
                }
                check();
                d.force(metaData);
                forcedBy.add(Thread.currentThread().isVirtual() ? "virtual" : Thread.currentThread().getName());
                forcesDone.incrementAndGet();
            }

            @Override
            public FileChannel truncate(long size) throws IOException {
                check();
                d.truncate(size);
                return this;
            }

            @Override
            public int read(ByteBuffer dst) throws IOException {
                return d.read(dst);
            }

            @Override
            public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
                return d.read(dsts, offset, length);
            }

            @Override
            public long position() throws IOException {
                return d.position();
            }

            @Override
            public FileChannel position(long newPosition) throws IOException {
                d.position(newPosition);
                return this;
            }

            @Override
            public long size() throws IOException {
                return d.size();
            }

            @Override
            public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
                return d.transferTo(position, count, target);
            }

            @Override
            public long transferFrom(ReadableByteChannel src, long position, long count) throws IOException {
                return d.transferFrom(src, position, count);
            }

            @Override
            public int read(ByteBuffer dst, long position) throws IOException {
                return d.read(dst, position);
            }

            @Override
            public int write(ByteBuffer src, long position) throws IOException {
                check();
                return d.write(src, position);
            }

            @Override
            public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
                return d.map(mode, position, size);
            }

            @Override
            public FileLock lock(long position, long size, boolean shared) throws IOException {
                return d.lock(position, size, shared);
            }

            @Override
            public FileLock tryLock(long position, long size, boolean shared) throws IOException {
                return d.tryLock(position, size, shared);
            }

            @Override
            protected void implCloseChannel() throws IOException {
                d.close();
            }
        }
    }

    /** Every line of every log file in {@code dir}, in chain order. */
    static List<String> lines(Path dir) throws IOException {
        List<String> out = new ArrayList<>();
        for (Path f : AuditLog.logFiles(dir)) {
            out.addAll(AuditPadding.lines(f)); // the file being written ends in zero padding
        }
        return out;
    }

    static List<Map<String, Object>> records(Path dir) throws Exception {
        List<Map<String, Object>> out = new ArrayList<>();
        for (String l : lines(dir)) {
            out.add(CanonicalJson.parseCanonical(l));
        }
        return out;
    }

    static Map<String, Object> call(String method, Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(AuditRecords.TYPE, AuditRecords.TYPE_CALL);
        m.put("method", method);
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    /** Waits until {@code condition} holds, at most {@code limit}; false if it never did. */
    static boolean eventually(Duration limit, BooleanSupplier condition) {
        Instant deadline = Instant.now().plus(limit);
        while (!condition.getAsBoolean()) {
            if (Instant.now().isAfter(deadline)) return false;
            java.util.concurrent.locks.LockSupport.parkNanos(2_000_000);
        }
        return true;
    }
}
