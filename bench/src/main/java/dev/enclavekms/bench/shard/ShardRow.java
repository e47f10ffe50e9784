package dev.enclavekms.bench.shard;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One measured (or unavailable) combination: {@code operation} by {@code system} on
 * {@code threads} threads over {@code bytes} bytes per repetition. Times are seconds per
 * repetition; an unavailable row has no samples and says why.
 */
record ShardRow(String operation, String system, int threads, long bytes, Samples seconds, Samples cpuSeconds,
                String unavailable, String note) {

    static ShardRow measured(String operation, String system, int threads, long bytes, Samples seconds, String note) {
        return new ShardRow(operation, system, threads, bytes, seconds, null, null, note);
    }

    /** With the CPU time (all threads of the process and its children) of each repetition. */
    static ShardRow measured(String operation, String system, int threads, long bytes, Samples seconds,
                             Samples cpuSeconds, String note) {
        return new ShardRow(operation, system, threads, bytes, seconds, cpuSeconds, null, note);
    }

    static ShardRow unavailable(String operation, String system, int threads, long bytes, String reason) {
        return new ShardRow(operation, system, threads, bytes, null, null, reason, null);
    }

    /** Throughput per CPU-second of the median repetition's CPU time, MiB/s; NaN when not measured. */
    double mibPerCpuS() {
        return cpuSeconds != null && cpuSeconds.median() > 0 ? bytes / cpuSeconds.median() / (1 << 20) : Double.NaN;
    }

    boolean available() {
        return seconds != null;
    }

    /** Throughput of the median repetition, MiB/s (2^20 bytes). */
    double mibPerS() {
        return available() ? bytes / seconds.median() / (1 << 20) : Double.NaN;
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("operation", operation);
        m.put("system", system);
        m.put("threads", threads);
        m.put("bytes", bytes);
        if (available()) {
            m.put("repetitions", seconds.count());
            m.put("median_s", seconds.median());
            m.put("min_s", seconds.min());
            m.put("max_s", seconds.max());
            m.put("p90_s", seconds.percentile(90));
            m.put("mib_per_s", mibPerS());
            m.put("mib_per_s_min", bytes / seconds.max() / (1 << 20));
            m.put("mib_per_s_max", bytes / seconds.min() / (1 << 20));
            m.put("cpu_median_s", cpuSeconds == null ? null : cpuSeconds.median());
            m.put("mib_per_cpu_s", Double.isNaN(mibPerCpuS()) ? null : mibPerCpuS());
        } else {
            m.put("repetitions", 0);
            m.put("median_s", null);
            m.put("mib_per_s", null);
        }
        m.put("unavailable", unavailable);
        m.put("note", note);
        return m;
    }
}
