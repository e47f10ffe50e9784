package dev.enclavekms.format;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the ciphertext envelope parser: every Decrypt hands it bytes from a client.
 * Without JAZZER_FUZZ this runs once per committed input under
 * {@code EnvelopeFuzzTestInputs/}; see docs/fuzzing.md.
 */
class EnvelopeFuzzTest {

    /**
     * The parser either returns or throws {@link MalformedEnvelopeException}; what it
     * accepts re-encodes to exactly the input bytes (one encoding per envelope), and its
     * fields are within the format's limits.
     */
    @FuzzTest(maxDuration = "60s")
    void parse_returnsOrThrowsMalformed_andRoundTrips(FuzzedDataProvider data) {
        byte[] input = data.consumeRemainingAsBytes();
        Envelope e;
        try {
            e = Envelope.parse(input);
        } catch (MalformedEnvelopeException rejected) {
            return;
        }
        assertArrayEquals(input, e.encode(), "parse then encode must give the input back");
        assertTrue(e.keyVersion() >= 1);
        assertEquals(e.scheme().ivLength(), e.iv().length);
        assertTrue(e.ciphertext().length >= e.scheme().tagLength());
        byte[] aad = e.aad(EncryptionContext.EMPTY);
        assertArrayEquals(Arrays.copyOf(input, aad.length - 2), Arrays.copyOf(aad, aad.length - 2),
                "the AAD starts with the envelope's own header");
    }
}
