package dev.enclavekms.server;

import dev.enclavekms.json.Json;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    private static Map<String, Object> entry(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }
}
