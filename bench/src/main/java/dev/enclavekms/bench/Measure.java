package dev.enclavekms.bench;

import org.HdrHistogram.Histogram;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Repetitions of one configuration: ops/s per repetition and the merged latency histogram (ns). */
final class Measure {
    final Histogram latencyNs = new Histogram(3_600_000_000_000L, 3);
    final List<Double> opsPerS = new ArrayList<>();
    String note;
    /** The closed-loop setting measured, if any. */
    Mode.Config config;
    /** CPU ns over the repetitions counted by {@link #cpu}: the serving process's (−1: not measured) and the bench's. */
    private long serverCpuNs = -1;
    private long selfCpuNs = -1;
    private long cpuOps;

    void add(double opsPerSecond, Histogram h) {
        opsPerS.add(opsPerSecond);
        latencyNs.add(h);
    }

    /**
     * Adds the CPU used since {@code start} by the bench and (if {@code start} names one) the
     * serving process, for {@code ops} operations (data keys for a batch).
     */
    void cpu(ProcCpu.Mark start, long ops) {
        ProcCpu.Mark end = ProcCpu.end(start);
        selfCpuNs = Math.max(0, selfCpuNs) + end.selfNs() - start.selfNs();
        if (start.serverNs() >= 0 && end.serverNs() >= 0) {
            serverCpuNs = Math.max(0, serverCpuNs) + end.serverNs() - start.serverNs();
        }
        cpuOps += ops;
    }

    /** {@link #add} of one repetition, counting its CPU since {@code start}: ops are the histogram's calls × units. */
    void add(double opsPerSecond, Histogram h, ProcCpu.Mark start, int unitsPerCall) {
        cpu(start, h.getTotalCount() * unitsPerCall);
        add(opsPerSecond, h);
    }

    Row row(String op, String system, int conns, int depth) {
        double[] v = opsPerS.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double median = v.length == 0 ? Double.NaN
                : v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
        return new Row(op, system, conns, depth, median,
                latencyNs.getValueAtPercentile(50) / 1000.0,
                latencyNs.getValueAtPercentile(99) / 1000.0,
                latencyNs.getValueAtPercentile(99.9) / 1000.0,
                v.length == 0 ? Double.NaN : v[0], v.length == 0 ? Double.NaN : v[v.length - 1],
                v.length, latencyNs.getTotalCount(), note, perOpUs(serverCpuNs), perOpUs(selfCpuNs), java.util.Map.of());
    }

    private double perOpUs(long ns) {
        return ns < 0 || cpuOps == 0 ? Double.NaN : ns / 1000.0 / cpuOps;
    }

    @Override
    public String toString() {
        return Arrays.toString(opsPerS.toArray());
    }
}
