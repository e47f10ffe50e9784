package dev.enclavekms.bench;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The benchmark's smoke test (issue 9): runs {@code Bench --smoke} as bench/run does — a
 * real daemon on a fresh SoftHSM token, every operation, every baseline (direct, p11-kit,
 * pkcs11-tool per call, the Status floor), the open loop, the restarts (start-up, audit on
 * and off, idle connections) — for a few seconds, then checks that the report is
 * well-formed and that everything that should have numbers has them. It asserts nothing
 * about speed.
 */
class BenchSmokeIT {
    static final Path REPO = Path.of(System.getProperty("enclavekms.repo", "..")).toAbsolutePath().normalize();
    static final List<String> OPS = List.of("unwrap", "generate_data_key", "encrypt_1k", "sign_p256", "sign_ed25519",
            "mix", "decrypt_batch_10k");

    @Test
    void everyOperationAndBaselineProducesNumbers_andTheReportIsWellFormed() throws Exception {
        Path out = REPO.resolve("bench/target/smoke");
        deleteTree(out);
        // Short: the socket path must fit in sun_path (108 bytes).
        Path state = Files.createTempDirectory("bench-smoke");
        try {
            List<Map<String, Object>> rows = runSmoke(out, state.resolve("state"));

            for (String op : OPS) {
                measured(rows, op, "daemon");
                measured(rows, op, "direct");
                measured(rows, op, "direct-ffm");
            }
            measured(rows, "status", "floor");
            measured(rows, "sign_p256", "process");
            measured(rows, "sign_p256", "p11-kit");
            for (String op : List.of("unwrap", "generate_data_key", "encrypt_1k", "sign_ed25519")) {
                Map<String, Object> r = only(rows, op, "p11-kit");
                assertTrue(((String) r.get("note")).startsWith("unsupported: "), r.toString());
                assertEquals(null, r.get("ops_per_s"), r.toString());
            }
            for (String op : Bench.OPEN_LOOP_OPS) {
                measured(rows, op, "daemon-open-loop");
                // the open loop's baselines at the same rate: the empty call, and audit off
                Map<String, Object> floor = only(rows, op, "floor-open-loop");
                assertEquals(only(rows, op, "daemon-open-loop").get("connections"), floor.get("connections"),
                        floor.toString());
                measured(rows, op, "floor-open-loop");
                if (select(rows, op, "daemon-audit-off").stream().anyMatch(r -> r.get("ops_per_s") != null)) {
                    measured(rows, op, "daemon-audit-off-open-loop");
                }
                for (String system : List.of("daemon-open-loop", "floor-open-loop", "daemon-open-loop-1ms")) {
                    String note = (String) only(rows, op, system).get("note");
                    assertTrue(note.matches(".*the generator wrote calls p50 \\d+ µs, p99 \\d+ µs after they were due.*"),
                            note);
                }
                // the rate-for-1-ms row is present with numbers whether or not the rate held it
                Map<String, Object> slo = only(rows, op, "daemon-open-loop-1ms");
                assertTrue(((String) slo.get("note")).contains("p99"), slo.toString());
                measured(rows, op, "daemon-open-loop-1ms");
            }
            Map<String, Object> flush = measured(rows, "audit_flush", "disk").getFirst();
            assertTrue(((String) flush.get("note")).contains("fdatasync"), flush.toString());
            for (String op : Bench.AUDIT_OPS) {
                measured(rows, op, "daemon-audit-on");
                // With the daemon's audit-off setting: numbers; without it: the reason, never silence.
                for (Map<String, Object> r : select(rows, op, "daemon-audit-off")) {
                    assertTrue(r.get("ops_per_s") != null
                            || ((String) r.get("note")).startsWith("not measured: the daemon refused"), r.toString());
                }
                assertFalse(select(rows, op, "daemon-audit-off").isEmpty(), op + " daemon-audit-off");
            }
            Map<String, Object> idle = measured(rows, "unwrap", "daemon-idle").getFirst();
            int idleConns = Mode.SMOKE.idleConns();
            assertTrue(((String) idle.get("note")).contains("with " + idleConns + " idle connections open ("
                    + idleConns + " answered a Status afterwards)"), idle.toString());
            for (String system : List.of("enclave-kmsd", "kmsctl", "pkcs11-tool")) measured(rows, "startup", system);

            // CPU per operation: present on every row, null or ≥ 0; measured wherever the row has numbers
            for (Map<String, Object> r : rows) {
                for (String k : List.of("daemon_cpu_us_per_op", "client_cpu_us_per_op")) {
                    assertTrue(r.containsKey(k), k + " missing in " + r);
                    assertTrue(r.get(k) == null || ((Number) r.get(k)).doubleValue() >= 0, k + " of " + r);
                }
            }
            for (String system : List.of("daemon", "floor", "daemon-open-loop", "daemon-open-loop-1ms",
                    "floor-open-loop", "daemon-audit-off-open-loop",
                    "daemon-audit-on", "daemon-audit-off", "daemon-idle", "daemon-pinned", "p11-kit")) {
                for (Map<String, Object> r : rows) {
                    if (!system.equals(r.get("system")) || r.get("ops_per_s") == null) continue;
                    assertNotNull(r.get("daemon_cpu_us_per_op"), "daemon_cpu_us_per_op of " + r);
                    assertNotNull(r.get("client_cpu_us_per_op"), "client_cpu_us_per_op of " + r);
                }
            }
            for (Map<String, Object> r : select(rows, "unwrap", "direct")) {
                assertNotNull(r.get("client_cpu_us_per_op"), "in-process CPU of " + r);
                assertEquals(null, r.get("daemon_cpu_us_per_op"), r.toString());
            }

            // the pinned capacity comparison: numbers where two CPUs and taskset exist, else the reason
            String cannotPin = Pinning.unavailable();
            for (String op : PinnedCapacity.OPS) {
                for (String system : List.of("daemon-pinned", "direct-pinned")) {
                    if (cannotPin == null) {
                        Map<String, Object> r = measured(rows, op, system).getFirst();
                        assertNotNull(r.get("client_cpu_us_per_op"), r.toString());
                        if (system.equals("daemon-pinned")) assertNotNull(r.get("daemon_cpu_us_per_op"), r.toString());
                    } else {
                        Map<String, Object> r = only(rows, op, system);
                        assertTrue(((String) r.get("note")).startsWith("skipped: "), r.toString());
                    }
                }
            }

            // idle-connection memory on a freshly started daemon
            Map<String, Object> fresh = only(rows, "idle_connections", "daemon-fresh");
            assertEquals(idleConns, ((Number) fresh.get("connections")).intValue(), fresh.toString());
            assertTrue(((String) fresh.get("note")).contains("(" + idleConns + " answered)"), fresh.toString());
            for (String k : List.of("rss_kib_before", "rss_kib_open", "rss_kib_after_status")) {
                assertTrue(((Number) fresh.get(k)).longValue() > 0, k + " of " + fresh);
            }
            for (String k : List.of("rss_kib_per_connection", "rss_kib_per_connection_after_status")) {
                assertTrue(fresh.get(k) instanceof Number, k + " of " + fresh);
            }
            for (String k : List.of("heap_used_kib_before", "heap_used_kib_open")) {
                assertTrue(fresh.containsKey(k) && (fresh.get(k) == null || fresh.get(k) instanceof Number),
                        k + " of " + fresh);
            }

            String md = Files.readString(out.resolve("latest.md"));
            assertTrue(md.contains("## Targets (issue 9), judged on this run"), md);
            assertTrue(md.contains("## CPU per operation"), md);
            assertTrue(md.contains("unwrap: best daemon throughput vs best direct through the FFM binding"), md);
            assertTrue(md.contains("- idle connections on a fresh daemon: "), md);
            for (Map<String, Object> r : rows) {
                assertTrue(md.contains("| " + r.get("operation") + " | " + r.get("system") + " | "), r.toString());
            }
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> cdf = (List<Map<String, Object>>) (List<?>) Json.parse(
                    Files.readString(out.resolve("latest-latency.json")));
            long withNumbers = rows.stream().filter(r -> r.get("ops_per_s") != null).count();
            assertEquals(withNumbers, cdf.size(), "a latency distribution for every measured row");
            for (Map<String, Object> c : cdf) {
                @SuppressWarnings("unchecked")
                List<List<Number>> points = (List<List<Number>>) c.get("percentiles");
                assertEquals(Report.PERCENTILES.length, points.size(), c.toString());
                for (int i = 1; i < points.size(); i++) {
                    assertTrue(points.get(i).get(1).doubleValue() >= points.get(i - 1).get(1).doubleValue(),
                            "latency never decreases with the percentile: " + c);
                }
            }
        } finally {
            deleteTree(state);
        }
    }

    private static List<Map<String, Object>> runSmoke(Path out, Path state) throws Exception {
        String cp = REPO.resolve("bench/target/classes") + ":"
                + Files.readString(REPO.resolve("bench/target/classpath.txt")).strip();
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder pb = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp", cp,
                "dev.enclavekms.bench.Bench", "--smoke", "--repo", REPO.toString(), "--out", out.toString())
                .directory(REPO.toFile()).redirectErrorStream(true);
        Files.createDirectories(out);
        Path log = out.resolve("bench.log");
        pb.redirectOutput(log.toFile());
        pb.environment().remove("ENCLAVE_KMS_SOCKET");
        pb.environment().put("BENCH_STATE_DIR", state.toString());
        pb.environment().put("SOFTHSM2_CONF", state.resolve("softhsm2.conf").toString());
        pb.environment().put("P11_KIT_SERVER_ADDRESS", "unix:path=" + state.resolve("p11-kit.sock"));
        Process p = pb.start();
        try {
            if (!p.waitFor(300, TimeUnit.SECONDS)) fail("bench --smoke still running after 300 s:\n" + tail(log));
            assertEquals(0, p.exitValue(), "bench --smoke failed:\n" + tail(log));
        } finally {
            // the daemon, p11-kit server or pkcs11-tool it may have left behind on failure
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> rows = (List<Map<String, Object>>) (List<?>) Json.parse(
                Files.readString(out.resolve("latest.json")));
        for (Map<String, Object> r : rows) {
            for (String k : List.of("operation", "system", "connections", "depth", "ops_per_s", "p50_us", "p99_us",
                    "p999_us")) {
                assertTrue(r.containsKey(k), k + " missing in " + r);
            }
        }
        return rows;
    }

    /** The rows of op on system; at least one, each with ops/s and the three percentiles above zero. */
    private static List<Map<String, Object>> measured(List<Map<String, Object>> rows, String op, String system) {
        List<Map<String, Object>> found = select(rows, op, system);
        assertFalse(found.isEmpty(), "no row for " + op + " on " + system);
        for (Map<String, Object> r : found) {
            for (String k : List.of("ops_per_s", "p50_us", "p99_us", "p999_us")) {
                assertNotNull(r.get(k), k + " of " + r);
                assertTrue(((Number) r.get(k)).doubleValue() > 0, k + " of " + r);
            }
        }
        return found;
    }

    private static Map<String, Object> only(List<Map<String, Object>> rows, String op, String system) {
        List<Map<String, Object>> found = select(rows, op, system);
        assertEquals(1, found.size(), op + " on " + system + ": " + found);
        return found.getFirst();
    }

    private static List<Map<String, Object>> select(List<Map<String, Object>> rows, String op, String system) {
        List<Map<String, Object>> found = new ArrayList<>();
        for (Map<String, Object> r : rows) {
            if (op.equals(r.get("operation")) && system.equals(r.get("system"))) found.add(r);
        }
        return found;
    }

    private static String tail(Path log) throws Exception {
        List<String> lines = Files.exists(log) ? Files.readAllLines(log) : List.of();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    }

    private static void deleteTree(Path p) throws Exception {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path f : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        }
    }
}
