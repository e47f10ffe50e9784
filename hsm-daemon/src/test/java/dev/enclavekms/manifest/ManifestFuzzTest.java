package dev.enclavekms.manifest;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the manifest parser: {@code kmsctl manifest verify} reads manifests anyone may
 * have written. Without JAZZER_FUZZ this runs once per committed input under
 * {@code ManifestFuzzTestInputs/}; see docs/fuzzing.md.
 */
class ManifestFuzzTest {

    /**
     * The parser either returns or throws {@link MalformedManifestException}; what it
     * accepts re-encodes to exactly the input bytes, and every path stays inside the tree,
     * in strictly increasing order.
     */
    @FuzzTest(maxDuration = "60s")
    void parse_returnsOrThrowsMalformed_andRoundTrips(FuzzedDataProvider data) {
        byte[] input = data.consumeRemainingAsBytes();
        Manifest m;
        try {
            m = ManifestFormat.parse(input);
        } catch (MalformedManifestException rejected) {
            return;
        }
        assertArrayEquals(input, ManifestFormat.write(m), "parse then write must give the input back");
        assertTrue(m.version() >= 1);
        assertTrue(ManifestFormat.ALGORITHMS.contains(m.algorithm()));
        String previous = null;
        for (Manifest.Entry e : m.entries()) {
            assertNull(ManifestPaths.problem(e.path()), e.path());
            assertEquals(32, e.sha256().length);
            if (previous != null) assertTrue(ManifestPaths.ORDER.compare(previous, e.path()) < 0);
            previous = e.path();
        }
    }
}
