package dev.enclavekms.shard;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.client.KmsException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongConsumer;

/**
 * Encrypts shard files (format 1, docs/formats.md) under one data key from the KMS.
 *
 * <pre>{@code
 * try (var kms = KmsClient.connectDefault();
 *      var enc = ShardEncryptor.generate(kms, "model-weights", Map.of("model", "llama-3-8b"),
 *              ShardEncryptor.Options.DEFAULT.withThreads(4));
 *      var in = Files.newInputStream(plain);
 *      var out = Files.newOutputStream(shard)) {
 *     enc.encrypt(in, out);
 * }
 * // file to file, each thread reading and writing its own segments
 * enc.encryptFile(plain, shard, null);
 * }</pre>
 *
 * <p>Security: every file gets a fresh random 32-byte salt and 7-byte nonce prefix, so each
 * file has its own segment key even when one data key encrypts many files; within a file
 * each segment's nonce is unique by construction (its index). The plaintext is
 * authenticated segment by segment, its order and its end included (docs/formats.md).
 *
 * <p>Holds the data key in the clear until {@link #close()}, which wipes it (best effort:
 * the JVM may have copied it). Prefer one encryptor per file or per batch of files, closed
 * promptly. Thread-safe: files may be encrypted concurrently by several threads.
 */
public final class ShardEncryptor implements AutoCloseable {

    /**
     * Non-secret settings.
     *
     * @param segmentSize plaintext bytes per segment, {@value ShardFormat#MIN_SEGMENT_SIZE}
     *                    .. 64 MiB (stored in the header; the reader needs no setting)
     * @param threads     threads encrypting segments of one file, the caller's included
     *                    (1: the caller's thread only); the output is the same for any
     *                    number of threads
     */
    public record Options(int segmentSize, int threads) {
        /** 1 MiB segments, one thread. */
        public static final Options DEFAULT = new Options(ShardFormat.DEFAULT_SEGMENT_SIZE, 1);

        public Options {
            if (segmentSize < ShardFormat.MIN_SEGMENT_SIZE || segmentSize > ShardFormat.MAX_SEGMENT_SIZE) {
                throw new IllegalArgumentException("segment size " + segmentSize + " is outside "
                        + ShardFormat.MIN_SEGMENT_SIZE + ".." + ShardFormat.MAX_SEGMENT_SIZE);
            }
            if (threads < 1 || threads > 256) {
                throw new IllegalArgumentException("threads must be 1..256, not " + threads);
            }
        }

        public Options withSegmentSize(int segmentSize) {
            return new Options(segmentSize, threads);
        }

        public Options withThreads(int threads) {
            return new Options(segmentSize, threads);
        }
    }

    /** Where the per-file salt and nonce prefix come from: random, except in the format's test vectors. */
    interface NonceMaterial {
        void fill(byte[] salt, byte[] noncePrefix);
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final NonceMaterial RANDOM_NONCES = (salt, prefix) -> {
        RANDOM.nextBytes(salt);
        RANDOM.nextBytes(prefix);
    };

    private final byte[] dataKey;
    private final String keyName;
    private final int keyVersion;
    private final byte[] wrappedDataKey;
    private final Map<String, String> context;
    private final Options options;
    private final NonceMaterial nonces;
    private boolean closed;

    private ShardEncryptor(DataKey dataKey, Map<String, String> context, Options options, NonceMaterial nonces) {
        Objects.requireNonNull(dataKey, "dataKey");
        this.options = Objects.requireNonNull(options, "options");
        this.context = ShardFormat.canonicalContext(context);
        if (dataKey.plaintext().length != ShardFormat.DATA_KEY_BYTES) {
            throw new IllegalArgumentException("a shard data key has " + ShardFormat.DATA_KEY_BYTES + " bytes, not "
                    + dataKey.plaintext().length);
        }
        ShardFormat.EnvelopeKey named;
        try {
            named = ShardFormat.envelopeKey(dataKey.ciphertext());
        } catch (ShardException e) {
            throw new IllegalArgumentException("the data key's ciphertext is not a KMS envelope", e);
        }
        if (!named.keyName().equals(dataKey.key()) || named.keyVersion() != dataKey.version()) {
            throw new IllegalArgumentException("the data key says " + dataKey.key() + " version " + dataKey.version()
                    + " but its envelope names " + named.keyName() + " version " + named.keyVersion());
        }
        if (dataKey.ciphertext().length > ShardFormat.MAX_WRAPPED_KEY_BYTES) {
            throw new IllegalArgumentException("the wrapped data key is over " + ShardFormat.MAX_WRAPPED_KEY_BYTES
                    + " bytes");
        }
        this.keyName = dataKey.key();
        this.keyVersion = dataKey.version();
        this.wrappedDataKey = dataKey.ciphertext().clone();
        this.dataKey = dataKey.plaintext().clone();
        this.nonces = nonces;
    }

    /**
     * Asks the KMS for a new data key under the primary version of {@code key}, bound to
     * {@code context}, and returns an encryptor holding it. The plaintext copy the client
     * returned is wiped here.
     *
     * @param context bound to the data key and stored in every header; null for none
     */
    public static ShardEncryptor generate(KmsClient kms, String key, Map<String, String> context, Options options)
            throws KmsException, IOException {
        DataKey dk = kms.generateDataKey(key, context);
        try {
            return new ShardEncryptor(dk, context, options, RANDOM_NONCES);
        } finally {
            Arrays.fill(dk.plaintext(), (byte) 0);
        }
    }

    /**
     * An encryptor for a data key the caller obtained (e.g. one of
     * {@link KmsClient#generateDataKeys}). The key is copied: the caller still owns and
     * wipes {@code dataKey.plaintext()}.
     *
     * @param context the context the data key was generated with (the KMS will demand it
     *                to unwrap); null for none
     * @throws IllegalArgumentException when the data key is not 32 bytes, or its ciphertext
     *                                  is not an envelope naming its key and version
     */
    public static ShardEncryptor of(DataKey dataKey, Map<String, String> context, Options options) {
        return new ShardEncryptor(dataKey, context, options, RANDOM_NONCES);
    }

    /** For the format's test vectors and for tests comparing outputs: fixed salt and prefix. */
    static ShardEncryptor withNonceMaterial(DataKey dataKey, Map<String, String> context, Options options,
                                            NonceMaterial nonces) {
        return new ShardEncryptor(dataKey, context, options, nonces);
    }

    public Options options() {
        return options;
    }

    /** The key the data key is wrapped under. */
    public String keyName() {
        return keyName;
    }

    public int keyVersion() {
        return keyVersion;
    }

    // ------------------------------------------------------------------------- encrypt

    /**
     * Encrypts {@code in} to its end into {@code out} as one shard file. Neither stream is
     * closed.
     *
     * @return the header written
     */
    public ShardHeader encrypt(InputStream in, OutputStream out) throws IOException {
        Objects.requireNonNull(in, "in");
        Objects.requireNonNull(out, "out");
        ShardFile f = start(out::write);
        try (EncryptingSink sink = f.sink) {
            sink.writeAll(in);
            sink.finish();
        }
        return f.header;
    }

    /** As {@link #encrypt(InputStream, OutputStream)} for channels (blocking); neither is closed. */
    public ShardHeader encrypt(ReadableByteChannel in, WritableByteChannel out) throws IOException {
        Objects.requireNonNull(in, "in");
        Objects.requireNonNull(out, "out");
        ShardFile f = start((b, off, len) -> writeFully(out, ByteBuffer.wrap(b, off, len)));
        try (EncryptingSink sink = f.sink) {
            sink.writeAll(in);
            sink.finish();
        }
        return f.header;
    }

    /**
     * A stream that encrypts what is written to it into {@code out}. The header is written
     * at once; the last segment when the stream is closed, which also closes {@code out}.
     * A stream that is never closed leaves a shard without its final segment, which every
     * reader rejects as truncated.
     */
    public OutputStream newEncryptingStream(OutputStream out) throws IOException {
        Objects.requireNonNull(out, "out");
        ShardFile f = start(out::write);
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                f.sink.write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                Objects.checkFromIndexSize(off, len, b.length);
                f.sink.write(b, off, len);
            }

            @Override
            public void flush() throws IOException {
                out.flush(); // the current segment cannot be written before it is complete
            }

            @Override
            public void close() throws IOException {
                if (f.sink.finished()) {
                    return;
                }
                try (out; EncryptingSink sink = f.sink) {
                    sink.finish();
                }
            }
        };
    }

    /** As {@link #newEncryptingStream} for a channel: closing the returned channel finishes the shard and closes {@code out}. */
    public WritableByteChannel newEncryptingChannel(WritableByteChannel out) throws IOException {
        Objects.requireNonNull(out, "out");
        ShardFile f = start((b, off, len) -> writeFully(out, ByteBuffer.wrap(b, off, len)));
        return new WritableByteChannel() {
            @Override
            public int write(ByteBuffer src) throws IOException {
                return f.sink.write(src);
            }

            @Override
            public boolean isOpen() {
                return !f.sink.finished();
            }

            @Override
            public void close() throws IOException {
                if (f.sink.finished()) {
                    return;
                }
                try (out; EncryptingSink sink = f.sink) {
                    sink.finish();
                }
            }
        };
    }

    /**
     * Encrypts the file {@code plaintext} into the shard file {@code shard}, with
     * {@link Options#threads()} threads each reading, encrypting and writing its own
     * segments (positioned I/O: no thread feeds the others). The shard is written to a
     * temporary file in the same directory ({@code .NAME.*.tmp}, mode 0600) and renamed
     * over {@code shard} atomically once complete; on failure the temporary file is
     * deleted and {@code shard} is untouched. The file is not forced to the disk (call
     * {@link #encryptInto} on a channel and {@code force} it for that).
     *
     * @param progress called with plaintext bytes as segments complete, one call at a
     *                 time, from any worker thread; null for none
     * @return the header written
     */
    public ShardHeader encryptFile(Path plaintext, Path shard, LongConsumer progress) throws IOException {
        Objects.requireNonNull(plaintext, "plaintext");
        ShardHeader[] header = new ShardHeader[1];
        AtomicFiles.write(shard, out -> {
            try (FileChannel in = FileChannel.open(plaintext, StandardOpenOption.READ)) {
                header[0] = encryptInto(in, out, progress);
            }
        });
        return header[0];
    }

    /**
     * Encrypts the whole of {@code plaintext} (from byte 0 to the size it has now) into
     * {@code shard} from byte 0, with positioned reads and writes only (neither channel's
     * position is used or moved); {@code shard} is truncated to the shard's length. The
     * header is written first: it depends on nothing in the body. {@code shard} must be
     * open for writing, not in append mode. The output is byte for byte what
     * {@link #encrypt(InputStream, OutputStream)} writes with the same salt and nonce
     * prefix, whatever the number of threads. Neither channel is closed.
     *
     * @param progress as in {@link #encryptFile}
     * @return the header written
     */
    public ShardHeader encryptInto(FileChannel plaintext, FileChannel shard, LongConsumer progress) throws IOException {
        Objects.requireNonNull(plaintext, "plaintext");
        Objects.requireNonNull(shard, "shard");
        long size = plaintext.size();
        int s = options.segmentSize();
        long segments = Math.max(1, (size + s - 1) / s);
        if (segments > ShardFormat.MAX_SEGMENTS) {
            throw new IOException("a " + size + "-byte file needs more than 2^32 segments of " + s + " bytes");
        }
        JitWarmup.startFor(s);
        Keyed file = newFile();
        try (ShardKeys keys = file.keys(); SegmentSource source = SegmentSource.of(plaintext, 0, size)) {
            ShardHeader header = file.header();
            byte[] encoded = header.encode();
            writeFully(shard, ByteBuffer.wrap(encoded), 0);
            long body = encoded.length;
            SegmentWorkers.run(segments, options.threads(), null, () -> new SegmentWorkers.Worker() {
                final SegmentCipher cipher = new SegmentCipher(keys, header.noncePrefix());
                final byte[] in = new byte[s];
                final byte[] out = new byte[s + ShardFormat.TAG_BYTES];

                @Override
                public long process(long index) throws IOException {
                    long at = index * s;
                    int len = (int) Math.min(s, size - at);
                    source.read(at, in, len, index);
                    int n = cipher.seal(index, index == segments - 1, in, 0, len, out, 0);
                    writeFully(shard, ByteBuffer.wrap(out, 0, n), body + index * (s + ShardFormat.TAG_BYTES));
                    return len;
                }

                @Override
                public void close() {
                    Arrays.fill(in, (byte) 0);
                }
            }, progress);
            shard.truncate(body + size + segments * ShardFormat.TAG_BYTES);
            return header;
        }
    }

    /**
     * The length of the shard {@link #encrypt(ByteBuffer, ByteBuffer)} makes of
     * {@code plaintextBytes} bytes: this encryptor's header and the segments with their tags.
     */
    public long shardLength(long plaintextBytes) {
        if (plaintextBytes < 0) {
            throw new IllegalArgumentException("negative length");
        }
        int s = options.segmentSize();
        long segments = Math.max(1, (plaintextBytes + s - 1) / s);
        int header = new ShardHeader(s, new byte[ShardFormat.SALT_BYTES], new byte[ShardFormat.NONCE_PREFIX_BYTES],
                context, new byte[ShardFormat.HEADER_TAG_BYTES], keyName, keyVersion, wrappedDataKey).encode().length;
        return header + plaintextBytes + segments * ShardFormat.TAG_BYTES;
    }

    /**
     * Encrypts the {@code plaintext.remaining()} bytes of a buffer (a tensor a runtime
     * holds in memory) into {@code shard} from its position: header, then segments, with
     * {@link Options#threads()} threads each sealing its own segments straight from one
     * buffer into the other (heap buffers: array to array, no copy; direct buffers go
     * through each thread's own arrays, where the JDK's AES-GCM is fastest). Both positions
     * advance over what was read and written; the output is byte for byte what
     * {@link #encrypt(InputStream, OutputStream)} writes with the same salt and nonce prefix.
     *
     * @throws IllegalArgumentException when {@code shard} has less room than {@link #shardLength}
     *                                  (nothing is written then)
     * @return the header written
     */
    public ShardHeader encrypt(ByteBuffer plaintext, ByteBuffer shard) throws IOException {
        Objects.requireNonNull(plaintext, "plaintext");
        Objects.requireNonNull(shard, "shard");
        long size = plaintext.remaining();
        long needed = shardLength(size);
        if (shard.remaining() < needed) {
            throw new IllegalArgumentException("the shard buffer has " + shard.remaining() + " bytes of room; "
                    + needed + " are needed");
        }
        int s = options.segmentSize();
        long segments = Math.max(1, (size + s - 1) / s);
        JitWarmup.startFor(s);
        Keyed file = newFile();
        try (ShardKeys keys = file.keys()) {
            ShardHeader header = file.header();
            byte[] encoded = header.encode();
            int in0 = plaintext.position();
            int out0 = shard.position();
            shard.put(out0, encoded);
            int body = out0 + encoded.length;
            SegmentWorkers.run(segments, options.threads(), null, () -> new SegmentWorkers.Worker() {
                final SegmentCipher cipher = new SegmentCipher(keys, header.noncePrefix());
                byte[] in;
                byte[] out;

                @Override
                public long process(long index) {
                    int at = in0 + (int) (index * s);
                    int len = (int) Math.min(s, size - index * s);
                    int to = body + (int) (index * (s + ShardFormat.TAG_BYTES));
                    boolean last = index == segments - 1;
                    if (plaintext.hasArray() && shard.hasArray()) {
                        cipher.seal(index, last, plaintext.array(), plaintext.arrayOffset() + at, len, shard.array(),
                                shard.arrayOffset() + to);
                        return len;
                    }
                    if (in == null) {
                        in = new byte[s];
                        out = new byte[s + ShardFormat.TAG_BYTES];
                    }
                    plaintext.get(at, in, 0, len);
                    int n = cipher.seal(index, last, in, 0, len, out, 0);
                    shard.put(to, out, 0, n);
                    return len;
                }

                @Override
                public void close() {
                    if (in != null) {
                        Arrays.fill(in, (byte) 0);
                    }
                }
            }, null);
            plaintext.position(in0 + (int) size);
            shard.position(out0 + (int) needed);
            return header;
        }
    }

    static void writeFully(FileChannel out, ByteBuffer b, long position) throws IOException {
        while (b.hasRemaining()) {
            position += out.write(b, position);
        }
    }

    private record ShardFile(ShardHeader header, EncryptingSink sink) { }

    private record Keyed(ShardHeader header, ShardKeys keys) { }

    /** A new file: fresh salt and prefix, its keys and its header. */
    private Keyed newFile() {
        byte[] salt = new byte[ShardFormat.SALT_BYTES];
        byte[] prefix = new byte[ShardFormat.NONCE_PREFIX_BYTES];
        nonces.fill(salt, prefix);
        byte[] parameters = ShardHeader.parameters(options.segmentSize(), salt, prefix, context);
        ShardKeys keys;
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("this ShardEncryptor is closed");
            }
            keys = ShardKeys.derive(dataKey, salt, parameters);
        }
        try {
            return new Keyed(new ShardHeader(options.segmentSize(), salt, prefix, context,
                    keys.headerTag(parameters), keyName, keyVersion, wrappedDataKey), keys);
        } catch (RuntimeException e) {
            keys.close();
            throw e;
        }
    }

    /** A new file: fresh salt and prefix, its keys, its header written to {@code out}. */
    private ShardFile start(SegmentPipeline.Sink out) throws IOException {
        Keyed file = newFile();
        ShardKeys keys = file.keys();
        byte[] prefix = file.header().noncePrefix();
        EncryptingSink sink = null;
        try {
            ShardHeader header = file.header();
            sink = new EncryptingSink(keys, prefix, options.segmentSize(), options.threads(), out);
            byte[] encoded = header.encode();
            out.write(encoded, 0, encoded.length);
            return new ShardFile(header, sink);
        } catch (IOException | RuntimeException e) {
            if (sink != null) {
                sink.close();
            } else {
                keys.close();
            }
            throw e;
        }
    }

    static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }

    /** Wipes the data key; files in progress keep their own derived keys until they finish. Idempotent. */
    @Override
    public synchronized void close() {
        closed = true;
        Arrays.fill(dataKey, (byte) 0);
    }

    /** For the wipe test. */
    synchronized boolean dataKeyWiped() {
        for (byte b : dataKey) if (b != 0) return false;
        return true;
    }

    /** Names the key and the options; never key material. */
    @Override
    public String toString() {
        return "ShardEncryptor[key=" + keyName + ", version=" + keyVersion + ", context=" + context + ", " + options
                + "]";
    }
}
