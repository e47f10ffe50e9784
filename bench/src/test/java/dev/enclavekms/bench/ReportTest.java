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
    void markdownHasTheDaemonOverDirectRatio() {
        String md = Report.markdown(rows, Map.of("mode", "test"));
        // best daemon 20000 (4×4) over best direct 24000 = 0.83; gap = 120 - 40 - 80 = 0
        assertTrue(md.contains("| unwrap | 20000 (4×4) | 24000 (1) | 0.83 | 120 | 40.0 | 80.0 | 0.0 |"), md);
    }
}
