package dev.enclavekms.audit;

import dev.enclavekms.json.JsonException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The one encoding of a record, its hash, and the file names, pinned. */
class CanonicalJsonTest {

    @Test
    void write_membersSortedNoWhitespaceMinimalEscapes() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("z", 1L);
        m.put("a", "x\"y\\z\n\t\u0001é€😀");
        m.put("M", Map.of("b", true, "a", false));
        m.put("list", List.of(3L, "s"));

        assertEquals("{\"M\":{\"a\":false,\"b\":true},\"a\":\"x\\\"y\\\\z\\n\\t\\u0001é€😀\",\"list\":[3,\"s\"],\"z\":1}",
                CanonicalJson.write(m));
    }

    @Test
    void write_escapesAfterAPlainRun_andPlainStringsWhole() {
        // The plain run is copied in one piece: what follows it must still be escaped,
        // and a string with nothing to escape must come out unchanged.
        assertEquals("[\"plain-é€\",\"ab\\\"\",\"ab\\\\c\",\"a\\nb\",\"ab\\u001f\",\"a😀b\",\"\"]",
                CanonicalJson.write(List.of("plain-é€", "ab\"", "ab\\c", "a\nb", "ab\u001f", "a😀b", "")));
        assertThrows(IllegalArgumentException.class, () -> CanonicalJson.write(Map.of("a", "abc\udc00")));
        assertThrows(IllegalArgumentException.class, () -> CanonicalJson.write(Map.of("a", "abc\ud800x")));
    }

    @Test
    void write_nullFloatOrLoneSurrogate_refused() {
        Map<String, Object> withNull = new LinkedHashMap<>();
        withNull.put("a", null);
        assertThrows(IllegalArgumentException.class, () -> CanonicalJson.write(withNull));
        assertThrows(IllegalArgumentException.class, () -> CanonicalJson.write(Map.of("a", 1.5)));
        assertThrows(IllegalArgumentException.class, () -> CanonicalJson.write(Map.of("a", "\ud800")));
        assertThrows(IllegalArgumentException.class, () -> CanonicalJson.write(Map.of("a", "x\udc00")));
    }

    @Test
    void parseCanonical_writeOfParse_givesTheLineBack() throws Exception {
        String line = "{\"a\":\"é\\u001f\",\"b\":[1,{\"c\":-2}],\"d\":true}";
        assertEquals(line, CanonicalJson.write(CanonicalJson.parseCanonical(line)));
    }

    @Test
    void parseCanonical_sameValueOtherSpelling_refused() {
        for (String other : List.of(
                "{\"b\":1,\"a\":2}",          // members out of order
                "{\"a\": 2}",                 // whitespace
                "{\"a\":\"\\u0041\"}",        // an escape where none is needed
                "{\"a\":\"\\u001F\"}",        // upper-case hex
                "{\"a\":1.0}",                // a float
                "{\"a\":null}",               // null
                "[1]")) {                     // not an object
            assertThrows(JsonException.class, () -> CanonicalJson.parseCanonical(other), other);
        }
    }

    @Test
    void hash_pinnedVector() {
        // docs/audit.md shows this record: if this changes, every existing log stops verifying.
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("v", 1L);
        r.put("seq", 1L);
        r.put("time", "2026-01-02T03:04:05.000006Z");
        r.put("type", "start");
        r.put("prev", AuditRecords.GENESIS);
        assertEquals("{\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"seq\":1,"
                + "\"time\":\"2026-01-02T03:04:05.000006Z\",\"type\":\"start\",\"v\":1}", CanonicalJson.write(r));
        assertEquals(AuditRecords.hash(r), AuditRecords.hash(withHash(r, "anything")), "hash ignores the hash field");
        assertEquals(HASH_OF_PINNED_RECORD, AuditRecords.hash(r));
    }

    /** SHA-256 of the canonical line above (computed with sha256sum, independently of this code). */
    private static final String HASH_OF_PINNED_RECORD = "ff6ca9ef93070e29c1be32509137fe904b6feea2bcdeec6c435fa467503a04dd";

    private static Map<String, Object> withHash(Map<String, Object> r, String hash) {
        Map<String, Object> m = new LinkedHashMap<>(r);
        m.put("hash", hash);
        return m;
    }

    @Test
    void time_microsecondsUtcFixedWidth() {
        assertEquals("2026-01-02T03:04:05.000000Z", AuditRecords.time(Instant.parse("2026-01-02T03:04:05Z")));
        assertEquals("2026-01-02T03:04:05.123456Z", AuditRecords.time(Instant.parse("2026-01-02T03:04:05.123456789Z")));
    }

    @Test
    void fileName_twentyDigitsAndBack() {
        assertEquals("audit-00000000000000000042.jsonl", AuditRecords.fileName(42));
        assertEquals(42L, AuditRecords.firstSeqOf(java.nio.file.Path.of("/x/audit-00000000000000000042.jsonl")).orElseThrow());
        assertEquals(java.util.Optional.empty(), AuditRecords.firstSeqOf(java.nio.file.Path.of("audit-42.jsonl")));
    }
}
