package dev.enclavekms.bench.shard;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs the shard benchmark in its tiny mode (a 2 MiB file, one round, 3–4 s on a quiet machine) and checks
 * that the report is well-formed and that every system produced numbers. The numbers
 * themselves are not judged (no JIT warm-up, a loaded machine): only that each
 * measurement ran, decrypted to the right bytes (the benchmark compares them) and was
 * reported. openssl and age are required, not skipped: CI installs them through
 * bin/lib.sh ensure_packages, and a missing tool fails here with the reason the
 * benchmark recorded.
 */
class ShardBenchSmokeTest {

    @Test
    void tinyRunReportsEverySystem(@TempDir Path dir) throws Exception {
        ShardReport report = new ShardBench(ShardBench.Mode.TINY, dir).run();

        List<String> unavailable = new ArrayList<>();
        for (ShardRow r : report.rows()) {
            if (!r.available()) unavailable.add(r.system() + " " + r.operation() + ": " + r.unavailable());
        }
        if (!unavailable.isEmpty()) {
            fail("systems without numbers (install the packages with bin/lib.sh ensure_packages): " + unavailable);
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(report.json());
        @SuppressWarnings("unchecked")
        Map<String, Object> info = (Map<String, Object>) json.get("info");
        for (String k : List.of("mode", "started", "finished", "load_average_start", "load_average_end",
                "file_bytes", "filesystem", "java", "openssl", "age", "tink")) {
            assertNotNull(info.get(k), "info." + k);
        }
        assertEquals("tiny", info.get("mode"));

        @SuppressWarnings("unchecked")
        List<Map<String, Object>> rows = (List<Map<String, Object>>) json.get("rows");
        List<String> expected = List.of(
                "aes_256_gcm_16k/openssl/1", "aes_256_gcm_16k/openssl/2",
                "aes_256_gcm_16k_elapsed/openssl/1", "aes_256_gcm_16k_elapsed/openssl/2", "copy/plain/1",
                "encrypt/shard/1", "encrypt_file/shard/1", "encrypt/shard/2", "encrypt_file/shard/2",
                "encrypt/tink/1", "encrypt/age/1",
                "decrypt/shard/1", "decrypt_file/shard/1", "decrypt/shard/2", "decrypt_file/shard/2",
                "decrypt/tink/1", "decrypt/age/1",
                "encrypt_memory/shard/1", "encrypt_memory/shard/2", "encrypt_memory/tink/1",
                "decrypt_memory/shard/1", "decrypt_memory/shard/2", "decrypt_memory/tink/1",
                "encrypt_buffer/shard/1", "encrypt_buffer/shard/2", "decrypt_buffer/shard/1", "decrypt_buffer/shard/2",
                "read_slice_heap/plain/1", "read_slice_heap/shard/1", "read_slice_heap/shard/2",
                "read_slice_heap/tink/1",
                "read_slice_direct/plain/1", "read_slice_direct/shard/1", "read_slice_direct/shard/2",
                "read_slice_direct/tink/1");
        List<String> seen = new ArrayList<>();
        for (Map<String, Object> r : rows) {
            String id = r.get("operation") + "/" + r.get("system") + "/" + r.get("threads");
            seen.add(id);
            double mibPerS = ((Number) r.get("mib_per_s")).doubleValue();
            double median = ((Number) r.get("median_s")).doubleValue();
            double min = ((Number) r.get("min_s")).doubleValue();
            double max = ((Number) r.get("max_s")).doubleValue();
            assertTrue(mibPerS > 0 && Double.isFinite(mibPerS), id + " MiB/s " + mibPerS);
            assertTrue(min > 0 && min <= median && median <= max, id + " min ≤ median ≤ max");
            assertTrue(((Number) r.get("repetitions")).intValue() >= 1, id + " repetitions");
            if (!"openssl".equals(r.get("system"))) {
                // measured; may be 0 for a millisecond's work where the clock counts in ticks
                assertTrue(r.get("cpu_median_s") instanceof Number c && c.doubleValue() >= 0, id + " CPU time");
            }
        }
        assertEquals(expected, seen);

        @SuppressWarnings("unchecked")
        List<Map<String, Object>> ratios = (List<Map<String, Object>>) json.get("ratios");
        assertTrue(ratios.size() >= 10, "ratios: " + ratios.size());
        int withTarget = 0;
        for (Map<String, Object> q : ratios) {
            Object v = q.get("value");
            if (v == null && String.valueOf(q.get("name")).endsWith("(CPU time)")) {
                // A tiny run's work can fall below one tick of the process CPU clock (10 ms
                // here), and then there is no CPU-time ratio to report. Wall-clock ratios,
                // checked below, always have one.
                continue;
            }
            assertTrue(v instanceof Number n && n.doubleValue() > 0 && Double.isFinite(n.doubleValue()),
                    q.get("name") + " has a value: " + v);
            if (q.get("target") != null) {
                withTarget++;
                assertTrue(q.get("met") instanceof Boolean, q.get("name") + " says whether it met its target");
            }
        }
        // issue 8, item 5: 1 and 2 threads, encrypt and decrypt, on files (channel API and file
        // to file) and in memory; file to file also against the plain copy (docs/decisions.md);
        // slices on 1 and 2 threads, heap and direct; buffer to buffer on 1 and 2 threads
        assertEquals(24, withTarget, "the targets of issue 8, item 5");

        String md = report.markdown();
        assertTrue(md.contains("## Ratios (within this run)") && md.contains("| encrypt | shard | 2 |"), md);
    }

    @Test
    void opensslMachineReadableTotalsAreParsed() throws Exception {
        String one = "+DT:AES-256-GCM:3:16384\n+R:286954:AES-256-GCM:0.930000\n+H:16384\n+F:25:AES-256-GCM:5055327243.01\n";
        assertEquals(5055327243.01, OpensslSpeed.parse(one), 1e-3);
        String multi = "Forked child 0\nGot: +F:25:AES-256-GCM:2909388800.00 from 0\n"
                + "Got: +F:25:AES-256-GCM:2644049920.00 from 1\n+F:25:AES-256-GCM:5553438720.00\n";
        assertEquals(5553438720.00, OpensslSpeed.parse(multi), 1e-3);
        try {
            OpensslSpeed.parse("Invalid command 'speed'\n");
            fail("no total must be an error");
        } catch (java.io.IOException expected) {
            assertTrue(expected.getMessage().contains("no AES-256-GCM total"));
        }
    }
}
