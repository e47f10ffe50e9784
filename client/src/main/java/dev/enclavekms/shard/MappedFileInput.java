package dev.enclavekms.shard;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.util.Objects;

/**
 * Reads a {@link FileChannel} from its position to its end through a read-only memory
 * mapping: one {@code memcpy} per read instead of the kernel's copy into the JDK's
 * temporary direct buffer plus the JDK's copy into the heap (measured: about half the CPU
 * time per MiB; docs/performance.md, "Shards (issue 8)"). What the file holds beyond the
 * size it had when mapped (it is being appended to) is then read from the channel, so
 * the stream still ends where the channel does. The channel's position follows what was
 * read; closing unmaps but does not close the channel (its owner does).
 *
 * <p>A file cut while it is read fails with an IOException, as a shorter read would not.
 * {@code -Ddev.enclavekms.shard.mmap=false} turns mapping off.
 */
final class MappedFileInput extends InputStream {
    /** Smaller remainders are read the ordinary way: a mapping costs a few system calls. */
    static final long MIN_MAPPED_BYTES = 1 << 20;

    private final FileChannel file;
    private final long start;
    private final Arena arena;
    private final MemorySegment map;
    private long offset;
    private InputStream rest;
    private boolean closed;

    private MappedFileInput(FileChannel file, long start, Arena arena, MemorySegment map) {
        this.file = file;
        this.start = start;
        this.arena = arena;
        this.map = map;
    }

    static boolean enabled() {
        return Boolean.parseBoolean(System.getProperty("dev.enclavekms.shard.mmap", "true"));
    }

    /**
     * A mapped stream of {@code file} from its position, or null when the rest of the file
     * is small, mapping is off, or the file cannot be mapped (the caller then reads the
     * channel as before).
     */
    static MappedFileInput of(FileChannel file) throws IOException {
        Objects.requireNonNull(file, "file");
        if (!enabled()) {
            return null;
        }
        long start = file.position();
        long size = file.size() - start;
        if (size < MIN_MAPPED_BYTES) {
            return null;
        }
        Arena arena = Arena.ofShared();
        try {
            return new MappedFileInput(file, start, arena, file.map(FileChannel.MapMode.READ_ONLY, start, size, arena));
        } catch (IOException | UnsupportedOperationException e) {
            arena.close(); // e.g. opened for writing only: the caller's channel reads will say so
            return null;
        }
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        if (closed) {
            throw new IOException("stream closed");
        }
        if (len == 0) {
            return 0;
        }
        long left = map.byteSize() - offset;
        if (left > 0) {
            int n = (int) Math.min(len, left);
            try {
                MemorySegment.copy(map, ValueLayout.JAVA_BYTE, offset, b, off, n);
            } catch (InternalError e) {
                // The JDK's answer to SIGBUS: the file no longer reaches this far.
                throw new IOException("the file was cut while it was being read (at byte " + (start + offset) + ")");
            }
            offset += n;
            return n;
        }
        if (rest == null) {
            file.position(start + offset);
            rest = Channels.newInputStream(file); // not closed: that would close the channel
        }
        return rest.read(b, off, len);
    }

    /** Unmaps; leaves the channel positioned after what was read. Idempotent. */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        arena.close();
        if (rest == null) {
            file.position(start + offset);
        }
    }
}
