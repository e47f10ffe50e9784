package dev.enclavekms.server;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The reply text a batch encodes entry by entry is what the writer makes of the entries as maps. */
class EncodedResultsTest {
    @Test
    void textEqualsTheWrittenMaps_includingEscapes_andTheListShowsOutcomes() throws Exception {
        EncodedResults encoded = new EncodedResults(3);
        List<Object> maps = new ArrayList<>();
        encoded.addSuccess("plaintext", "AAEC/+8=", "key", "team/\"quoted\"\u2028key", "version", 7L);
        maps.add(entry("plaintext", "AAEC/+8=", "key", "team/\"quoted\"\u2028key", "version", 7L));
        encoded.addFailure("DecryptionFailed", "line one\nline \\two\\ \u0001 \uD83D\uDD11");
        maps.add(entry("error", "DecryptionFailed", "message", "line one\nline \\two\\ \u0001 \uD83D\uDD11"));
        encoded.addSuccess("key", "k", "rewrapped", false, "ciphertext", "");
        maps.add(entry("key", "k", "rewrapped", false, "ciphertext", ""));

        assertEquals(Json.write(Map.of("results", maps)), Json.write(Map.of("results", encoded)));
        assertEquals(maps, Json.parseObject(Json.write(Map.of("results", encoded))).get("results"));
        assertEquals(List.of(Map.of(), Map.of("error", "DecryptionFailed", "message",
                "line one\nline \\two\\ \u0001 \uD83D\uDD11"), Map.of()), List.copyOf(encoded));
        assertEquals(Json.write(List.of()), Json.write(new EncodedResults(0)));
    }

    @Test
    void utf8EqualsTheWrittenMapsEncoded_whenTheBufferGrows_andWithNonAsciiAndEscapes() {
        EncodedResults encoded = new EncodedResults(0); // sized for nothing: grows as it goes
        List<Object> maps = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            String key = switch (i % 4) {
                case 0 -> "weights";
                case 1 -> "clé-\u00e9t\u00e9-" + i;
                case 2 -> "\uD83D\uDD11-" + i;
                default -> "ctl-\u0001-\u2028-" + i; // escaped by the writer
            };
            if (i % 5 == 0) {
                encoded.addFailure("KeyNotFound", "no key " + key);
                maps.add(entry("error", "KeyNotFound", "message", "no key " + key));
            } else {
                encoded.addSuccess("plaintext", "AAEC/+8=" + i, "key", key, "version", (long) i);
                maps.add(entry("plaintext", "AAEC/+8=" + i, "key", key, "version", (long) i));
            }
        }
        byte[] expected = Json.write(maps).getBytes(StandardCharsets.UTF_8);
        byte[] copied = new byte[encoded.utf8Length() + 3];
        encoded.copyUtf8(copied, 2);
        assertEquals(expected.length, encoded.utf8Length());
        assertArrayEquals(expected, Arrays.copyOfRange(copied, 2, 2 + expected.length));
        assertEquals(0, copied[0]);
        assertEquals(0, copied[copied.length - 1], "nothing written past the value");
        assertEquals(Json.write(maps), Json.write(encoded));

        encoded.wipe();
        assertEquals("[]", Json.write(encoded), "a wiped reply holds nothing");
    }

    private static Map<String, Object> entry(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }
}
