package dev.enclavekms.bench.shard;

import dev.enclavekms.shard.ShardReader;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * {@code bench/run-shards [--quick|--tiny] [--dir DIR] [--out DIR]}: issue 8's shard
 * benchmark (docs/performance.md, "Shards (issue 8)"). Encrypts and decrypts one file with
 * the shard library on 1 and 2 threads, with Tink's streaming AEAD and with {@code age};
 * runs {@code openssl speed -evp aes-256-gcm} (16 KiB blocks, 1 and 2 processes); times
 * random 4 MiB slices against plain reads; all in the same run, in interleaved rounds so
 * that load drifts hit every system alike. Writes {@code shards.json} and
 * {@code shards.md}. Nothing here asserts a time: the ratios and targets are reported.
 */
public final class ShardBench {

    /** The sizes and counts of one mode. */
    record Mode(String name, long fileBytes, int warmupRounds, int rounds, int opensslSeconds, int slice,
                int sliceWarmup, int sliceReps) {
        static final Mode FULL = new Mode("full", 1L << 30, 1, 5, 3, 4 << 20, 20, 200);
        static final Mode QUICK = new Mode("quick", 128L << 20, 1, 3, 1, 4 << 20, 10, 60);
        /** For the smoke test: seconds, not minutes; the numbers mean nothing (no JIT warm-up). */
        static final Mode TINY = new Mode("tiny", 2L << 20, 0, 1, 1, 512 << 10, 1, 3);
    }

    private final Mode mode;
    private final Path dir;
    private final List<ShardRow> rows = new ArrayList<>();
    private final Map<String, Object> info = new LinkedHashMap<>();
    /** CPU seconds per kept repetition, by the same keys as the wall-clock times. */
    private final Map<String, List<Double>> cpu = new LinkedHashMap<>();
    private double lastCpu;

    ShardBench(Mode mode, Path dir) {
        this.mode = mode;
        this.dir = dir;
    }

    public static void main(String[] args) throws Exception {
        Mode mode = Mode.FULL;
        Path dir = null;
        Path out = Path.of("bench/results");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--quick" -> mode = Mode.QUICK;
                case "--tiny" -> mode = Mode.TINY;
                case "--dir" -> dir = Path.of(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                default -> {
                    System.err.println("usage: run-shards [--quick|--tiny] [--dir DIR] [--out DIR]");
                    System.exit(2);
                }
            }
        }
        Path work = Files.createTempDirectory(dir == null ? Path.of(System.getProperty("java.io.tmpdir")) : dir,
                "shard-bench-");
        try {
            ShardReport report = new ShardBench(mode, work).run();
            Files.createDirectories(out);
            Files.writeString(out.resolve("shards.json"), report.json());
            Files.writeString(out.resolve("shards.md"), report.markdown());
            System.out.print(report.markdown());
        } finally {
            deleteTree(work);
        }
    }

    /** Runs every measurement in {@link #dir} (which it fills and leaves for the caller to delete). */
    ShardReport run() throws Exception {
        info.put("mode", mode.name());
        info.put("started", Instant.now().toString());
        info.put("load_average_start", loadAverage());
        info.put("file_bytes", mode.fileBytes());
        info.put("slice_bytes", mode.slice());
        info.put("dir", dir.toString());
        info.put("filesystem", Files.getFileStore(dir).type());
        info.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
        info.put("cpus", Runtime.getRuntime().availableProcessors());
        info.put("cpu", cpuModel());

        String opensslMissing = OpensslSpeed.unavailableReason();
        String ageMissing = AgeFiles.unavailableReason();
        info.put("openssl", opensslMissing == null ? OpensslSpeed.version() : "unavailable");
        info.put("age", ageMissing == null ? AgeFiles.version() : "unavailable");
        info.put("tink", TinkFiles.version() + ", " + TinkFiles.TEMPLATE);

        Path plain = dir.resolve("plain.bin");
        Path shard = dir.resolve("plain.shard");
        Path tinkFile = dir.resolve("plain.tink");
        Path ageFile = dir.resolve("plain.age");
        Path output = dir.resolve("output.bin");
        writeRandom(plain, mode.fileBytes());

        ShardFiles ours = new ShardFiles();
        TinkFiles tink = new TinkFiles();
        AgeFiles age = ageMissing == null ? AgeFiles.create(dir) : null;
        long n = mode.fileBytes();

        Map<String, List<Double>> t = new LinkedHashMap<>();
        byte[] plainBytes = Files.readAllBytes(plain);
        byte[][] sealedBytes = new byte[2][]; // the shard and the Tink file, for the in-memory rows
        byte[][] bufferOut = new byte[2][]; // the shard and the plaintext of the buffer rows
        int total = mode.warmupRounds() + mode.rounds();
        for (int round = 0; round < total; round++) {
            boolean keep = round >= mode.warmupRounds();
            boolean check = round == total - 1;
            if (opensslMissing == null) {
                runOpenssl(t, keep);
            }
            record(t, keep, "copy/plain/1", time(output, () -> copy(plain, output)));
            for (int threads : new int[] {1, 2}) {
                int th = threads;
                record(t, keep, "encrypt/shard/" + th, time(shard, () -> ours.encrypt(plain, shard, th)));
                record(t, keep, "decrypt/shard/" + th, time(output, () -> ours.decrypt(shard, output, th)));
                if (check) checkSame(plain, output, "shard, " + th + " threads");
                record(t, keep, "encrypt_file/shard/" + th, time(shard, () -> ours.encryptFile(plain, shard, th)));
                record(t, keep, "decrypt_file/shard/" + th, time(output, () -> ours.decryptFile(shard, output, th)));
                if (check) checkSame(plain, output, "shard file to file, " + th + " threads");
            }
            if (sealedBytes[0] == null) sealedBytes[0] = Files.readAllBytes(shard);
            for (int threads : new int[] {1, 2}) {
                int th = threads;
                record(t, keep, "encrypt_memory/shard/" + th, time(null,
                        () -> expect(sealedBytes[0].length, ours.encryptMemory(plainBytes, th), "shard encrypt")));
                record(t, keep, "decrypt_memory/shard/" + th, time(null,
                        () -> expect(n, ours.decryptMemory(sealedBytes[0], th), "shard decrypt")));
            }
            // Buffer to buffer: the output arrays are allocated once, outside the timing, as a
            // runtime's tensor buffers are; checked against the plaintext in the last round.
            if (bufferOut[0] == null) {
                bufferOut[0] = new byte[(int) ours.shardLength(n)];
                bufferOut[1] = new byte[(int) n];
            }
            for (int threads : new int[] {1, 2}) {
                int th = threads;
                record(t, keep, "encrypt_buffer/shard/" + th, time(null,
                        () -> expect(bufferOut[0].length, ours.encryptBuffer(plainBytes, bufferOut[0], th),
                                "shard buffer encrypt")));
                record(t, keep, "decrypt_buffer/shard/" + th, time(null,
                        () -> expect(n, ours.decryptBuffer(bufferOut[0], bufferOut[1], th), "shard buffer decrypt")));
                if (check && !Arrays.equals(plainBytes, bufferOut[1])) {
                    throw new IOException("buffer round trip on " + th + " threads differs from the plaintext");
                }
            }
            record(t, keep, "encrypt/tink/1", time(tinkFile, () -> tink.encrypt(plain, tinkFile)));
            record(t, keep, "decrypt/tink/1", time(output, () -> tink.decrypt(tinkFile, output)));
            if (check) checkSame(plain, output, "Tink");
            if (sealedBytes[1] == null) sealedBytes[1] = Files.readAllBytes(tinkFile);
            record(t, keep, "encrypt_memory/tink/1", time(null,
                    () -> expect(sealedBytes[1].length, tink.encryptMemory(plainBytes), "Tink encrypt")));
            record(t, keep, "decrypt_memory/tink/1", time(null,
                    () -> expect(n, tink.decryptMemory(sealedBytes[1]), "Tink decrypt")));
            if (age != null) {
                record(t, keep, "encrypt/age/1", time(ageFile, () -> age.encrypt(plain, ageFile)));
                record(t, keep, "decrypt/age/1", time(output, () -> age.decrypt(ageFile, output)));
                if (check) checkSame(plain, output, "age");
            }
        }
        sealedBytes[0] = sealedBytes[1] = null;
        bufferOut[0] = bufferOut[1] = null;

        for (boolean elapsed : new boolean[] {false, true}) {
            String op = elapsed ? "aes_256_gcm_16k_elapsed" : "aes_256_gcm_16k";
            for (int p : new int[] {1, 2}) {
                if (opensslMissing != null) {
                    rows.add(ShardRow.unavailable(op, "openssl", p, 0, opensslMissing));
                    continue;
                }
                // openssl reports bytes/s over its own interval: keep the rate, expressed as seconds per GiB.
                String key = (elapsed ? "openssl_elapsed/" : "openssl/") + p;
                double[] sPerGiB = t.get(key).stream().mapToDouble(bps -> (1L << 30) / bps).toArray();
                rows.add(ShardRow.measured(op, "openssl", p, 1L << 30, Samples.of(sPerGiB),
                        "openssl speed -evp aes-256-gcm -bytes 16384 -seconds " + mode.opensslSeconds()
                                + (p > 1 ? " -multi " + p : "") + (elapsed ? " -elapsed" : "") + "; in memory, "
                                + (elapsed ? "wall-clock divisor" : "openssl's default divisor: user CPU time")));
            }
        }
        rows.add(row(t, "copy/plain/1", "copy", "plain", 1, n, "read + write through a 1 MiB heap buffer "
                + "(FileChannel): the I/O floor of any user-space encryptor"));
        for (String op : List.of("encrypt", "decrypt")) {
            for (int threads : new int[] {1, 2}) {
                rows.add(row(t, op + "/shard/" + threads, op, "shard", threads, n, "shard library, channel API, "
                        + "1 MiB segments, " + threads + (threads == 1 ? " thread" : " threads (the caller reads, "
                        + "writes and encrypts when it would wait; 1 pool thread)")));
                rows.add(row(t, op + "_file/shard/" + threads, op + "_file", "shard", threads, n, "shard library, "
                        + (op.equals("encrypt") ? "ShardEncryptor.encryptFile" : "ShardDecryptor.decryptFile")
                        + " (file to file, temporary file renamed), " + threads + (threads == 1 ? " thread"
                        : " threads, each reading (mapping), transforming and writing (pwrite) its own segments")));
            }
            rows.add(row(t, op + "/tink/1", op, "tink", 1, n, "Tink " + TinkFiles.TEMPLATE + ", channel API"));
            rows.add(age == null ? ShardRow.unavailable(op, "age", 1, n, ageMissing)
                    : row(t, op + "/age/1", op, "age", 1, n, "age X25519 recipient, one process per file"));
        }
        for (String op : List.of("encrypt_memory", "decrypt_memory")) {
            for (int threads : new int[] {1, 2}) {
                rows.add(row(t, op + "/shard/" + threads, op, "shard", threads, n, "shard library, channel API, "
                        + "memory → discard (no file I/O): the CPU-bound path"));
            }
            rows.add(row(t, op + "/tink/1", op, "tink", 1, n, "Tink " + TinkFiles.TEMPLATE
                    + ", channel API, memory → discard"));
        }
        for (String op : List.of("encrypt_buffer", "decrypt_buffer")) {
            for (int threads : new int[] {1, 2}) {
                rows.add(row(t, op + "/shard/" + threads, op, "shard", threads, n, "shard library, "
                        + (op.startsWith("encrypt") ? "ShardEncryptor.encrypt(ByteBuffer, ByteBuffer)"
                        : "ShardDecryptor.decrypt(ByteBuffer, ByteBuffer, threads)") + ": heap buffer to heap buffer, "
                        + threads + (threads == 1 ? " thread" : " threads each sealing/opening its own segments in place")));
            }
        }

        try (ShardReader reader = ours.reader(shard, 1);
             ShardReader parallel = ours.reader(shard, 2);
             SeekableByteChannel tinkSeek = tink.seekable(tinkFile)) {
            SliceReads slices = new SliceReads(plain, reader, parallel, tinkSeek, mode.slice(), n);
            rows.addAll(slices.measure(mode.sliceWarmup(), mode.sliceReps(), false, 8));
            rows.addAll(slices.measure(mode.sliceWarmup(), mode.sliceReps(), true, 9));
        }
        info.put("finished", Instant.now().toString());
        info.put("load_average_end", loadAverage());
        return new ShardReport(info, rows);
    }

    /**
     * The four openssl measurements of a round, one after the other; in the tiny mode all
     * at once (they compete, so those figures mean nothing: the mode only checks that
     * every system runs, and 1 s is openssl's shortest run).
     */
    private void runOpenssl(Map<String, List<Double>> t, boolean keep) throws Exception {
        Map<String, java.util.concurrent.Callable<Double>> runs = new LinkedHashMap<>();
        for (int p : new int[] {1, 2}) {
            runs.put("openssl/" + p, () -> OpensslSpeed.bytesPerSecond(mode.opensslSeconds(), p, false));
            runs.put("openssl_elapsed/" + p, () -> OpensslSpeed.bytesPerSecond(mode.opensslSeconds(), p, true));
        }
        if (mode != Mode.TINY) {
            for (var e : runs.entrySet()) record(t, keep, e.getKey(), e.getValue().call());
            return;
        }
        try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            Map<String, java.util.concurrent.Future<Double>> started = new LinkedHashMap<>();
            runs.forEach((k, c) -> started.put(k, pool.submit(c)));
            for (var e : started.entrySet()) record(t, keep, e.getKey(), e.getValue().get());
        }
    }

    private ShardRow row(Map<String, List<Double>> t, String key, String op, String system, int threads,
                         long bytes, String note) {
        double[] v = t.get(key).stream().mapToDouble(Double::doubleValue).toArray();
        double[] c = cpu.get(key).stream().mapToDouble(Double::doubleValue).toArray();
        return ShardRow.measured(op, system, threads, bytes, Samples.of(v), Samples.of(c), note);
    }

    private void record(Map<String, List<Double>> t, boolean keep, String key, double value) {
        List<Double> l = t.computeIfAbsent(key, k -> new ArrayList<>());
        if (keep) {
            l.add(value);
            if (t != cpu && !key.startsWith("openssl")) cpu.computeIfAbsent(key, k -> new ArrayList<>()).add(lastCpu);
        }
    }

    interface Work {
        void run() throws Exception;
    }

    /**
     * Wall-clock seconds of {@code work}; its CPU seconds (this process's threads and its
     * waited-for children, e.g. age) are left in {@link #lastCpu}. {@code target} is
     * deleted first (outside the timing), so no run pays for truncating it.
     */
    private double time(Path target, Work work) throws Exception {
        if (target != null) Files.deleteIfExists(target);
        double c0 = CpuClock.seconds();
        long t0 = System.nanoTime();
        work.run();
        long t1 = System.nanoTime();
        lastCpu = CpuClock.seconds() - c0;
        return (t1 - t0) / 1e9;
    }

    private static void copy(Path from, Path to) throws IOException {
        try (FileChannel in = FileChannel.open(from, READ);
             FileChannel out = FileChannel.open(to, WRITE, CREATE, TRUNCATE_EXISTING)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            while (in.read(buf) >= 0) {
                buf.flip();
                while (buf.hasRemaining()) out.write(buf);
                buf.clear();
            }
        }
    }

    private static void expect(long expected, long actual, String what) throws IOException {
        if (expected != actual) throw new IOException(what + " produced " + actual + " bytes, not " + expected);
    }

    private static void checkSame(Path a, Path b, String what) throws IOException {
        long at = Files.mismatch(a, b);
        if (at != -1) {
            throw new IOException(what + ": the decrypted file differs from the plaintext at byte " + at);
        }
    }

    private static void writeRandom(Path file, long bytes) throws IOException {
        SplittableRandom random = new SplittableRandom(1);
        byte[] block = new byte[1 << 20];
        try (OutputStream out = Files.newOutputStream(file)) {
            for (long left = bytes; left > 0; left -= block.length) {
                for (int i = 0; i < block.length; i += 8) {
                    long v = random.nextLong();
                    for (int k = 0; k < 8; k++) block[i + k] = (byte) (v >>> (8 * k));
                }
                out.write(block, 0, (int) Math.min(block.length, left));
            }
        }
    }

    private static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).strip();
            }
        } catch (IOException e) {
            // not Linux
        }
        return "unknown";
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
