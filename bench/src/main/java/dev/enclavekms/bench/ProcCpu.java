package dev.enclavekms.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CPU time (user + system, all threads, including threads that have ended) of this JVM —
 * the load generator, or for the direct baseline the whole in-process PKCS#11 work — and
 * of another process and its children (the daemon, the p11-kit server). On a shared machine the wall clock
 * measures the neighbours as much as the code; CPU time per operation does not, and it
 * separates what the daemon costs from what the load generator on the same vCPUs costs.
 *
 * <p>Read with {@code clock_gettime} on the process's CPU clock ({@code
 * clock_getcpuclockid}: ns resolution); where that fails, {@code utime + stime} from
 * {@code /proc/PID/stat} (clock ticks of 10 ms, too coarse for a short repetition).
 */
final class ProcCpu {
    private static final long SELF = ProcessHandle.current().pid();
    /** USER_HZ: /proc/PID/stat reports times in clock ticks of 1/100 s on Linux. */
    private static final long TICK_NS = 10_000_000L;
    private static final int CLOCK_PROCESS_CPUTIME_ID = 2;
    private static final MethodHandle CLOCK_GETTIME;
    private static final MethodHandle GETCPUCLOCKID;

    static {
        MethodHandle gettime = null;
        MethodHandle cpuclockid = null;
        try {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            gettime = linker.downcallHandle(libc.find("clock_gettime").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            cpuclockid = linker.downcallHandle(libc.find("clock_getcpuclockid").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        } catch (Throwable e) {
            // no native access: /proc ticks only
        }
        CLOCK_GETTIME = gettime;
        GETCPUCLOCKID = cpuclockid;
    }

    private ProcCpu() {
    }

    /** CPU time of process {@code pid} in ns, or −1 if it cannot be read (e.g. it has exited). */
    static long ns(long pid) {
        long precise = clockNs(pid);
        return precise >= 0 ? precise : statNs(pid);
    }

    private static long clockNs(long pid) {
        if (CLOCK_GETTIME == null || GETCPUCLOCKID == null) return -1;
        try (Arena a = Arena.ofConfined()) {
            int clock = CLOCK_PROCESS_CPUTIME_ID;
            if (pid != SELF) {
                MemorySegment id = a.allocate(ValueLayout.JAVA_INT);
                if ((int) GETCPUCLOCKID.invokeExact((int) pid, id) != 0) return -1;
                clock = id.get(ValueLayout.JAVA_INT, 0);
            }
            MemorySegment ts = a.allocate(16, 8); // struct timespec { long tv_sec; long tv_nsec; }
            if ((int) CLOCK_GETTIME.invokeExact(clock, ts) != 0) return -1;
            return ts.get(ValueLayout.JAVA_LONG, 0) * 1_000_000_000L + ts.get(ValueLayout.JAVA_LONG, 8);
        } catch (Throwable e) {
            return -1;
        }
    }

    /** utime + stime from /proc/PID/stat (fields 14 and 15), in ns. */
    private static long statNs(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            // f[0] is field 3 (state): field k is f[k - 3]
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * TICK_NS;
        } catch (Exception e) {
            return -1;
        }
    }

    /** Both clocks at one instant; {@code serverPid} ≤ 0 when only this JVM is measured. */
    record Mark(long serverPid, long serverNs, long selfNs) {
    }

    /** The start of an interval: the serving process first, so that reading it is not counted as the bench's. */
    static Mark mark(long serverPid) {
        long server = serverPid > 0 ? treeNs(serverPid) : -1;
        return new Mark(serverPid, server, ns(SELF));
    }

    /** The end of the interval started by {@code start}: the bench first, for the same reason. */
    static Mark end(Mark start) {
        long self = ns(SELF);
        return new Mark(start.serverPid(), start.serverPid() > 0 ? treeNs(start.serverPid()) : -1, self);
    }

    /**
     * CPU ns of {@code pid} and its descendants alive now: {@code p11-kit server} serves each
     * client in a child process. (The daemon has none: the launcher execs the JVM.)
     */
    static long treeNs(long pid) {
        long total = ns(pid);
        if (total < 0) return -1;
        var self = ProcessHandle.of(pid);
        if (self.isPresent()) {
            for (ProcessHandle h : self.get().descendants().toList()) total += Math.max(0, ns(h.pid()));
        }
        return total;
    }
}
