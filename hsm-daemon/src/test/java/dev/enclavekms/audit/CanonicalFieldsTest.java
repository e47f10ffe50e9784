package dev.enclavekms.audit;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The writer's encoding of a record (its own fields encoded by the caller, the chain fields
 * added by the writer) gives exactly the line and hash that canonicalising the whole record
 * gives: the format (docs/audit.md) is defined by {@link CanonicalJson} and {@link AuditRecords#hash}.
 */
class CanonicalFieldsTest {
    /** Keys that sort before, between and after the chain fields hash, prev, seq, time, v. */
    private static final List<String> KEYS = List.of("A", "a", "conn", "context", "group", "h", "has", "hasg", "hash0",
            "hasi", "key", "method", "outcome", "p", "pre", "prev0", "prevx", "q", "se", "seq0", "seqa", "session",
            "stream", "t", "tenant", "tim", "time0", "timf", "token_id", "type", "u", "user", "v0", "va", "valid",
            "version", "w", "z", "é", "€", "😀");

    @Test
    void seal_sameLineAndHashAsTheWholeRecordCanonicalised() {
        Random rnd = new Random(42);
        for (int n = 0; n < 3000; n++) {
            Map<String, Object> fields = new LinkedHashMap<>();
            int count = rnd.nextInt(KEYS.size() + 1);
            for (int i = 0; i < count; i++) {
                fields.put(KEYS.get(rnd.nextInt(KEYS.size())), value(rnd, 0));
            }
            long seq = rnd.nextInt(3) == 0 ? 1 : Math.abs(rnd.nextLong() >> rnd.nextInt(63));
            String time = AuditRecords.time(Instant.ofEpochSecond(rnd.nextInt(2_000_000_000), rnd.nextInt(1_000_000_000)));
            String prev = rnd.nextBoolean() ? AuditRecords.GENESIS : hex(rnd);

            CanonicalFields.Line line = CanonicalFields.of(fields).seal(seq, time, prev);

            Map<String, Object> record = new HashMap<>(fields);
            record.put("v", AuditRecords.FORMAT_VERSION);
            record.put("seq", seq);
            record.put("time", time);
            record.put("prev", prev);
            String hash = AuditRecords.hash(record);
            record.put("hash", hash);
            assertEquals(hash, line.hash(), () -> "fields " + fields);
            assertEquals(CanonicalJson.write(record) + "\n", new String(line.bytes(), StandardCharsets.UTF_8));
            assertEquals(seq, line.seq());
            assertEquals(time, line.time());
        }
    }

    @Test
    void seal_again_sameBytes() {
        // A record is sealed a second time when the file rotates under it.
        CanonicalFields f = CanonicalFields.of(Map.of("type", "call", "method", "m", "context", Map.of("a", "b")));
        CanonicalFields.Line first = f.seal(5, "2026-11-22T18:00:00.000001Z", AuditRecords.GENESIS);
        CanonicalFields.Line other = f.seal(6, "2026-11-22T18:00:00.000002Z", first.hash());
        CanonicalFields.Line again = f.seal(5, "2026-11-22T18:00:00.000001Z", AuditRecords.GENESIS);
        assertArrayEquals(first.bytes(), again.bytes());
        assertEquals(first.hash(), again.hash());
        assertEquals(first.hash(), AuditRecords.hash(Map.of("type", "call", "method", "m", "context", Map.of("a", "b"),
                "v", 1L, "seq", 5L, "time", "2026-11-22T18:00:00.000001Z", "prev", AuditRecords.GENESIS)));
        assertEquals(AuditRecords.hash(Map.of("type", "call", "method", "m", "context", Map.of("a", "b"),
                "v", 1L, "seq", 6L, "time", "2026-11-22T18:00:00.000002Z", "prev", first.hash())), other.hash());
    }

    @Test
    void of_chainFieldsOrValuesWithoutCanonicalForm_refused() {
        for (String chain : List.of("v", "seq", "time", "prev", "hash")) {
            assertThrows(IllegalArgumentException.class, () -> CanonicalFields.of(Map.of("a", 1L, chain, 1L, "z", 2L)));
        }
        Map<String, Object> withNull = new HashMap<>();
        withNull.put("a", null);
        assertThrows(IllegalArgumentException.class, () -> CanonicalFields.of(withNull));
        assertThrows(IllegalArgumentException.class, () -> CanonicalFields.of(Map.of("a", 1.5)));
        assertThrows(IllegalArgumentException.class, () -> CanonicalFields.of(Map.of("a", "x\ud800")));
    }

    @Test
    void time_sameAsTheFormatter_withinASecondAndAcrossSeconds() {
        DateTimeFormatter reference = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'")
                .withZone(ZoneOffset.UTC);
        Random rnd = new Random(7);
        List<Instant> instants = new ArrayList<>(List.of(Instant.EPOCH, Instant.ofEpochSecond(0, 999_999_999),
                Instant.ofEpochSecond(-1, 1_000), Instant.parse("9999-12-31T23:59:59.999999999Z"),
                Instant.parse("2026-11-22T18:00:00.000010Z"), Instant.parse("2026-11-22T18:00:00.100000Z")));
        for (int i = 0; i < 20_000; i++) {
            long second = i % 3 == 0 ? 1_800_000_000L : rnd.nextLong(-62_000_000_000L, 253_000_000_000L);
            instants.add(Instant.ofEpochSecond(second, rnd.nextInt(1_000_000_000)));
        }
        for (Instant t : instants) {
            assertEquals(reference.format(t.truncatedTo(ChronoUnit.MICROS)), AuditRecords.time(t), t::toString);
        }
    }

    private static Object value(Random rnd, int depth) {
        return switch (rnd.nextInt(depth > 1 ? 5 : 7)) {
            case 0 -> rnd.nextLong();
            case 1 -> (long) rnd.nextInt(100);
            case 2 -> rnd.nextBoolean();
            case 3, 4 -> string(rnd);
            case 5 -> {
                Map<String, Object> m = new LinkedHashMap<>();
                for (int i = rnd.nextInt(4); i > 0; i--) m.put(string(rnd), value(rnd, depth + 1));
                yield m;
            }
            default -> {
                List<Object> l = new ArrayList<>();
                for (int i = rnd.nextInt(4); i > 0; i--) l.add(value(rnd, depth + 1));
                yield l;
            }
        };
    }

    private static String string(Random rnd) {
        String alphabet = "abcXYZ019-_./:\"\\\n\t\u0001é€ü";
        StringBuilder sb = new StringBuilder();
        for (int i = rnd.nextInt(12); i > 0; i--) {
            if (rnd.nextInt(20) == 0) sb.append("😀");
            else sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
        }
        return sb.toString();
    }

    private static String hex(Random rnd) {
        byte[] b = new byte[32];
        rnd.nextBytes(b);
        return java.util.HexFormat.of().formatHex(b);
    }
}
