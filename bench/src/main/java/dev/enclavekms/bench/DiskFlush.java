package dev.enclavekms.bench;

import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.concurrent.locks.LockSupport;

/**
 * The audit device's own latency (system {@code disk}, operation {@code audit_flush}): an
 * append of one audit-record-sized line and {@code fdatasync}, at a fixed rate, on the file
 * system holding the daemon's audit log. A durable call cannot be answered before its record
 * is flushed, so this is the floor under every durable latency and its tail under the open
 * loop's p99 at low rates (where calls arrive alone and each leads its own flush).
 */
final class DiskFlush {
    /** About the size of one audit record line (JSON with hashes and MAC). */
    static final int RECORD_BYTES = 512;

    private DiskFlush() {
    }

    /** Appends and flushes at {@code ratePerS} for {@code seconds} in a scratch file in {@code dir}. */
    static Measure measure(Path dir, double ratePerS, double seconds) throws IOException {
        Files.createDirectories(dir);
        Path file = Files.createTempFile(dir, "disk-flush", ".jsonl");
        Histogram h = Bench.histogram();
        long calls;
        ProcCpu.Mark cpu = ProcCpu.mark(-1);
        long start = System.nanoTime();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
            ByteBuffer line = ByteBuffer.allocateDirect(RECORD_BYTES);
            long intervalNs = Math.max(1, (long) (1e9 / ratePerS));
            long end = start + (long) (seconds * 1e9);
            TimerSlack.setForThisThread(1_000);
            for (long t = start; t < end; t += intervalNs) {
                long wait;
                while ((wait = t - System.nanoTime()) > 0) LockSupport.parkNanos(wait);
                long s = System.nanoTime();
                line.clear();
                while (line.hasRemaining()) ch.write(line);
                ch.force(false); // fdatasync, as the audit log's group commit
                h.recordValue(System.nanoTime() - s);
            }
            calls = h.getTotalCount();
        } finally {
            Files.deleteIfExists(file);
            try {
                Files.deleteIfExists(dir);
            } catch (java.nio.file.DirectoryNotEmptyException ignored) {
                // someone else's files: leave them
            }
        }
        Measure m = new Measure();
        m.add(calls / ((System.nanoTime() - start) / 1e9), h, cpu, 1);
        m.note = String.format(Locale.ROOT, "the audit device alone: append %d B + fdatasync at %.0f/s on %s; "
                + "latency from the write", RECORD_BYTES, ratePerS, dir);
        return m;
    }
}
