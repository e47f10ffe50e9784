package dev.enclavekms.shard;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;

/**
 * Cuts plaintext into segments and encrypts them through a {@link SegmentPipeline}. A full
 * segment is held back until at least one more byte arrives (or {@link #finish()} is
 * called), because only then is it known whether it is the last one: every segment but the
 * last holds exactly the segment size, and the last holds 1..S bytes — 0 only when the
 * whole plaintext is empty.
 *
 * <p>Owns the segment keys it was given; {@link #close()} wipes them and the buffers.
 */
final class EncryptingSink implements AutoCloseable {
    private final ShardKeys keys;
    private final int segmentSize;
    private final SegmentPipeline pipeline;
    private byte[] current;
    private int filled;
    private long index;
    private long plaintextBytes;
    private boolean finished;

    EncryptingSink(ShardKeys keys, byte[] noncePrefix, int segmentSize, int threads, SegmentPipeline.Sink out) {
        this.keys = keys;
        this.segmentSize = segmentSize;
        this.pipeline = new SegmentPipeline(threads, segmentSize, segmentSize + ShardFormat.TAG_BYTES,
                () -> new SegmentCipher(keys, noncePrefix),
                (cipher, i, last, in, len, o) -> cipher.seal(i, last, in, 0, len, o, 0), out);
        this.current = pipeline.inputBuffer();
    }

    /** The current segment is full and more plaintext follows: it is not the last one. */
    private void flushFull() throws IOException {
        if (index + 1 >= ShardFormat.MAX_SEGMENTS) {
            throw new IOException("a shard holds at most 2^32 segments (" + segmentSize + " bytes each)");
        }
        pipeline.submit(index++, false, current, filled);
        current = pipeline.inputBuffer();
        filled = 0;
    }

    void write(byte[] b, int off, int len) throws IOException {
        checkOpen();
        while (len > 0) {
            if (filled == segmentSize) {
                flushFull();
            }
            int n = Math.min(len, segmentSize - filled);
            System.arraycopy(b, off, current, filled, n);
            filled += n;
            off += n;
            len -= n;
            plaintextBytes += n;
        }
    }

    int write(ByteBuffer src) throws IOException {
        checkOpen();
        int total = src.remaining();
        while (src.hasRemaining()) {
            if (filled == segmentSize) {
                flushFull();
            }
            int n = Math.min(src.remaining(), segmentSize - filled);
            src.get(current, filled, n);
            filled += n;
            plaintextBytes += n;
        }
        return total;
    }

    /** Reads {@code in} to its end straight into segment buffers (no intermediate copy). */
    void writeAll(InputStream in) throws IOException {
        checkOpen();
        while (true) {
            if (filled == segmentSize) {
                int b = in.read(); // is there more? one byte decides whether this segment is the last
                if (b < 0) {
                    return;
                }
                flushFull();
                current[0] = (byte) b;
                filled = 1;
                plaintextBytes++;
            }
            int n = in.read(current, filled, segmentSize - filled);
            if (n < 0) {
                return;
            }
            filled += n;
            plaintextBytes += n;
        }
    }

    /** As {@link #writeAll(InputStream)} for a channel; a file is read through a mapping ({@link MappedFileInput}). */
    void writeAll(ReadableByteChannel in) throws IOException {
        checkOpen();
        if (in instanceof FileChannel file) {
            try (MappedFileInput mapped = MappedFileInput.of(file)) {
                if (mapped != null) {
                    writeAll(mapped);
                    return;
                }
            }
        }
        ByteBuffer one = ByteBuffer.allocate(1);
        while (true) {
            if (filled == segmentSize) {
                one.clear();
                int b;
                do {
                    b = in.read(one);
                } while (b == 0);
                if (b < 0) {
                    return;
                }
                flushFull();
                current[0] = one.get(0);
                filled = 1;
                plaintextBytes++;
            }
            int n = in.read(ByteBuffer.wrap(current, filled, segmentSize - filled));
            if (n < 0) {
                return;
            }
            filled += n;
            plaintextBytes += n;
        }
    }

    /** Encrypts what is buffered as the last segment and writes everything out. */
    void finish() throws IOException {
        checkOpen();
        finished = true;
        pipeline.submit(index, true, current, filled);
        current = null;
        pipeline.finish();
    }

    long plaintextBytes() {
        return plaintextBytes;
    }

    boolean finished() {
        return finished;
    }

    private void checkOpen() throws IOException {
        if (finished) {
            throw new IOException("the shard is already finished");
        }
    }

    @Override
    public void close() {
        pipeline.close();
        keys.close();
    }
}
