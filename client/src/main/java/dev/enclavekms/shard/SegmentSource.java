package dev.enclavekms.shard;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Byte ranges of a file, copied into arrays by any number of threads at once: through a
 * read-only mapping of the range (one {@code memcpy}, no system call) when the file can
 * be mapped, otherwise with positioned reads. Mapping is skipped for small ranges (it
 * costs a few system calls) and when {@code -Ddev.enclavekms.shard.mmap=false}.
 * {@link #close()} unmaps; it must not run while a read is in progress.
 */
final class SegmentSource implements AutoCloseable {
    private final FileChannel file;
    private final long start;
    private final Arena arena;
    private final MemorySegment map;

    private SegmentSource(FileChannel file, long start, Arena arena, MemorySegment map) {
        this.file = file;
        this.start = start;
        this.arena = arena;
        this.map = map;
    }

    /** The range {@code [start, start + size)} of {@code file}. */
    static SegmentSource of(FileChannel file, long start, long size) throws IOException {
        if (MappedFileInput.enabled() && size >= MappedFileInput.MIN_MAPPED_BYTES) {
            Arena arena = Arena.ofShared();
            try {
                return new SegmentSource(file, start, arena, file.map(FileChannel.MapMode.READ_ONLY, start, size, arena));
            } catch (IOException | UnsupportedOperationException e) {
                arena.close(); // not mappable (a pipe, a special file): positioned reads will say what is wrong
            }
        }
        return new SegmentSource(file, start, null, null);
    }

    /**
     * Copies {@code len} bytes at {@code offset} (from the range's start) into
     * {@code dst[0..len)}.
     *
     * @param index the segment, for the message when the file is shorter than it was
     */
    void read(long offset, byte[] dst, int len, long index) throws IOException {
        if (map != null) {
            try {
                MemorySegment.copy(map, ValueLayout.JAVA_BYTE, offset, dst, 0, len);
                return;
            } catch (InternalError e) {
                // The JDK's answer to SIGBUS: the mapped file no longer reaches this far.
                throw cut(index);
            }
        }
        ByteBuffer b = ByteBuffer.wrap(dst, 0, len);
        while (b.hasRemaining()) {
            if (file.read(b, start + offset + b.position()) < 0) {
                throw cut(index);
            }
        }
    }

    private static IOException cut(long index) {
        return new IOException("the input file became shorter while segment " + index + " was read");
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }
}
