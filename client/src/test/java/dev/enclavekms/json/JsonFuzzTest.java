package dev.enclavekms.json;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Fuzzes the JSON reader with arbitrary strings (lone surrogates included: Jazzer builds
 * the string from modified UTF-8). Without JAZZER_FUZZ this runs once per committed
 * input under {@code JsonFuzzTestInputs/}; see docs/fuzzing.md.
 */
class JsonFuzzTest {

    /**
     * The reader either returns or throws {@link JsonException} — nothing else, whatever
     * the input — and what it returns survives a write and a second read unchanged.
     */
    @FuzzTest(maxDuration = "60s")
    void parse_returnsOrThrowsJsonException_andRoundTrips(FuzzedDataProvider data) {
        String text = data.consumeRemainingAsString();
        Object value;
        try {
            value = Json.parse(text);
        } catch (JsonException rejected) {
            return;
        }
        String written = Json.write(value); // must not throw: everything parsed is writable
        Object again;
        try {
            again = Json.parse(written);
        } catch (JsonException e) {
            throw new AssertionError("the reader rejects what the writer wrote: " + written, e);
        }
        assertEquals(value, again, "parse(write(parse(x))) differs from parse(x)");
        assertEquals(written, Json.write(again), "writing is not deterministic");
    }
}
