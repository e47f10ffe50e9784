package dev.enclavekms.bench.shard;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CPU time used so far by this process (all its threads: callers, segment workers, JIT,
 * GC) plus its waited-for children (age). On a shared machine the wall clock measures
 * the load as much as the code; CPU time does not, and it is what {@code openssl speed}
 * divides by unless told {@code -elapsed}.
 */
final class CpuClock {
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    /** USER_HZ: Linux reports children's times in clock ticks of 1/100 s. */
    private static final double TICK = 0.01;

    private CpuClock() {
    }

    static double seconds() {
        return OS.getProcessCpuTime() / 1e9 + children();
    }

    /** cutime + cstime from /proc/self/stat (fields 16 and 17), or 0 where there is no /proc. */
    private static double children() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            // f[0] is field 3 (state): field k is f[k - 3]
            return (Long.parseLong(f[13]) + Long.parseLong(f[14])) * TICK;
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }
}
