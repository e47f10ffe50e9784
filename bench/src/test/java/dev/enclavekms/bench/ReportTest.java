package dev.enclavekms.bench;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The report writer only: the benchmark itself never runs under mvn verify. */
class ReportTest {
    private final List<Row> rows = List.of(
            new Row("status", "floor", 1, 1, 10000, 80, 150, 300, 9000, 11000, 3, 30000, null),
            new Row("unwrap", "daemon", 4, 4, 20000, 200, 900, 2000, 19000, 21000, 3, 60000, null),
            new Row("unwrap", "daemon", 1, 1, 8000, 120, 400, 900, 7000, 9000, 3, 24000, null),
            new Row("unwrap", "direct", 1, 1, 24000, 40, 90, 200, 23000, 25000, 3, 72000, null),
            Row.unsupported("unwrap", "p11-kit", "no AES-GCM"));

    @Test
    void jsonIsAListOfRowsWithTheRequiredFields() throws Exception {
        @SuppressWarnings("unchecked")
        List<Object> parsed = (List<Object>) Json.parse(Report.json(rows));
        assertEquals(rows.size(), parsed.size());
        for (Object o : parsed) {
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) o;
            for (String k : List.of("operation", "system", "connections", "depth", "ops_per_s", "p50_us", "p99_us",
                    "p999_us")) {
                assertTrue(m.containsKey(k), k + " in " + m);
            }
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> unsupported = (Map<String, Object>) parsed.getLast();
        assertNull(unsupported.get("ops_per_s"));
        assertTrue(((String) unsupported.get("note")).startsWith("unsupported"));
    }

    @Test
    void cpuPerOperationIsInTheJsonAndTheMarkdown() throws Exception {
        List<Row> cpu = List.of(
                new Row("unwrap", "daemon", 16, 8, 20000, 200, 900, 2000, 19000, 21000, 3, 60000, null, 64, 8,
                        Map.of()),
                new Row("unwrap", "daemon", 1, 1, 8000, 120, 400, 900, 7000, 9000, 3, 24000, null, 150, 20, Map.of()),
                new Row("unwrap", "direct", 1, 1, 50000, 18, 30, 90, 49000, 51000, 3, 150000, null, Double.NaN, 16,
                        Map.of()),
                new Row("unwrap", "daemon-pinned", 16, 8, 12000, 900, 2000, 3000, 11000, 13000, 3, 36000, null, 70,
                        9, Map.of()),
                new Row("unwrap", "direct-pinned", 1, 1, 48000, 19, 30, 90, 47000, 49000, 3, 144000, null, Double.NaN,
                        17, Map.of()));
        @SuppressWarnings("unchecked")
        Map<String, Object> first = (Map<String, Object>) ((List<Object>) Json.parse(Report.json(cpu))).getFirst();
        assertEquals(64.0, ((Number) first.get("daemon_cpu_us_per_op")).doubleValue());
        assertEquals(8.0, ((Number) first.get("client_cpu_us_per_op")).doubleValue());
        @SuppressWarnings("unchecked")
        Map<String, Object> direct = (Map<String, Object>) ((List<Object>) Json.parse(Report.json(cpu))).get(2);
        assertTrue(direct.containsKey("daemon_cpu_us_per_op"));
        assertNull(direct.get("daemon_cpu_us_per_op"));
        String md = Report.markdown(cpu, Map.of("mode", "test"));
        // daemon at its best (16×8) 64 µs, generator 8, daemon 1×1 150, direct 16: 4.0×; pinned 12000 / 48000
        assertTrue(md.contains("| unwrap | 64.0 (16×8) | 8.0 | 150 | 16.0 | 4.0× | 12000 (16×8) vs 48000 = 0.25× |"), md);
        assertTrue(md.contains("daemon on CPU 0 (generator on CPU 1) ≥ 1.0× direct on CPU 0 | 12000/s (16×8) vs 48000/s"
                + " (1×1) = 0.25× | **missed** |"), md);
    }

    @Test
    void markdownHasTheDaemonOverDirectRatio() {
        String md = Report.markdown(rows, Map.of("mode", "test"));
        // best daemon 20000 (4×4) over best direct 24000 = 0.83; gap = 120 - 40 - 80 = 0
        assertTrue(md.contains("| unwrap | 20000 (4×4) | 24000 (1) | 0.83 | 120 | 40.0 | 80.0 | 0.0 |"), md);
    }
}
