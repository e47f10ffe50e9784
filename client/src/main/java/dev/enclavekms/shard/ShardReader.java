package dev.enclavekms.shard;

import dev.enclavekms.client.KmsException;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongConsumer;

/**
 * Random access to the plaintext of a shard file: {@link #read(long, ByteBuffer)}
 * decrypts only the segments the range touches, so a runtime reads one tensor of a large
 * shard without decrypting the rest. The last segment decrypted is kept, so reads that
 * walk through a segment in small steps decrypt it once.
 *
 * <p>At open the file's length is checked against the layout and the final segment is
 * authenticated, so {@link #size()} is authentic: a shard cut at a segment boundary or
 * extended is refused here, before any read. Each read authenticates the segments it
 * touches; a segment that fails releases nothing.
 *
 * <p>Reads are serialised (one at a time per reader; open one reader per thread for
 * parallel reads). One read of several segments can itself use several threads
 * ({@link #readThreads}), and {@link #decryptInto} decrypts the whole file on several.
 * {@link #close()} wipes the cached plaintext and, when the reader owns them, the keys and
 * the channel.
 *
 * <p>Speed: the file is memory-mapped (read-only) when the channel allows it, and each
 * segment's ciphertext is copied from the mapping into the reader's buffer with one
 * {@code memcpy}; a positioned read into a heap buffer costs about twice that (the kernel
 * copies into a temporary direct buffer, the JDK copies that into the heap), and it was
 * the largest part of a random read (docs/performance.md, "Shards (issue 8)"). The
 * ciphertext is still copied before it is authenticated, never decrypted in place from
 * the mapping: a file changing under the reader cannot make the tag check and the
 * decryption see different bytes. A file cut while open fails with TRUNCATED, as with
 * positioned reads. {@code -Ddev.enclavekms.shard.mmap=false} turns mapping off.
 */
public final class ShardReader implements AutoCloseable {
    private final FileChannel file;
    private final boolean ownsFile;
    private final AutoCloseable decryptor;
    private final boolean ownsDecryptor;
    private final ShardHeader header;
    private final ShardKeys keys;
    private final SegmentCipher cipher;
    private final int segmentSize;
    private final long bodyOffset;
    private final long segments;
    private final int finalSegmentBytes;
    private final long size;
    private final byte[] ciphertext;
    private final byte[] plaintext;
    /** The whole file mapped read-only, or null (mapping refused or turned off): then positioned reads. */
    private final MemorySegment mapped;
    private final Arena mapping;
    /** Threads a read of two or more segments uses, the caller included (see {@link #readThreads}). */
    private int readThreads = 1;
    private ExecutorService readHelpers;
    /** Ciphers and buffers of the threads of parallel reads, kept between reads; wiped at close. */
    private final ConcurrentLinkedQueue<SegmentBuffers> spareBuffers = new ConcurrentLinkedQueue<>();
    private final List<SegmentBuffers> allBuffers = Collections.synchronizedList(new ArrayList<>());
    private long cachedIndex = -1;
    private int cachedLength;
    private long decryptions;
    private boolean closed;

    private ShardReader(FileChannel file, boolean ownsFile, AutoCloseable decryptor, boolean ownsDecryptor,
                        ShardHeader header, ShardKeys keys) throws IOException {
        this.file = file;
        this.ownsFile = ownsFile;
        this.decryptor = decryptor;
        this.ownsDecryptor = ownsDecryptor;
        this.header = header;
        this.keys = keys;
        this.cipher = new SegmentCipher(keys, header.noncePrefix());
        this.segmentSize = header.segmentSize();
        this.bodyOffset = header.length();
        int c = segmentSize + ShardFormat.TAG_BYTES;
        this.ciphertext = new byte[c];
        this.plaintext = new byte[segmentSize];
        JitWarmup.startFor(segmentSize);

        long body = file.size() - bodyOffset;
        if (body <= 0) {
            throw new ShardException(ShardException.Reason.TRUNCATED, 0,
                    "the shard is truncated: it ends after its header, with no segment");
        }
        long n = (body + c - 1) / c;
        int last = (int) (body - (n - 1) * c);
        this.segments = n;
        this.finalSegmentBytes = last;
        if (n > ShardFormat.MAX_SEGMENTS) {
            throw new ShardException(ShardException.Reason.TRAILING_DATA, ShardFormat.MAX_SEGMENTS,
                    "the shard has more than 2^32 segments: data follows its end");
        }
        if (last < ShardFormat.TAG_BYTES || (last == ShardFormat.TAG_BYTES && n > 1)) {
            // A fragment after the last whole segment: bytes appended to a complete shard, or a cut.
            throwIfExtended(n - 2);
            throw new ShardException(ShardException.Reason.TRUNCATED, n - 1,
                    "the shard is truncated: it ends inside segment " + (n - 1));
        }
        this.size = body - n * ShardFormat.TAG_BYTES;
        Arena arena = null;
        MemorySegment map = null;
        if (Boolean.parseBoolean(System.getProperty("dev.enclavekms.shard.mmap", "true"))) {
            arena = Arena.ofShared();
            try {
                map = file.map(FileChannel.MapMode.READ_ONLY, 0, bodyOffset + body, arena);
            } catch (IOException | UnsupportedOperationException e) {
                arena.close(); // not a mappable file (a pipe, a special file): positioned reads do
                arena = null;
            }
        }
        this.mapping = arena;
        this.mapped = map;
        try {
            decryptSegment(n - 1);
        } catch (ShardException e) {
            try {
                if (e.reason() == ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED) {
                    throwIfExtended(n - 2);
                }
            } finally {
                unmap();
            }
            throw e;
        } catch (IOException | RuntimeException e) {
            unmap();
            throw e;
        }
    }

    /**
     * Opens the shard at {@code path}: reads and checks its header, unwraps its data key,
     * checks the layout and the final segment. The reader owns the file and the keys.
     *
     * @param context the context the caller expects; null for none
     */
    public static ShardReader open(Path path, DataKeyUnwrapper unwrapper, Map<String, String> context)
            throws KmsException, IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            return open(ch, true, unwrapper, context);
        } catch (KmsException | IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** As {@link #open(Path, DataKeyUnwrapper, Map)} on an open channel, which the reader does not close. */
    public static ShardReader open(FileChannel file, DataKeyUnwrapper unwrapper, Map<String, String> context)
            throws KmsException, IOException {
        return open(file, false, unwrapper, context);
    }

    private static ShardReader open(FileChannel file, boolean ownsFile, DataKeyUnwrapper unwrapper,
                                    Map<String, String> context) throws KmsException, IOException {
        ShardHeader header = ShardHeader.parse(ShardHeader.readRaw(positionalStream(file)));
        ShardDecryptor d = ShardDecryptor.open(header, unwrapper, context);
        try {
            return create(file, ownsFile, d, header, d.keys(), true);
        } catch (IOException | RuntimeException e) {
            d.close();
            throw e;
        }
    }

    static ShardReader create(FileChannel file, boolean ownsFile, AutoCloseable decryptor, ShardHeader header,
                              ShardKeys keys, boolean ownsDecryptor) throws IOException {
        return new ShardReader(file, ownsFile, decryptor, ownsDecryptor, header, keys);
    }

    /** An InputStream reading the channel from position 0 with positional reads (the channel's position is not used). */
    private static InputStream positionalStream(FileChannel ch) {
        return new InputStream() {
            private long pos;

            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                int n = ch.read(ByteBuffer.wrap(b, off, len), pos);
                if (n > 0) {
                    pos += n;
                }
                return n;
            }
        };
    }

    public ShardHeader header() {
        return header;
    }

    /** The plaintext length, authenticated at open. */
    public long size() {
        return size;
    }

    /** The number of segments (at least 1). */
    public long segmentCount() {
        return segments;
    }

    /**
     * Reads plaintext from {@code position} into {@code dst}, as much as fits and exists;
     * like {@link FileChannel#read(ByteBuffer, long)}.
     *
     * @return the number of bytes read (0 when {@code dst} is full), or -1 when
     *         {@code position} is at or past the end
     * @throws ShardException when a segment touched fails (nothing of it is copied)
     */
    public synchronized int read(long position, ByteBuffer dst) throws IOException {
        Objects.requireNonNull(dst, "dst");
        if (position < 0) {
            throw new IllegalArgumentException("negative position");
        }
        checkOpen();
        if (position >= size) {
            return -1;
        }
        int want = (int) Math.min(dst.remaining(), size - position);
        if (readThreads > 1 && want > 0 && (position + want - 1) / segmentSize > position / segmentSize) {
            return readParallel(position, dst, want);
        }
        int total = 0;
        while (dst.hasRemaining() && position < size) {
            long index = position / segmentSize;
            int offset = (int) (position % segmentSize);
            int n;
            if (offset == 0 && index != cachedIndex && dst.hasArray() && dst.remaining() >= plaintextLength(index)) {
                n = decryptInto(index, dst);
            } else {
                decryptSegment(index);
                n = Math.min(dst.remaining(), cachedLength - offset);
                dst.put(plaintext, offset, n);
            }
            position += n;
            total += n;
        }
        return total;
    }

    /**
     * Decrypts the segments of {@code [position, position + want)} on {@link #readThreads}
     * threads, each straight into {@code dst} (a heap buffer's array for a whole segment) or
     * through its own buffer (a partial segment, or a direct buffer). The cache is neither
     * used nor changed. On failure the whole range of {@code dst} is zeroed and its
     * position does not move: segments that had authenticated are withheld too, since
     * with several threads they complete in no particular order.
     */
    private int readParallel(long position, ByteBuffer dst, int want) throws IOException {
        long first = position / segmentSize;
        long end = position + want;
        long count = (end - 1) / segmentSize - first + 1;
        int base = dst.position();
        try {
            SegmentWorkers.run(count, readThreads, readHelpers, () -> new SegmentWorkers.Worker() {
                final SegmentBuffers b = borrowBuffers();

                @Override
                public long process(long k) throws IOException {
                    long index = first + k;
                    long segmentStart = index * segmentSize;
                    int plain = plaintextLength(index);
                    long from = Math.max(position, segmentStart);
                    long to = Math.min(end, segmentStart + plain);
                    int at = base + (int) (from - position);
                    int len = readSegment(index, b.ciphertext);
                    if (dst.hasArray() && from == segmentStart && to == segmentStart + plain) {
                        open(b.cipher, index, b.ciphertext, len, dst.array(), dst.arrayOffset() + at);
                    } else {
                        open(b.cipher, index, b.ciphertext, len, b.plaintext, 0);
                        dst.put(at, b.plaintext, (int) (from - segmentStart), (int) (to - from));
                    }
                    return to - from;
                }

                @Override
                public void close() {
                    spareBuffers.add(b);
                }
            }, null);
        } catch (IOException | RuntimeException e) {
            byte[] zeros = new byte[Math.min(want, 1 << 16)];
            for (int off = 0; off < want; off += zeros.length) {
                dst.put(base + off, zeros, 0, Math.min(zeros.length, want - off));
            }
            throw e;
        }
        decryptions += count;
        dst.position(base + want);
        return want;
    }

    /** A cipher and buffers for one thread of a parallel read: kept between reads, wiped at close. */
    private static final class SegmentBuffers {
        final SegmentCipher cipher;
        final byte[] ciphertext;
        final byte[] plaintext;

        SegmentBuffers(ShardKeys keys, ShardHeader header) {
            this.cipher = new SegmentCipher(keys, header.noncePrefix());
            this.ciphertext = new byte[header.segmentSize() + ShardFormat.TAG_BYTES];
            this.plaintext = new byte[header.segmentSize()];
        }
    }

    private SegmentBuffers borrowBuffers() {
        SegmentBuffers b = spareBuffers.poll();
        if (b == null) {
            b = new SegmentBuffers(keys, header);
            allBuffers.add(b);
        }
        return b;
    }

    /**
     * Lets a read that touches two or more segments decrypt them on {@code threads}
     * threads, the caller's included ({@code threads - 1} daemon threads are started here
     * and stopped at {@link #close()}); 1 (the default) turns it off. A read of one
     * segment always runs on the caller's thread alone: handing it over would only add
     * latency.
     *
     * @return this reader
     */
    public synchronized ShardReader readThreads(int threads) throws IOException {
        if (threads < 1 || threads > 256) {
            throw new IllegalArgumentException("threads must be 1..256, not " + threads);
        }
        checkOpen();
        if (readHelpers != null) {
            readHelpers.shutdown();
            readHelpers = null;
        }
        readThreads = threads;
        if (threads > 1) {
            AtomicInteger n = new AtomicInteger();
            readHelpers = Executors.newFixedThreadPool(threads - 1, r -> Thread.ofPlatform().daemon()
                    .name("shard-reader-" + n.incrementAndGet()).unstarted(r));
        }
        return this;
    }

    /**
     * Decrypts the whole shard into {@code out} from byte 0 on {@code threads} threads
     * (the caller's included), each reading its segments from the mapping, decrypting into
     * its own buffer and writing with a positioned write; {@code out} is truncated to the
     * plaintext's length. Neither channel's position is used. {@code out} must be open for
     * writing, not in append mode.
     *
     * <p>When a segment fails, {@code out} holds the plaintext of other segments: a caller
     * must discard it ({@link ShardDecryptor#decryptFile} writes a temporary file and
     * deletes it).
     *
     * @param progress called with each segment's ciphertext bytes as it completes, one call
     *                 at a time, from any worker thread; null for none
     * @return the plaintext length
     * @throws ShardException for the lowest-numbered segment that fails
     */
    public synchronized long decryptInto(FileChannel out, int threads, LongConsumer progress) throws IOException {
        Objects.requireNonNull(out, "out");
        if (threads < 1 || threads > 256) {
            throw new IllegalArgumentException("threads must be 1..256, not " + threads);
        }
        checkOpen();
        SegmentWorkers.run(segments, threads, null, () -> new SegmentWorkers.Worker() {
            final SegmentCipher cipher = new SegmentCipher(keys, header.noncePrefix());
            final byte[] in = new byte[segmentSize + ShardFormat.TAG_BYTES];
            final byte[] plain = new byte[segmentSize];

            @Override
            public long process(long index) throws IOException {
                int len = readSegment(index, in);
                int n = open(cipher, index, in, len, plain, 0);
                ShardEncryptor.writeFully(out, ByteBuffer.wrap(plain, 0, n), index * segmentSize);
                return len;
            }

            @Override
            public void close() {
                Arrays.fill(plain, (byte) 0);
            }
        }, progress);
        out.truncate(size);
        return size;
    }

    /** Plaintext bytes of segment {@code index}. */
    private int plaintextLength(long index) {
        return index == segments - 1 ? finalSegmentBytes - ShardFormat.TAG_BYTES : segmentSize;
    }

    /**
     * Decrypts a segment the read covers whole straight into {@code dst}'s array: a slice
     * of many segments then costs the read and the decryption, without a copy through the
     * cache (measured: the copy was a third of the time the decryption took). On failure
     * the range is zeroed, {@code dst}'s position does not move, and nothing is released.
     */
    private int decryptInto(long index, ByteBuffer dst) throws IOException {
        int len = readSegment(index);
        decryptions++;
        int n = open(index, len, dst.array(), dst.arrayOffset() + dst.position());
        dst.position(dst.position() + n);
        return n;
    }

    /**
     * Reads exactly {@code dst.remaining()} bytes from {@code position}.
     *
     * @throws EOFException when the shard ends first (nothing is guaranteed about {@code dst} then)
     */
    public void readFully(long position, ByteBuffer dst) throws IOException {
        if (position < 0 || position > size || dst.remaining() > size - position) {
            throw new EOFException("reading " + dst.remaining() + " bytes at " + position + " goes past the end of a "
                    + size + "-byte shard");
        }
        while (dst.hasRemaining()) {
            position += read(position, dst);
        }
    }

    /** Decrypts segment {@code index} into the cache, unless it is there already. */
    private void decryptSegment(long index) throws IOException {
        if (cachedIndex == index) {
            return;
        }
        cachedIndex = -1; // a failure below must not leave a stale or partial segment cached
        int len = readSegment(index);
        decryptions++;
        cachedLength = open(index, len, plaintext, 0);
        cachedIndex = index;
    }

    /**
     * Authenticates and decrypts the segment in {@link #ciphertext}. A mapped file cut
     * inside its last page reads as zeros there rather than failing: a segment that fails
     * where the file no longer reaches is reported as the cut it is.
     */
    private int open(long index, int len, byte[] out, int outOff) throws IOException {
        return open(cipher, index, ciphertext, len, out, outOff);
    }

    /** As {@link #open(long, int, byte[], int)} with a thread's own cipher and ciphertext buffer. Any thread. */
    private int open(SegmentCipher cipher, long index, byte[] ciphertext, int len, byte[] out, int outOff)
            throws IOException {
        try {
            return cipher.open(index, index == segments - 1, ciphertext, 0, len, out, outOff);
        } catch (ShardException e) {
            if (mapped != null && e.reason() == ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED
                    && file.size() < bodyOffset + index * (segmentSize + ShardFormat.TAG_BYTES) + len) {
                throw new ShardException(ShardException.Reason.TRUNCATED, index,
                        "the shard is truncated: it ends inside segment " + index + " (did it change while open?)");
            }
            throw e;
        }
    }

    /** For the wipe test: true once the cached plaintext reads back as zeros. */
    synchronized boolean cacheWiped() {
        for (byte b : plaintext) if (b != 0) return false;
        return true;
    }

    /** For the cache test: segments decrypted so far. */
    synchronized long segmentDecryptions() {
        return decryptions;
    }

    private int readSegment(long index) throws IOException {
        return readSegment(index, ciphertext);
    }

    /** Copies segment {@code index}'s ciphertext into {@code ciphertext}; returns its length. Any thread. */
    private int readSegment(long index, byte[] ciphertext) throws IOException {
        int c = segmentSize + ShardFormat.TAG_BYTES;
        int len = index == segments - 1 ? finalSegmentBytes : c;
        long at = bodyOffset + index * c;
        if (mapped != null) {
            try {
                MemorySegment.copy(mapped, ValueLayout.JAVA_BYTE, at, ciphertext, 0, len);
                return len;
            } catch (InternalError e) {
                // The JDK's answer to SIGBUS: the mapped file no longer reaches this far.
                throw new ShardException(ShardException.Reason.TRUNCATED, index,
                        "the shard is truncated: it ends inside segment " + index + " (did it change while open?)");
            }
        }
        ByteBuffer b = ByteBuffer.wrap(ciphertext, 0, len);
        while (b.hasRemaining()) {
            if (file.read(b, at + b.position()) < 0) {
                throw new ShardException(ShardException.Reason.TRUNCATED, index,
                        "the shard is truncated: it ends inside segment " + index + " (did it change while open?)");
            }
        }
        return len;
    }

    /**
     * Diagnosis when the end of the file is not a valid final segment: if one of the few
     * whole segments before it authenticates as the final one, data was appended after it.
     * Bounded (four segments), so a hostile file cannot make opening it expensive.
     */
    private void throwIfExtended(long from) throws IOException {
        for (long i = from; i >= 0 && i > from - 4; i--) {
            if (authenticatesAsFinal(i)) {
                throw new ShardException(ShardException.Reason.TRAILING_DATA, i,
                        "data follows the final segment (segment " + i + "): the shard was extended");
            }
        }
    }

    private boolean authenticatesAsFinal(long index) throws IOException {
        int c = segmentSize + ShardFormat.TAG_BYTES;
        ByteBuffer b = ByteBuffer.wrap(ciphertext, 0, c);
        long at = bodyOffset + index * c;
        while (b.hasRemaining()) {
            if (file.read(b, at + b.position()) < 0) {
                return false;
            }
        }
        return cipher.authenticates(index, true, ciphertext, 0, c, plaintext);
    }

    private void unmap() {
        if (mapping != null && mapping.scope().isAlive()) {
            mapping.close();
        }
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new IOException("this ShardReader is closed");
        }
    }

    /** Wipes the cached plaintext; closes the keys and the channel when the reader owns them. Idempotent. */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        cachedIndex = -1;
        Arrays.fill(plaintext, (byte) 0);
        if (readHelpers != null) {
            readHelpers.shutdown(); // idle: reads are synchronized with close
        }
        synchronized (allBuffers) {
            for (SegmentBuffers b : allBuffers) {
                Arrays.fill(b.plaintext, (byte) 0);
            }
        }
        unmap(); // reads are synchronized with close, so none is using the mapping
        try {
            if (ownsDecryptor) {
                decryptor.close();
            }
        } catch (Exception e) {
            throw new IOException(e);
        } finally {
            if (ownsFile) {
                file.close();
            }
        }
    }
}
