package dev.enclavekms.audit;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

/**
 * Not a test: a measuring harness for the audit write path (docs/performance.md, "Audit write
 * path (session 3)"). Times one durable record at a time — the raw cost of a 300-byte write
 * plus {@code fdatasync} on the file's end and into zeroed blocks, and {@link AuditLog#append}
 * — with wall and CPU time per record, and N threads appending at once. Run it (from
 * hsm-daemon, after {@code mvn package}):
 *
 * <pre>
 * java -cp target/classes:target/test-classes dev.enclavekms.audit.AuditWriteProbe DIR [records] [mode...]
 * </pre>
 * modes: {@code raw-append}, {@code raw-overwrite}, {@code log}, {@code log-N} (N threads); with a
 * {@code v} in front ({@code vraw-append}, {@code vlog}), on one virtual thread, as the daemon's calls run;
 * {@code open-R} / {@code then-R}: records arriving at random at R per second (an open loop), each
 * {@link AuditLog#append}ed on a virtual thread of its own (as a lone call) / handed to
 * {@link AuditLog#appendThen} (as a pipelined call), latency from the arrival to the confirmation.
 */
public final class AuditWriteProbe {
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    /** Process CPU when the measured loop began (all threads: JIT and GC included). */
    private static long processCpu0;
    /** The disk's counters when the measured loop began (/sys/block/DEV/stat; every process's I/O). */
    private static long[] disk0;
    private static final Path DISK_STAT = Path.of("/sys/block", System.getProperty("disk", "vda"), "stat");

    private static long[] disk() {
        try {
            String[] f = Files.readString(DISK_STAT).trim().split("\\s+");
            // writes completed, sectors written, flushes completed
            return new long[] {Long.parseLong(f[4]), Long.parseLong(f[6]), f.length > 15 ? Long.parseLong(f[15]) : 0};
        } catch (IOException | RuntimeException e) {
            return new long[3];
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
        String[] modes = args.length > 2 ? Arrays.copyOfRange(args, 2, args.length)
                : new String[] {"raw-append", "raw-overwrite", "log", "log-8"};
        Files.createDirectories(dir);
        for (String mode : modes) {
            Path d = Files.createTempDirectory(dir, mode + "-");
            try {
                switch (mode) {
                    case "raw-append" -> raw(d, n, false);
                    case "raw-overwrite" -> raw(d, n, true);
                    case "vraw-append" -> onVirtualThread(() -> raw(d, n, false));
                    case "vraw-overwrite" -> onVirtualThread(() -> raw(d, n, true));
                    case "log" -> log(d, n, "log");
                    case "vlog" -> onVirtualThread(() -> log(d, n, "vlog"));
                    default -> {
                        if (mode.startsWith("open-") || mode.startsWith("then-")) {
                            open(d, n, Double.parseDouble(mode.substring(5)), mode.startsWith("then-"), mode);
                            continue;
                        }
                        if (!mode.startsWith("log-")) throw new IllegalArgumentException(mode);
                        concurrent(d, n, Integer.parseInt(mode.substring(4)));
                    }
                }
            } finally {
                try (Stream<Path> s = Files.walk(d)) {
                    s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
    }

    private interface Body {
        void run() throws Exception;
    }

    /** As the daemon calls it: its calls run on virtual threads. */
    private static void onVirtualThread(Body body) throws Exception {
        Exception[] failed = new Exception[1];
        Thread.ofVirtual().start(() -> {
            try {
                body.run();
            } catch (Exception e) {
                failed[0] = e;
            }
        }).join();
        if (failed[0] != null) throw failed[0];
    }

    /** 300 bytes + fdatasync per record, at the file's end or into blocks already zeroed and synced. */
    private static void raw(Path d, int n, boolean overwrite) throws IOException {
        Path f = d.resolve("raw");
        long[] wall = new long[n];
        long cpu0 = THREADS.getCurrentThreadCpuTime();
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            if (overwrite) {
                ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
                for (long pos = 0; pos < (long) n * 300 + (1 << 20); pos += zeros.capacity()) {
                    zeros.clear();
                    ch.write(zeros, pos);
                }
                ch.force(true);
            }
            cpu0 = THREADS.getCurrentThreadCpuTime();
            processCpu0 = OS.getProcessCpuTime();
            disk0 = disk();
            byte[] rec = new byte[300];
            Arrays.fill(rec, (byte) 'x');
            rec[299] = '\n';
            long pos = 0;
            for (int i = 0; i < n; i++) {
                long t = System.nanoTime();
                ch.write(ByteBuffer.wrap(rec), pos);
                ch.force(false);
                wall[i] = System.nanoTime() - t;
                pos += rec.length;
            }
        }
        print((Thread.currentThread().isVirtual() ? "v" : "") + (overwrite ? "raw-overwrite" : "raw-append"), wall, THREADS.getCurrentThreadCpuTime() - cpu0, 0);
    }

    private static AuditLog open(Path d) throws IOException {
        return AuditLog.open(AuditLog.Options.defaults(d), new AuditFixtures.JcaSigner(), Clock.systemUTC(),
                Map.of("daemon_version", "probe"));
    }

    /** Open loop: n records arriving at random (exponential gaps) at {@code rate} per second. */
    private static void open(Path d, int n, double rate, boolean then, String name) throws Exception {
        try (AuditLog log = open(d)) {
            for (int i = 0; i < 2000; i++) log.append(record(i)); // warm-up
            long[] wall = new long[n];
            CountDownLatch all = new CountDownLatch(n);
            java.util.Random random = new java.util.Random(42);
            processCpu0 = OS.getProcessCpuTime();
            disk0 = disk();
            long appender0 = appenderCpu();
            long due = System.nanoTime();
            for (int i = 0; i < n; i++) {
                due += (long) (-Math.log(1 - random.nextDouble()) / rate * 1e9);
                while (System.nanoTime() < due) {
                    long left = due - System.nanoTime();
                    if (left > 100_000) java.util.concurrent.locks.LockSupport.parkNanos(left - 50_000);
                }
                int me = i;
                long arrived = due;
                if (then) {
                    log.appendThen(record(i), refusal -> {
                        wall[me] = refusal == null ? System.nanoTime() - arrived : Long.MAX_VALUE;
                        all.countDown();
                    });
                } else {
                    Thread.ofVirtual().start(() -> {
                        try {
                            log.append(record(me));
                            wall[me] = System.nanoTime() - arrived;
                        } catch (AuditUnavailableException e) {
                            wall[me] = Long.MAX_VALUE;
                        }
                        all.countDown();
                    });
                }
            }
            all.await();
            print(name, wall, 0, appenderCpu() - appender0);
        }
    }

    /** A call-sized record; the daemon's are 250–400 bytes. */
    private static Map<String, Object> record(int i) {
        return Map.of("type", "call", "user", "root", "group", "root", "conn", (long) i,
                "method", "dev.enclavekms.Kms.Decrypt", "key", "bench-aes", "version", 1L, "outcome", "ok",
                "context", Map.of("model", "hmac-sha256:0f6de0f878279ef616ccdfa6a833aa564ada8e7f9fda943d0a4a41fbecc69b5d"));
    }

    private static void log(Path d, int n, String name) throws Exception {
        try (AuditLog log = open(d)) {
            for (int i = 0; i < 3000; i++) log.append(record(i)); // warm-up: JIT
            long[] wall = new long[n];
            long appender0 = appenderCpu();
            long cpu0 = THREADS.getCurrentThreadCpuTime();
            long fs0 = log.fsyncCount();
            processCpu0 = OS.getProcessCpuTime();
            disk0 = disk();
            for (int i = 0; i < n; i++) {
                long t = System.nanoTime();
                log.append(record(i));
                wall[i] = System.nanoTime() - t;
            }
            long cpu = THREADS.getCurrentThreadCpuTime() - cpu0;
            print(name, wall, cpu, appenderCpu() - appender0);
            System.out.printf("    fsyncs %d for %d records%n", log.fsyncCount() - fs0, n);
        }
    }

    private static void concurrent(Path d, int n, int threads) throws Exception {
        try (AuditLog log = open(d)) {
            for (int i = 0; i < 3000; i++) log.append(record(i));
            long[] wall = new long[n];
            CountDownLatch go = new CountDownLatch(1);
            Thread[] ts = new Thread[threads];
            long[] cpu = new long[threads];
            int per = n / threads;
            for (int t = 0; t < threads; t++) {
                int me = t;
                ts[t] = Thread.ofPlatform().start(() -> {
                    try {
                        go.await();
                        long c0 = THREADS.getCurrentThreadCpuTime();
                        for (int i = 0; i < per; i++) {
                            long s = System.nanoTime();
                            log.append(record(i));
                            wall[me * per + i] = System.nanoTime() - s;
                        }
                        cpu[me] = THREADS.getCurrentThreadCpuTime() - c0;
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                });
            }
            long appender0 = appenderCpu();
            long fs0 = log.fsyncCount();
            processCpu0 = OS.getProcessCpuTime();
            disk0 = disk();
            long t0 = System.nanoTime();
            go.countDown();
            for (Thread t : ts) t.join();
            long elapsed = System.nanoTime() - t0;
            print("log-" + threads, Arrays.copyOf(wall, per * threads), Arrays.stream(cpu).sum(), appenderCpu() - appender0);
            System.out.printf("    %.0f records/s, fsyncs %d for %d records%n", per * threads * 1e9 / elapsed,
                    log.fsyncCount() - fs0, per * threads);
        }
    }

    /** Every appender's CPU time (one per lane: audit-appender, audit-appender-2, ...). */
    private static long appenderCpu() {
        long sum = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("audit-appender")) sum += THREADS.getThreadCpuTime(t.threadId());
        }
        return sum;
    }

    private static void print(String what, long[] wall, long callerCpu, long appenderCpu) {
        long process = OS.getProcessCpuTime() - processCpu0;
        long[] disk = disk();
        long[] s = wall.clone();
        Arrays.sort(s);
        System.out.printf("%-14s n=%d wall p50 %4d µs p90 %4d p99 %5d | CPU/record: process %3d µs, caller %3d, appender %3d"
                        + " | disk/record: %.2f writes, %.1f KiB, %.2f flushes%n",
                what, s.length, s[s.length / 2] / 1000, s[(int) (s.length * 0.9)] / 1000,
                s[(int) (s.length * 0.99)] / 1000, process / s.length / 1000, callerCpu / s.length / 1000, appenderCpu / s.length / 1000,
                (double) (disk[0] - disk0[0]) / s.length, (disk[1] - disk0[1]) / 2.0 / s.length,
                (double) (disk[2] - disk0[2]) / s.length);
    }

    private AuditWriteProbe() {
    }
}
