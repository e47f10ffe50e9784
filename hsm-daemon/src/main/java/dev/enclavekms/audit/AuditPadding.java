package dev.enclavekms.audit;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The zero padding after the last record of an audit file, and how to find where the
 * records end (docs/audit.md "Preallocation", docs/formats.md).
 *
 * <p>The log keeps the file it writes extended with NUL bytes (0x00) ahead of its last
 * record, written and made durable beforehand, so that a group commit overwrites blocks the
 * file already has: an {@code fdatasync} then flushes data only, not the file's size and
 * block map (≈ 70 µs less per commit on the development VM, docs/performance.md). A record
 * never contains a NUL byte (canonical JSON escapes every control character), so the records
 * of a file are the bytes before its first NUL, and a NUL after them is padding.
 *
 * <p>After a crash the end of a file may hold, after its last durable record, part of a
 * write that was never confirmed — and since that write went into blocks the file already
 * had, the part that reached the disk may have zeros in its middle (the blocks written in
 * some order). Only the last write can be unconfirmed (each is made durable before the next
 * begins) and a write is at most {@link #MAX_WRITE_BYTES} plus a record and a checkpoint, so
 * the first NUL within {@link #LAST_WRITE_REACH} before the last non-NUL byte ends what was
 * there before that write.
 */
public final class AuditPadding {
    /** The padding byte. */
    public static final byte PAD = 0;
    /** A group commit writes at most this much, plus the record that crosses it and a checkpoint. */
    public static final int MAX_WRITE_BYTES = 1 << 20;
    /** How far before the last non-NUL byte the last (possibly torn) write can have begun. */
    static final int LAST_WRITE_REACH = MAX_WRITE_BYTES + 2 * (AuditRecords.MAX_LINE_BYTES + 1);
    private static final int CHUNK = 64 * 1024;

    private AuditPadding() {
    }

    /**
     * The end of a file's content.
     *
     * @param records end of the last complete record (after its '\n'): the log's end in this file
     * @param data    end of the last byte that is not padding (≥ {@code records}); what lies
     *                between is a torn record or an unconfirmed write
     * @param size    the file's size, padding included
     */
    public record Tail(long records, long data, long size) {
        /** Bytes after the last complete record that are not the trailing padding. */
        public long tornBytes() {
            return data - records;
        }
    }

    /** Finds the end of the records of {@code f} (see the class comment). */
    public static Tail tail(Path f) throws IOException {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            return tail(ch, f);
        }
    }

    static Tail tail(FileChannel ch, Path name) throws IOException {
        long size = ch.size();
        long data = lastNonPad(ch, size);
        long from = Math.max(0, data - LAST_WRITE_REACH - AuditRecords.MAX_LINE_BYTES - 1);
        byte[] w = read(ch, from, (int) (data - from));
        int end = w.length; // first PAD within the last write's reach: what was there before it ends there
        for (int i = (int) Math.max(0, data - LAST_WRITE_REACH - from); i < w.length; i++) {
            if (w[i] == PAD) {
                end = i;
                break;
            }
        }
        int nl = end - 1;
        while (nl >= 0 && w[nl] != '\n' && end - nl <= AuditRecords.MAX_LINE_BYTES + 1) nl--;
        if (nl >= 0 && w[nl] != '\n' || nl < 0 && from > 0) {
            throw new IOException("the end of " + name + " is no audit record (over " + AuditRecords.MAX_LINE_BYTES
                    + " bytes without a line end); run kmsctl audit verify");
        }
        return new Tail(from + nl + 1, data, size);
    }

    /** The position after the last byte of {@code ch} that is not padding; 0 when there is none. */
    private static long lastNonPad(FileChannel ch, long size) throws IOException {
        long end = size;
        while (end > 0) {
            long from = Math.max(0, end - CHUNK);
            byte[] b = read(ch, from, (int) (end - from));
            for (int i = b.length - 1; i >= 0; i--) {
                if (b[i] != PAD) return from + i + 1;
            }
            end = from;
        }
        return 0;
    }

    static byte[] read(FileChannel ch, long position, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        while (b.hasRemaining()) {
            if (ch.read(b, position + b.position()) < 0) break;
        }
        return b.array();
    }

    /**
     * The lines of an audit file as a reader of the records sees them: the text before the
     * first NUL byte, split at '\n' (a last line without one is included, as
     * {@link java.nio.file.Files#readAllLines} would). For tools and tests that read the file
     * of a running daemon, which ends in padding.
     */
    public static List<String> lines(Path f) throws IOException {
        byte[] all = java.nio.file.Files.readAllBytes(f);
        List<String> out = new ArrayList<>();
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        for (byte b : all) {
            if (b == PAD) break;
            if (b == '\n') {
                out.add(line.toString(StandardCharsets.UTF_8));
                line.reset();
            } else {
                line.write(b);
            }
        }
        if (line.size() > 0) out.add(line.toString(StandardCharsets.UTF_8));
        return out;
    }
}
