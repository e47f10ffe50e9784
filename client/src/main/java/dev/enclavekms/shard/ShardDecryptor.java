package dev.enclavekms.shard;

import dev.enclavekms.client.KmsException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongConsumer;

/**
 * Decrypts one shard file: {@link #open} checks the header (context, data key, header
 * tag) once; then the body can be decrypted as a stream, or read at random positions with
 * {@link #newReader}.
 *
 * <pre>{@code
 * // whole file, streaming
 * try (var in = Files.newInputStream(shard); var out = Files.newOutputStream(plain)) {
 *     ShardDecryptor.decrypt(in, out, DataKeyUnwrapper.using(kms), Map.of("model", "llama-3-8b"));
 * }
 * // one tensor
 * try (var r = ShardReader.open(shard, DataKeyUnwrapper.using(kms), context)) {
 *     r.read(offset, buffer);
 * }
 * }</pre>
 *
 * <p>Guarantees: no plaintext of a segment is released before its tag verifies; every
 * segment is checked at its index with the last-segment flag its position implies, so
 * reordering, segments from other files, truncation and extension all fail with a
 * {@link ShardException} that says which. With the streaming forms the segments before a
 * failing one have been written already: a caller must discard its output unless
 * decryption returned normally (kmsctl writes to a temporary file and renames it only
 * then).
 *
 * <p>Holds the file's derived keys (never the data key, which is wiped once they are
 * derived) until {@link #close()}. Thread-safe: several streams and readers may use one
 * decryptor concurrently, each with its own cipher.
 */
public final class ShardDecryptor implements AutoCloseable {
    private final ShardHeader header;
    private final ShardKeys keys;
    private volatile boolean closed;

    private ShardDecryptor(ShardHeader header, ShardKeys keys) {
        this.header = header;
        this.keys = keys;
    }

    /**
     * Checks a header and recovers the file's keys: the context must equal
     * {@code context}; the unwrapper turns the wrapped data key into the data key (the KMS
     * checks its envelope and context); the header tag must verify under it.
     *
     * @param context the context the caller expects the shard to be bound to; null for none
     * @throws ShardException CONTEXT_MISMATCH, HEADER_AUTHENTICATION_FAILED, or
     *                        MALFORMED_HEADER when the unwrapped key is not 32 bytes
     * @throws KmsException   from the unwrapper (e.g. DecryptionFailed, KeyVersionDestroyed)
     */
    public static ShardDecryptor open(ShardHeader header, DataKeyUnwrapper unwrapper, Map<String, String> context)
            throws KmsException, IOException {
        Objects.requireNonNull(header, "header");
        Objects.requireNonNull(unwrapper, "unwrapper");
        Map<String, String> expected = ShardFormat.canonicalContext(context);
        if (!expected.equals(header.context())) {
            throw new ShardException(ShardException.Reason.CONTEXT_MISMATCH, -1,
                    "the shard is bound to context " + header.context() + ", not " + expected);
        }
        byte[] dataKey = unwrapper.unwrap(header.wrappedDataKey(), header.context());
        ShardKeys keys;
        try {
            if (dataKey == null || dataKey.length != ShardFormat.DATA_KEY_BYTES) {
                throw ShardFormat.malformed("the data key has " + (dataKey == null ? 0 : dataKey.length)
                        + " bytes; shard format 1 uses " + ShardFormat.DATA_KEY_BYTES);
            }
            keys = ShardKeys.derive(dataKey, header.salt(), header.parameters());
        } finally {
            if (dataKey != null) {
                Arrays.fill(dataKey, (byte) 0);
            }
        }
        if (!keys.verifies(header)) {
            keys.close();
            throw new ShardException(ShardException.Reason.HEADER_AUTHENTICATION_FAILED, -1,
                    "the shard header fails authentication: it was modified, or its wrapped data key was replaced");
        }
        return new ShardDecryptor(header, keys);
    }

    /** Reads the header from {@code shard} and decrypts the rest of it into {@code out} (one thread); neither is closed. */
    public static long decrypt(InputStream shard, OutputStream out, DataKeyUnwrapper unwrapper,
                               Map<String, String> context) throws KmsException, IOException {
        ShardHeader header = ShardHeader.read(shard);
        try (ShardDecryptor d = open(header, unwrapper, context)) {
            return d.decrypt(shard, out, 1);
        }
    }

    /**
     * Decrypts the shard file {@code shard} into the file {@code plaintext} on
     * {@code threads} threads, each reading, decrypting and writing its own segments
     * ({@link ShardReader#decryptInto}). The plaintext goes to a temporary file in the same
     * directory ({@code .NAME.*.tmp}, mode 0600), renamed over {@code plaintext} atomically
     * only when every segment authenticated; on any failure it is deleted, so no plaintext
     * file is left and {@code plaintext} is untouched. Not forced to the disk.
     *
     * @param context  the context the caller expects; null for none
     * @param progress called with ciphertext bytes as segments complete, one call at a
     *                 time, from any worker thread; null for none
     * @return the plaintext length
     * @throws ShardException for the header, the layout, or the lowest-numbered segment that fails
     */
    public static long decryptFile(Path shard, Path plaintext, DataKeyUnwrapper unwrapper, Map<String, String> context,
                                   int threads, LongConsumer progress) throws KmsException, IOException {
        Objects.requireNonNull(plaintext, "plaintext");
        try (ShardReader reader = ShardReader.open(shard, unwrapper, context)) {
            long[] written = {0};
            AtomicFiles.write(plaintext, out -> written[0] = reader.decryptInto(out, threads, progress));
            return written[0];
        }
    }

    /**
     * Reads the header from {@code shard} and returns a stream of its plaintext; closing
     * the stream closes {@code shard} and wipes the keys.
     */
    public static InputStream newDecryptingStream(InputStream shard, DataKeyUnwrapper unwrapper,
                                                  Map<String, String> context) throws KmsException, IOException {
        ShardHeader header = ShardHeader.read(shard);
        ShardDecryptor d = open(header, unwrapper, context);
        return new DecryptingInputStream(shard, d.keys, header, d);
    }

    public ShardHeader header() {
        return header;
    }

    /**
     * Decrypts a body (the stream positioned just after the header) into {@code out},
     * with {@code threads} threads decrypting segments (the caller's included); output is
     * written in order. Neither stream is closed.
     *
     * @return the number of plaintext bytes written
     * @throws ShardException for the first segment that fails; the ones before it were written
     */
    public long decrypt(InputStream body, OutputStream out, int threads) throws IOException {
        Objects.requireNonNull(body, "body");
        Objects.requireNonNull(out, "out");
        return decrypt(body, (b, off, len) -> out.write(b, off, len), threads);
    }

    /**
     * As {@link #decrypt(InputStream, OutputStream, int)} for (blocking) channels; neither
     * is closed. A file is read through a mapping ({@link MappedFileInput}).
     */
    public long decrypt(ReadableByteChannel body, WritableByteChannel out, int threads) throws IOException {
        Objects.requireNonNull(body, "body");
        Objects.requireNonNull(out, "out");
        SegmentPipeline.Sink sink = (b, off, len) -> ShardEncryptor.writeFully(out, ByteBuffer.wrap(b, off, len));
        if (body instanceof FileChannel file) {
            try (MappedFileInput mapped = MappedFileInput.of(file)) {
                if (mapped != null) {
                    return decrypt(mapped, sink, threads);
                }
            }
        }
        return decrypt(Channels.newInputStream(body), sink, threads);
    }

    private long decrypt(InputStream body, SegmentPipeline.Sink out, int threads) throws IOException {
        checkOpen();
        int s = header.segmentSize();
        long[] written = {0};
        SegmentPipeline.Sink counting = (b, off, len) -> {
            out.write(b, off, len);
            written[0] += len;
        };
        try (SegmentPipeline pipeline = new SegmentPipeline(threads, s + ShardFormat.TAG_BYTES, s,
                () -> new SegmentCipher(keys, header.noncePrefix()),
                (cipher, i, last, in, len, o) -> cipher.open(i, last, in, 0, len, o, 0), counting)) {
            SegmentFramer framer = new SegmentFramer(body, s + ShardFormat.TAG_BYTES);
            for (long index = 0; ; index++) {
                byte[] buf = pipeline.inputBuffer();
                int n = framer.next(buf);
                if (framer.last()) {
                    // Earlier segments first: one of them may explain this one (e.g. data appended after the end).
                    pipeline.finish();
                    checkFinalLength(index, true, n);
                }
                if (index >= ShardFormat.MAX_SEGMENTS) {
                    pipeline.finish();
                    throw new ShardException(ShardException.Reason.TRAILING_DATA, index,
                            "the shard has more than 2^32 segments: data follows its end");
                }
                pipeline.submit(index, framer.last(), buf, n);
                if (framer.last()) {
                    break;
                }
            }
            pipeline.finish();
        }
        return written[0];
    }

    /**
     * Decrypts a shard body held in memory (the bytes after the header, to the end of the
     * shard: {@code body.remaining()} of them) into {@code out} from its position, on
     * {@code threads} threads each opening its own segments straight from one buffer into
     * the other (heap buffers: array to array; direct buffers through each thread's own
     * arrays). All or nothing: when any segment fails — a flipped bit, a cut, data appended,
     * segments swapped — the whole output range is zeroed, neither position moves, and the
     * failure of the lowest segment that failed is thrown, as the stream form reports it.
     *
     * @return the number of plaintext bytes written ({@code out}'s position advances by it,
     *         {@code body}'s to its limit)
     * @throws IllegalArgumentException when {@code out} has less room than the plaintext
     */
    public long decrypt(ByteBuffer body, ByteBuffer out, int threads) throws IOException {
        Objects.requireNonNull(body, "body");
        Objects.requireNonNull(out, "out");
        checkOpen();
        int s = header.segmentSize();
        int c = s + ShardFormat.TAG_BYTES;
        long length = body.remaining();
        long segments = Math.max(1, (length + c - 1) / c);
        if (segments > ShardFormat.MAX_SEGMENTS) {
            throw new ShardException(ShardException.Reason.TRAILING_DATA, ShardFormat.MAX_SEGMENTS,
                    "the shard has more than 2^32 segments: data follows its end");
        }
        int finalLength = (int) (length - (segments - 1) * c);
        checkFinalLength(segments - 1, true, finalLength);
        long plainLength = length - segments * ShardFormat.TAG_BYTES;
        if (out.remaining() < plainLength) {
            throw new IllegalArgumentException("the output buffer has " + out.remaining() + " bytes of room; the"
                    + " plaintext is " + plainLength);
        }
        int in0 = body.position();
        int out0 = out.position();
        try {
            SegmentWorkers.run(segments, threads, null, () -> new SegmentWorkers.Worker() {
                final SegmentCipher cipher = new SegmentCipher(keys, header.noncePrefix());
                byte[] in;
                byte[] plain;

                @Override
                public long process(long index) throws IOException {
                    boolean last = index == segments - 1;
                    int at = in0 + (int) (index * c);
                    int len = last ? finalLength : c;
                    int to = out0 + (int) (index * s);
                    if (body.hasArray() && out.hasArray()) {
                        return cipher.open(index, last, body.array(), body.arrayOffset() + at, len, out.array(),
                                out.arrayOffset() + to);
                    }
                    if (in == null) {
                        in = new byte[c];
                        plain = new byte[s];
                    }
                    body.get(at, in, 0, len);
                    int n = cipher.open(index, last, in, 0, len, plain, 0);
                    out.put(to, plain, 0, n);
                    return n;
                }

                @Override
                public void close() {
                    if (plain != null) {
                        Arrays.fill(plain, (byte) 0);
                    }
                }
            }, null);
        } catch (IOException | RuntimeException e) {
            // Segments complete in no particular order on several threads: withhold them all.
            byte[] zeros = new byte[(int) Math.min(plainLength, 1 << 16)];
            for (long off = 0; off < plainLength; off += zeros.length) {
                out.put(out0 + (int) off, zeros, 0, (int) Math.min(zeros.length, plainLength - off));
            }
            throw e;
        }
        body.position(in0 + (int) length);
        out.position(out0 + (int) plainLength);
        return plainLength;
    }

    /**
     * A final segment must hold at least its tag, and be empty only when it is the only
     * segment (then the plaintext is empty); anything shorter is a cut.
     */
    static void checkFinalLength(long index, boolean last, int length) throws ShardException {
        if (!last) {
            return;
        }
        if (length == 0 && index == 0) {
            throw new ShardException(ShardException.Reason.TRUNCATED, 0,
                    "the shard is truncated: it ends after its header, with no segment");
        }
        if (length < ShardFormat.TAG_BYTES || (length == ShardFormat.TAG_BYTES && index > 0)) {
            throw new ShardException(ShardException.Reason.TRUNCATED, index,
                    "the shard is truncated: it ends inside segment " + index);
        }
    }

    /** A stream of the plaintext of {@code body} (positioned after the header); closing it closes {@code body}. */
    public InputStream newDecryptingStream(InputStream body) {
        checkOpen();
        return new DecryptingInputStream(Objects.requireNonNull(body, "body"), keys, header, null);
    }

    /**
     * Random access to the plaintext of the shard in {@code file}, whose header must be
     * this decryptor's. The reader does not close the channel, nor this decryptor.
     *
     * @throws ShardException when the file's length is not a valid layout, or its final
     *                        segment fails (truncation and extension are found here, at open)
     */
    public ShardReader newReader(FileChannel file) throws IOException {
        checkOpen();
        return ShardReader.create(file, false, this, header, keys, false);
    }

    ShardKeys keys() {
        return keys;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this ShardDecryptor is closed");
        }
    }

    /** Wipes the file's keys. Streams and readers made from this decryptor stop working. Idempotent. */
    @Override
    public void close() {
        closed = true;
        keys.close();
    }
}
