package dev.enclavekms.bench.shard;

import dev.enclavekms.json.Json;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The rows of one run, the ratios issue 8 asks for (each taken within the run), and the
 * targets they are held against. {@code shards.json}: {@code {"info": {...}, "rows":
 * [...], "ratios": [...]}}; {@code shards.md}: the same as tables.
 */
record ShardReport(Map<String, Object> info, List<ShardRow> rows) {

    /**
     * {@code value = numerator / denominator} of two rows' speeds (MiB/s) or, for slices,
     * of their median times; {@code target} null when the ratio is for information;
     * {@code met} null when unmeasured or without a target.
     */
    record Ratio(String name, Double value, String target, Boolean met) {
        Map<String, Object> toJson() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", name);
            m.put("value", value);
            m.put("target", target);
            m.put("met", met);
            return m;
        }
    }

    ShardRow find(String operation, String system, int threads) {
        for (ShardRow r : rows) {
            if (r.operation().equals(operation) && r.system().equals(system) && r.threads() == threads) return r;
        }
        return null;
    }

    /**
     * Issue 8's targets, wall clock against {@code openssl speed -elapsed} (same clock, and
     * both slowed alike by a loaded machine); for one thread also CPU time against openssl's
     * default figure (user CPU time), which a loaded machine hardly moves. The rest is for
     * information.
     */
    List<Ratio> ratios() {
        List<Ratio> out = new ArrayList<>();
        ShardRow ssl1 = find("aes_256_gcm_16k", "openssl", 1);
        ShardRow ssl2 = find("aes_256_gcm_16k", "openssl", 2);
        ShardRow wall1 = find("aes_256_gcm_16k_elapsed", "openssl", 1);
        ShardRow wall2 = find("aes_256_gcm_16k_elapsed", "openssl", 2);
        for (String op : List.of("encrypt", "decrypt", "encrypt_memory", "decrypt_memory")) {
            ShardRow s1 = find(op, "shard", 1);
            ShardRow s2 = find(op, "shard", 2);
            out.add(speed(op + " 1 thread / openssl 1 process (wall clock)", s1, wall1, 0.8));
            out.add(speed(op + " 2 threads / openssl 1 process (wall clock)", s2, wall1, 1.6));
            out.add(cpuSpeed(op + " 1 thread / openssl 1 process (CPU time)", s1, ssl1, null));
            out.add(speed(op + " 2 threads / openssl -multi 2 (wall clock)", s2, wall2, null));
            out.add(speed(op + " 1 thread / Tink", s1, find(op, "tink", 1), null));
            if (!op.endsWith("_memory")) {
                out.add(speed(op + " 1 thread / age", s1, find(op, "age", 1), null));
                out.add(speed(op + " 1 thread / plain copy", s1, find("copy", "plain", 1), null));
            }
        }
        // File to file (docs/decisions.md, "Shards: how the whole-file targets are judged"): the
        // issue's targets against openssl, and the same file operations against a plain copy of
        // the file, the I/O floor of this machine, at 0.8.
        ShardRow copy = find("copy", "plain", 1);
        for (String op : List.of("encrypt_file", "decrypt_file")) {
            ShardRow s1 = find(op, "shard", 1);
            ShardRow s2 = find(op, "shard", 2);
            out.add(speed(op + " 1 thread / openssl 1 process (wall clock)", s1, wall1, 0.8));
            out.add(speed(op + " 2 threads / openssl 1 process (wall clock)", s2, wall1, 1.6));
            out.add(cpuSpeed(op + " 1 thread / openssl 1 process (CPU time)", s1, ssl1, null));
            out.add(speed(op + " 1 thread / plain copy", s1, copy, 0.8));
            out.add(speed(op + " 2 threads / plain copy", s2, copy, 0.8));
            out.add(speed(op + " 2 threads / 1 thread", s2, s1, null));
        }
        // Buffer to buffer: the in-memory API (no channel, no copy); the same targets.
        for (String op : List.of("encrypt_buffer", "decrypt_buffer")) {
            ShardRow s1 = find(op, "shard", 1);
            ShardRow s2 = find(op, "shard", 2);
            out.add(speed(op + " 1 thread / openssl 1 process (wall clock)", s1, wall1, 0.8));
            out.add(speed(op + " 2 threads / openssl 1 process (wall clock)", s2, wall1, 1.6));
            out.add(cpuSpeed(op + " 1 thread / openssl 1 process (CPU time)", s1, ssl1, null));
            out.add(speed(op + " 2 threads / openssl -multi 2 (wall clock)", s2, wall2, null));
        }
        out.add(speed("plain copy / openssl 1 process (wall clock)", find("copy", "plain", 1), wall1, null));
        out.add(speed("openssl -multi 2 / openssl 1 process (wall clock)", wall2, wall1, null));
        for (String kind : List.of("heap", "direct")) {
            String op = "read_slice_" + kind;
            ShardRow plain = find(op, "plain", 1);
            out.add(time("slice, " + kind + " buffer: shard / plain read", find(op, "shard", 1), plain, 2.0));
            out.add(cpuTime("slice, " + kind + " buffer: shard / plain read (CPU time)", find(op, "shard", 1), plain));
            out.add(time("slice, " + kind + " buffer, 2 threads: shard / plain read", find(op, "shard", 2), plain, 2.0));
            out.add(cpuTime("slice, " + kind + " buffer, 2 threads (both threads' CPU): shard / plain read (CPU time)",
                    find(op, "shard", 2), plain));
            out.add(time("slice, " + kind + " buffer: Tink / plain read", find(op, "tink", 1), plain, null));
        }
        return out;
    }

    /** Speed per CPU-second a/b; {@code b} is openssl, whose rate is already per user-CPU second. */
    private static Ratio cpuSpeed(String name, ShardRow a, ShardRow b, Double atLeast) {
        if (a == null || b == null || !a.available() || !b.available() || Double.isNaN(a.mibPerCpuS())) {
            return new Ratio(name, null, null, null);
        }
        return new Ratio(name, a.mibPerCpuS() / b.mibPerS(), null, null);
    }

    private static Ratio cpuTime(String name, ShardRow a, ShardRow b) {
        if (a == null || b == null || a.cpuSeconds() == null || b.cpuSeconds() == null
                || !(b.cpuSeconds().median() > 0)) {
            // Not measured, or below the CPU clock's resolution (10 ms ticks here).
            return new Ratio(name, null, null, null);
        }
        return new Ratio(name, a.cpuSeconds().median() / b.cpuSeconds().median(), null, null);
    }

    /** Speed ratio a/b (higher is better), against a minimum. */
    private static Ratio speed(String name, ShardRow a, ShardRow b, Double atLeast) {
        String target = atLeast == null ? null : "≥ " + atLeast;
        if (a == null || b == null || !a.available() || !b.available()) return new Ratio(name, null, target, null);
        double v = a.mibPerS() / b.mibPerS();
        return new Ratio(name, v, target, atLeast == null ? null : v >= atLeast);
    }

    /** Time ratio a/b of medians (lower is better), against a maximum. */
    private static Ratio time(String name, ShardRow a, ShardRow b, Double under) {
        String target = under == null ? null : "< " + under;
        if (a == null || b == null || !a.available() || !b.available()) return new Ratio(name, null, target, null);
        double v = a.seconds().median() / b.seconds().median();
        return new Ratio(name, v, target, under == null ? null : v < under);
    }

    String json() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("info", info);
        List<Object> r = new ArrayList<>();
        for (ShardRow row : rows) r.add(row.toJson());
        m.put("rows", r);
        List<Object> q = new ArrayList<>();
        for (Ratio x : ratios()) q.add(x.toJson());
        m.put("ratios", q);
        return Json.write(m) + "\n";
    }

    String markdown() {
        StringBuilder sb = new StringBuilder("# enclave-kms shard benchmark (issue 8)\n\n");
        info.forEach((k, v) -> sb.append("- ").append(k).append(": ").append(v).append('\n'));
        sb.append("\n## Ratios (within this run)\n\n| ratio | value | target | met |\n|---|---|---|---|\n");
        for (Ratio r : ratios()) {
            sb.append("| ").append(r.name()).append(" | ").append(r.value() == null ? "–" : f2(r.value()))
                    .append(" | ").append(r.target() == null ? "" : r.target())
                    .append(" | ").append(r.met() == null ? "" : r.met() ? "yes" : "**no**").append(" |\n");
        }
        sb.append("\n## Rows\n\n| operation | system | threads | MiB/s (median) | min–max MiB/s | median ms | "
                + "min–max ms | p90 ms | MiB per CPU-s | reps | note |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (ShardRow r : rows) {
            sb.append("| ").append(r.operation()).append(" | ").append(r.system()).append(" | ").append(r.threads());
            if (r.available()) {
                Samples s = r.seconds();
                sb.append(" | ").append(f0(r.mibPerS()))
                        .append(" | ").append(f0(r.bytes() / s.max() / (1 << 20))).append("–")
                        .append(f0(r.bytes() / s.min() / (1 << 20)))
                        .append(" | ").append(f2(s.median() * 1e3))
                        .append(" | ").append(f2(s.min() * 1e3)).append("–").append(f2(s.max() * 1e3))
                        .append(" | ").append(f2(s.percentile(90) * 1e3))
                        .append(" | ").append(Double.isNaN(r.mibPerCpuS()) ? "–" : f0(r.mibPerCpuS()))
                        .append(" | ").append(s.count())
                        .append(" | ").append(r.note() == null ? "" : r.note());
            } else {
                sb.append(" | – | – | – | – | – | – | 0 | unavailable: ").append(r.unavailable());
            }
            sb.append(" |\n");
        }
        return sb.toString();
    }

    private static String f0(double v) {
        return String.format(Locale.ROOT, "%.0f", v);
    }

    private static String f2(double v) {
        return String.format(Locale.ROOT, "%.2f", v);
    }
}
