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

    void add(double opsPerSecond, Histogram h) {
        opsPerS.add(opsPerSecond);
        latencyNs.add(h);
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
                v.length, latencyNs.getTotalCount(), note);
    }

    @Override
    public String toString() {
        return Arrays.toString(opsPerS.toArray());
    }
}
