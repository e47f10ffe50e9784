package dev.enclavekms.shard;

import java.io.IOException;
import java.io.InputStream;

/**
 * Cuts a stream into blocks of {@code size} bytes and knows which block is the last:
 * after a full block it reads one byte ahead, so a stream whose length is a multiple of
 * the size still ends with a full last block, not an empty one. The first call always
 * returns a block (possibly empty).
 */
final class SegmentFramer {
    private final InputStream in;
    private final int size;
    private int carry = -1;
    private boolean last;

    SegmentFramer(InputStream in, int size) {
        this.in = in;
        this.size = size;
    }

    /** Fills {@code buf} with the next block and returns its length; then {@link #last()} tells whether it ends the stream. */
    int next(byte[] buf) throws IOException {
        int n = 0;
        if (carry >= 0) {
            buf[0] = (byte) carry;
            carry = -1;
            n = 1;
        }
        n += in.readNBytes(buf, n, size - n);
        if (n < size) {
            last = true;
            return n;
        }
        int b = in.read();
        last = b < 0;
        carry = b;
        return n;
    }

    boolean last() {
        return last;
    }
}
