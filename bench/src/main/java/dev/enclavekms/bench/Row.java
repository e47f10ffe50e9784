package dev.enclavekms.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One line of {@code bench/results/latest.json}: an operation on one system at one
 * concurrency. {@code opsPerS} is the median over the repetitions, {@code opsPerSMin}
 * and {@code opsPerSMax} their spread; latencies come from the histogram of all
 * repetitions together. For {@code decrypt_batch_10k} ops are data keys, latency is per call.
 *
 * <p>{@code daemonCpuUsPerOp}: CPU µs per op of the serving process outside the bench (the
 * daemon; the p11-kit server); {@code clientCpuUsPerOp}: CPU µs per op of the bench JVM —
 * the load generator for daemon rows, the whole in-process work for direct rows. NaN
 * (JSON {@code null}) where not measured. {@code extra}: further fields of special rows.
 */
public record Row(String operation, String system, int connections, int depth, double opsPerS,
                  double p50Us, double p99Us, double p999Us, double opsPerSMin, double opsPerSMax,
                  int repetitions, long samples, String note, double daemonCpuUsPerOp, double clientCpuUsPerOp,
                  Map<String, Object> extra) {

    /** A row without CPU figures (those are NaN: {@code null} in the JSON). */
    public Row(String operation, String system, int connections, int depth, double opsPerS, double p50Us,
               double p99Us, double p999Us, double opsPerSMin, double opsPerSMax, int repetitions, long samples,
               String note) {
        this(operation, system, connections, depth, opsPerS, p50Us, p99Us, p999Us, opsPerSMin, opsPerSMax,
                repetitions, samples, note, Double.NaN, Double.NaN, Map.of());
    }

    /** This row with further JSON fields (e.g. the idle-connection memory figures). */
    public Row withExtra(Map<String, Object> more) {
        Map<String, Object> m = new LinkedHashMap<>(extra);
        m.putAll(more);
        return new Row(operation, system, connections, depth, opsPerS, p50Us, p99Us, p999Us, opsPerSMin, opsPerSMax,
                repetitions, samples, note, daemonCpuUsPerOp, clientCpuUsPerOp, m);
    }

    /** A system that cannot do the operation (e.g. p11-kit without AES-GCM): no numbers. */
    public static Row unsupported(String operation, String system, String why) {
        return noNumbers(operation, system, "unsupported: " + why);
    }

    /** A row without numbers, with the reason in {@code note}. */
    public static Row noNumbers(String operation, String system, String note) {
        return new Row(operation, system, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                Double.NaN, Double.NaN, 0, 0, note);
    }

    /** A setting that was run but failed (an error reply): no numbers, the error as the note. */
    public static Row failed(String operation, String system, int connections, int depth, String error) {
        String e = error == null ? "?" : error.length() > 400 ? error.substring(0, 400) + "…" : error;
        return new Row(operation, system, connections, depth, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                Double.NaN, Double.NaN, 0, 0, "failed: " + e);
    }

    public boolean supported() {
        return !Double.isNaN(opsPerS);
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("operation", operation);
        m.put("system", system);
        m.put("connections", connections);
        m.put("depth", depth);
        m.put("ops_per_s", num(opsPerS));
        m.put("p50_us", num(p50Us));
        m.put("p99_us", num(p99Us));
        m.put("p999_us", num(p999Us));
        m.put("ops_per_s_min", num(opsPerSMin));
        m.put("ops_per_s_max", num(opsPerSMax));
        m.put("repetitions", repetitions);
        m.put("samples", samples);
        m.put("daemon_cpu_us_per_op", num(daemonCpuUsPerOp));
        m.put("client_cpu_us_per_op", num(clientCpuUsPerOp));
        m.putAll(extra);
        if (note != null) m.put("note", note);
        return m;
    }

    private static Object num(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) return null;
        return Math.round(d * 10) / 10.0;
    }
}
