package dev.enclavekms.shard;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.Objects;

/**
 * Decrypts a shard body segment by segment as it is read. A segment's plaintext is
 * returned only after its tag has verified; once a segment fails, every later read throws
 * the same exception. Closing wipes the plaintext buffer, closes the body stream and, when
 * it owns one, the decryptor.
 */
final class DecryptingInputStream extends InputStream {
    private final InputStream body;
    private final SegmentFramer framer;
    private final SegmentCipher cipher;
    private final byte[] ciphertext;
    private final byte[] plaintext;
    private final AutoCloseable owned;
    private int pos;
    private int len;
    private long index;
    private boolean done;
    private ShardException failure;
    private boolean closed;

    DecryptingInputStream(InputStream body, ShardKeys keys, ShardHeader header, AutoCloseable owned) {
        this.body = body;
        this.framer = new SegmentFramer(body, header.segmentSize() + ShardFormat.TAG_BYTES);
        this.cipher = new SegmentCipher(keys, header.noncePrefix());
        this.ciphertext = new byte[header.segmentSize() + ShardFormat.TAG_BYTES];
        this.plaintext = new byte[header.segmentSize()];
        this.owned = owned;
        JitWarmup.startFor(header.segmentSize());
    }

    private boolean fill() throws IOException {
        if (closed) {
            throw new IOException("stream closed");
        }
        if (failure != null) {
            throw failure;
        }
        while (pos == len) {
            if (done) {
                return false;
            }
            int n = framer.next(ciphertext);
            try {
                ShardDecryptor.checkFinalLength(index, framer.last(), n);
                len = cipher.open(index, framer.last(), ciphertext, 0, n, plaintext, 0);
            } catch (ShardException e) {
                failure = e;
                throw e;
            }
            pos = 0;
            done = framer.last();
            index++;
        }
        return true;
    }

    @Override
    public int read() throws IOException {
        return fill() ? plaintext[pos++] & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int n) throws IOException {
        Objects.checkFromIndexSize(off, n, b.length);
        if (n == 0) {
            return 0;
        }
        if (!fill()) {
            return -1;
        }
        int k = Math.min(n, len - pos);
        System.arraycopy(plaintext, pos, b, off, k);
        pos += k;
        return k;
    }

    @Override
    public int available() {
        return len - pos;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        Arrays.fill(plaintext, (byte) 0);
        try (body) {
            if (owned != null) {
                owned.close();
            }
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(e);
        }
    }
}
