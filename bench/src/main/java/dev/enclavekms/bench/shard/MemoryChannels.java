package dev.enclavekms.bench.shard;

import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * Channels over memory, for the CPU-bound comparison with {@code openssl speed} (which
 * never touches a file): a source that copies out of an array (one copy, as a read from
 * the page cache is) and a sink that discards. What is left is the library's own path:
 * framing, buffers, threads and AES-GCM.
 */
final class MemoryChannels {
    private MemoryChannels() {
    }

    static ReadableByteChannel source(byte[] data) {
        return new ReadableByteChannel() {
            private int pos;
            private boolean open = true;

            @Override
            public int read(ByteBuffer dst) {
                if (pos == data.length) return -1;
                int n = Math.min(dst.remaining(), data.length - pos);
                dst.put(data, pos, n);
                pos += n;
                return n;
            }

            @Override
            public boolean isOpen() {
                return open;
            }

            @Override
            public void close() {
                open = false;
            }
        };
    }

    /** Counts and drops what is written. */
    static final class Sink implements WritableByteChannel {
        long written;
        private boolean open = true;

        @Override
        public int write(ByteBuffer src) {
            int n = src.remaining();
            src.position(src.limit());
            written += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return open;
        }

        @Override
        public void close() {
            open = false;
        }
    }
}
