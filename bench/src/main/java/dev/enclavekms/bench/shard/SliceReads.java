package dev.enclavekms.bench.shard;

import dev.enclavekms.shard.ShardReader;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static java.nio.file.StandardOpenOption.READ;

/**
 * Random access: one slice (4 MiB in the full and quick modes) at a random offset, read
 * as plaintext from the plain file with {@code FileChannel.read(buffer, position)}, from
 * the shard with {@code ShardReader.read(position, buffer)} (decrypting only the segments
 * the slice touches: 5 of 1 MiB for a 4 MiB slice at an unaligned offset), and from the
 * Tink file through its seekable channel. The three reads of one offset run back to back,
 * so drifts in machine load hit all of them alike; each read is timed alone, by the wall
 * clock and by the reading thread's CPU time (robust to the machine's load). The files
 * were just written, so they are in the page cache: these are warm-cache reads.
 *
 * <p>Destination buffers: heap ({@code ByteBuffer.allocate}) and direct
 * ({@code allocateDirect}); a plain read into a heap buffer goes through the JDK's
 * temporary direct buffer (one more copy), so the direct plain read is the harder baseline.
 */
final class SliceReads {
    private final Path plain;
    private final ShardReader shard;
    private final ShardReader parallel;
    private final SeekableByteChannel tink;
    private final int slice;
    private final long size;

    SliceReads(Path plain, ShardReader shard, ShardReader parallel, SeekableByteChannel tink, int slice, long size) {
        this.plain = plain;
        this.shard = shard;
        this.parallel = parallel;
        this.tink = tink;
        this.slice = slice;
        this.size = size;
    }

    /** Per-read seconds of each system, for {@code warmup} discarded and {@code reps} kept offsets. */
    List<ShardRow> measure(int warmup, int reps, boolean direct, long seed) throws IOException {
        ByteBuffer dst = direct ? ByteBuffer.allocateDirect(slice) : ByteBuffer.allocate(slice);
        ByteBuffer check = direct ? ByteBuffer.allocateDirect(slice) : ByteBuffer.allocate(slice);
        Random random = new Random(seed);
        double[] plainS = new double[reps];
        double[] shardS = new double[reps];
        double[] tinkS = new double[reps];
        double[] plainC = new double[reps];
        double[] shardC = new double[reps];
        double[] tinkC = new double[reps];
        double[] parS = new double[reps];
        double[] parC = new double[reps];
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long[] helpers = new long[0];
        try (FileChannel pf = FileChannel.open(plain, READ)) {
            for (int i = -warmup; i < reps; i++) {
                long at = (long) (random.nextDouble() * (size - slice));
                long c0 = mx.getCurrentThreadCpuTime();
                long t0 = System.nanoTime();
                readFully(pf, dst.clear(), at);
                long t1 = System.nanoTime();
                long c1 = mx.getCurrentThreadCpuTime();
                shard.readFully(at, check.clear());
                long t2 = System.nanoTime();
                long c2 = mx.getCurrentThreadCpuTime();
                if (!dst.flip().equals(check.flip())) {
                    throw new IOException("the shard's slice at " + at + " differs from the plaintext");
                }
                long t3 = 0, t4 = 0, c3 = 0, c4 = 0;
                if (tink != null) {
                    tink.position(at);
                    c3 = mx.getCurrentThreadCpuTime();
                    t3 = System.nanoTime();
                    readFully(tink, check.clear());
                    t4 = System.nanoTime();
                    c4 = mx.getCurrentThreadCpuTime();
                    if (!dst.equals(check.flip())) {
                        throw new IOException("Tink's slice at " + at + " differs from the plaintext");
                    }
                }
                // The parallel reader: CPU time of the caller plus the reader's helper thread(s).
                if (i == 0) helpers = readerThreads();
                long c5 = mx.getCurrentThreadCpuTime() + cpu(mx, helpers);
                long t5 = System.nanoTime();
                parallel.readFully(at, check.clear());
                long t6 = System.nanoTime();
                long c6 = mx.getCurrentThreadCpuTime() + cpu(mx, helpers);
                if (!dst.equals(check.flip())) {
                    throw new IOException("the parallel shard reader's slice at " + at + " differs from the plaintext");
                }
                if (i >= 0) {
                    parS[i] = (t6 - t5) / 1e9;
                    parC[i] = (c6 - c5) / 1e9;
                    plainS[i] = (t1 - t0) / 1e9;
                    shardS[i] = (t2 - t1) / 1e9;
                    tinkS[i] = (t4 - t3) / 1e9;
                    plainC[i] = (c1 - c0) / 1e9;
                    shardC[i] = (c2 - c1) / 1e9;
                    tinkC[i] = (c4 - c3) / 1e9;
                }
            }
        }
        String op = "read_slice_" + (direct ? "direct" : "heap");
        String kind = direct ? "direct" : "heap";
        List<ShardRow> rows = new ArrayList<>();
        rows.add(ShardRow.measured(op, "plain", 1, slice, Samples.of(plainS), Samples.of(plainC),
                "FileChannel.read(" + kind + " buffer, position) of the plaintext file, warm page cache"));
        rows.add(ShardRow.measured(op, "shard", 1, slice, Samples.of(shardS), Samples.of(shardC),
                "ShardReader.readFully(position, " + kind + " buffer), reader opened once"));
        rows.add(ShardRow.measured(op, "shard", 2, slice, Samples.of(parS), Samples.of(parC),
                "ShardReader.readThreads(2).readFully(position, " + kind + " buffer): the segments a read touches "
                        + "decrypted on the caller's thread and one helper; CPU time of both"));
        if (tink != null) {
            rows.add(ShardRow.measured(op, "tink", 1, slice, Samples.of(tinkS), Samples.of(tinkC),
                    "Tink newSeekableDecryptingChannel: position + read into a " + kind + " buffer"));
        }
        return rows;
    }

    /** The parallel readers' helper threads (named by ShardReader), once they exist. */
    private static long[] readerThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("shard-reader-"))
                .mapToLong(Thread::threadId).toArray();
    }

    private static long cpu(ThreadMXBean mx, long[] ids) {
        long sum = 0;
        for (long id : ids) {
            long c = mx.getThreadCpuTime(id);
            if (c > 0) sum += c;
        }
        return sum;
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b, at + b.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    private static void readFully(SeekableByteChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }
}
