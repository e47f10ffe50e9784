package dev.enclavekms.bench;

import dev.enclavekms.json.Json;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** Writes the rows as {@code latest.json} and a Markdown table with daemon/direct ratios. */
public final class Report {
    private Report() {
    }

    public static String json(List<Row> rows) {
        List<Object> out = new ArrayList<>();
        for (Row r : rows) out.add(r.toJson());
        StringBuilder sb = new StringBuilder("[\n");
        for (int i = 0; i < out.size(); i++) {
            sb.append("  ").append(Json.write(out.get(i))).append(i + 1 < out.size() ? ",\n" : "\n");
        }
        return sb.append("]\n").toString();
    }

    public static String markdown(List<Row> rows, Map<String, String> header) {
        StringBuilder sb = new StringBuilder("# enclave-kms benchmark\n\n");
        header.forEach((k, v) -> sb.append("- ").append(k).append(": ").append(v).append('\n'));
        sb.append("\n## Summary: best throughput and single-call latency per operation\n\n");
        sb.append("| operation | daemon best ops/s (conn×depth) | direct best ops/s (threads) | daemon/direct | "
                + "daemon p50 µs (1×1) | direct p50 µs (1 thread) | floor p50 µs | p50 gap − floor µs |\n");
        sb.append("|---|---|---|---|---|---|---|---|\n");
        Row floor1 = find(rows, "status", "floor", 1, 1);
        Set<String> ops = new LinkedHashSet<>();
        for (Row r : rows) if (!r.operation().equals("status")) ops.add(r.operation());
        for (String op : ops) {
            Row d = best(rows, op, "daemon");
            Row x = best(rows, op, "direct");
            Row d1 = find(rows, op, "daemon", 1, 1);
            Row x1 = find(rows, op, "direct", 1, 1);
            if (d == null && x == null) continue;
            String gap = d1 != null && x1 != null && floor1 != null && Targets.SINGLE_OPS.contains(op)
                    ? f(d1.p50Us() - x1.p50Us() - floor1.p50Us()) : "–";
            sb.append("| ").append(op)
                    .append(" | ").append(d == null ? "–" : f(d.opsPerS()) + " (" + d.connections() + "×" + d.depth() + ")")
                    .append(" | ").append(x == null ? "–" : f(x.opsPerS()) + " (" + x.connections() + ")")
                    .append(" | ").append(d != null && x != null ? String.format(Locale.ROOT, "%.2f", d.opsPerS() / x.opsPerS()) : "–")
                    .append(" | ").append(d1 == null ? "–" : f(d1.p50Us()))
                    .append(" | ").append(x1 == null ? "–" : f(x1.p50Us()))
                    .append(" | ").append(floor1 == null ? "–" : f(floor1.p50Us()))
                    .append(" | ").append(gap).append(" |\n");
        }
        sb.append(cpuMarkdown(rows, ops));
        sb.append(Targets.markdown(rows));
        sb.append("\n## All rows\n\n");
        sb.append("| operation | system | conn | depth | ops/s (median) | spread min–max | p50 µs | p99 µs | p99.9 µs | reps"
                + " | daemon CPU µs/op | client CPU µs/op | note |\n");
        sb.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            sb.append("| ").append(r.operation()).append(" | ").append(r.system())
                    .append(" | ").append(r.connections()).append(" | ").append(r.depth())
                    .append(" | ").append(f(r.opsPerS()))
                    .append(" | ").append(r.supported() ? f(r.opsPerSMin()) + "–" + f(r.opsPerSMax()) : "–")
                    .append(" | ").append(f(r.p50Us())).append(" | ").append(f(r.p99Us()))
                    .append(" | ").append(f(r.p999Us())).append(" | ").append(r.repetitions())
                    .append(" | ").append(f(r.daemonCpuUsPerOp())).append(" | ").append(f(r.clientCpuUsPerOp()))
                    .append(" | ").append(r.note() == null ? "" : r.note()).append(" |\n");
        }
        return sb.toString();
    }

    /**
     * CPU time per operation: what the daemon spends on a call against what the same work
     * costs in-process (direct), with the load generator's own share apart — on two shared
     * vCPUs the throughput ratio mixes the two; this does not.
     */
    static String cpuMarkdown(List<Row> rows, Set<String> ops) {
        StringBuilder sb = new StringBuilder("\n## CPU per operation (µs of CPU time per op, from /proc and the JVM)\n\n");
        sb.append("Daemon: the daemon process's utime + stime per op; generator: the bench JVM's (the load generator)."
                + " Direct: the bench JVM's per op doing the work in-process. Pinned: daemon on CPU 0, generator on CPU 1,"
                + " against direct on one thread on CPU 0.\n\n");
        sb.append("| operation | daemon CPU µs/op (at best) | generator CPU µs/op (at best) | daemon CPU µs/op (1×1) | "
                + "direct CPU µs/op (1 thread) | daemon / direct CPU | pinned ops/s: daemon vs direct (ratio) |\n");
        sb.append("|---|---|---|---|---|---|---|\n");
        for (String op : ops) {
            Row d = best(rows, op, "daemon");
            Row d1 = find(rows, op, "daemon", 1, 1);
            Row x1 = find(rows, op, "direct", 1, 1);
            if (d == null && x1 == null) continue;
            Row dp = best(rows, op, "daemon-pinned");
            Row xp = best(rows, op, "direct-pinned");
            String pinned = dp != null && xp != null ? f(dp.opsPerS()) + " (" + dp.connections() + "×" + dp.depth()
                    + ") vs " + f(xp.opsPerS()) + String.format(Locale.ROOT, " = %.2f×", dp.opsPerS() / xp.opsPerS())
                    : "–";
            sb.append("| ").append(op)
                    .append(" | ").append(d == null ? "–" : f(d.daemonCpuUsPerOp()) + " (" + d.connections() + "×"
                            + d.depth() + ")")
                    .append(" | ").append(d == null ? "–" : f(d.clientCpuUsPerOp()))
                    .append(" | ").append(d1 == null ? "–" : f(d1.daemonCpuUsPerOp()))
                    .append(" | ").append(x1 == null ? "–" : f(x1.clientCpuUsPerOp()))
                    .append(" | ").append(d != null && x1 != null && !Double.isNaN(d.daemonCpuUsPerOp())
                            && x1.clientCpuUsPerOp() > 0
                            ? String.format(Locale.ROOT, "%.1f×", d.daemonCpuUsPerOp() / x1.clientCpuUsPerOp()) : "–")
                    .append(" | ").append(pinned).append(" |\n");
        }
        return sb.toString();
    }

    public static void write(Path dir, List<Row> rows, Map<String, String> header) throws IOException {
        write(dir, rows, header, Map.of());
    }

    /** As {@link #write(Path, List, Map)}, and the latency distributions as {@code latest-latency.json}. */
    static void write(Path dir, List<Row> rows, Map<String, String> header, Map<Row, Histogram> latency)
            throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("latest.json"), json(rows));
        Files.writeString(dir.resolve("latest.md"), markdown(rows, header));
        Files.writeString(dir.resolve("latest-latency.json"), latencyJson(rows, latency));
    }

    /** Percentiles at which the latency distributions are exported (for the CDF chart). */
    static final double[] PERCENTILES = {0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 93, 95, 97, 98, 99,
        99.3, 99.5, 99.7, 99.8, 99.9, 99.95, 99.97, 99.99, 99.999, 100};

    /**
     * Per measured row, its latency at {@link #PERCENTILES}: a list of
     * {@code {"operation", "system", "connections", "depth", "percentiles": [[p, µs], ...]}}.
     */
    static String latencyJson(List<Row> rows, Map<Row, Histogram> latency) {
        StringBuilder sb = new StringBuilder("[\n");
        List<String> items = new ArrayList<>();
        for (Row r : rows) {
            Histogram h = latency.get(r);
            if (h == null || h.getTotalCount() == 0) continue;
            Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("operation", r.operation());
            m.put("system", r.system());
            m.put("connections", r.connections());
            m.put("depth", r.depth());
            List<Object> points = new ArrayList<>();
            for (double p : PERCENTILES) {
                points.add(List.of(p, Math.round(h.getValueAtPercentile(p) / 100.0) / 10.0));
            }
            m.put("percentiles", points);
            items.add("  " + Json.write(m));
        }
        return sb.append(String.join(",\n", items)).append("\n]\n").toString();
    }

    static Row best(List<Row> rows, String op, String system) {
        Row best = null;
        for (Row r : rows) {
            if (r.operation().equals(op) && r.system().equals(system) && r.supported()
                    && (best == null || r.opsPerS() > best.opsPerS())) best = r;
        }
        return best;
    }

    static Row find(List<Row> rows, String op, String system, int conns, int depth) {
        for (Row r : rows) {
            if (r.operation().equals(op) && r.system().equals(system) && r.connections() == conns
                    && r.depth() == depth && r.supported()) return r;
        }
        return null;
    }

    static String f(double d) {
        if (Double.isNaN(d)) return "–";
        return Math.abs(d) >= 100 ? String.format(Locale.ROOT, "%.0f", d) : String.format(Locale.ROOT, "%.1f", d);
    }
}
