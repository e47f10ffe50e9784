package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkError;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Strict base64: exactly the encoder's spelling is accepted, anything else is the typed InvalidParameter error. */
class ParamsTest {
    private static final String INVALID = "dev.enclavekms.Kms.InvalidParameter";
    private final Params params = new Params(Map.of(), INVALID);

    /** The definition: decodes, and encoding the result gives the same text back. */
    private static byte[] reference(String s) {
        byte[] b;
        try {
            b = Base64.getDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            return null;
        }
        return Base64.getEncoder().encodeToString(b).equals(s) ? b : null;
    }

    @Test
    void decodeBase64_acceptsExactlyTheEncodersSpelling() {
        Random rnd = new Random(11);
        List<String> samples = new ArrayList<>(List.of("", "=", "==", "===", "====", "A", "AA", "AAA", "AAAA", "AA==",
                "AB==", "AQ==", "AR==", "AAA=", "AAE=", "AAB=", "AAC=", "A===", "AA=A", "AAAA====", "AA==AAAA", "AAAA\n",
                " AAAA", "AA-_", "AA+/", "////", "+++=", "++==", "+/==", "+w==", "+x=="));
        String alphabet = "ABCDQRSwxyz0189+/=-_ \n.";
        for (int i = 0; i < 200_000; i++) {
            StringBuilder sb = new StringBuilder();
            for (int j = rnd.nextInt(13); j > 0; j--) sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
            samples.add(sb.toString());
        }
        for (int i = 0; i < 2_000; i++) {
            byte[] b = new byte[rnd.nextInt(40)];
            rnd.nextBytes(b);
            samples.add(Base64.getEncoder().encodeToString(b));
        }
        for (String s : samples) {
            byte[] expected = reference(s);
            if (expected == null) {
                VarlinkError e = assertThrows(VarlinkError.class, () -> params.decodeBase64("ciphertext", s, 1024), s);
                assertEquals(INVALID, e.error());
                assertEquals("ciphertext: is not valid base64 (standard alphabet, padded)", e.parameters().get("message"));
            } else {
                try {
                    assertArrayEquals(expected, params.decodeBase64("ciphertext", s, 1024), s);
                } catch (VarlinkError e) {
                    throw new AssertionError("'" + s + "' refused: " + e.parameters(), e);
                }
            }
        }
    }

    @Test
    void decodeBase64_tooLong_refusedBeforeDecoding() {
        VarlinkError e = assertThrows(VarlinkError.class, () -> params.decodeBase64("plaintext", "AAAAAAAA", 5));
        assertEquals("plaintext: longer than 5 bytes", e.parameters().get("message"));
        e = assertThrows(VarlinkError.class, () -> params.decodeBase64("plaintext", "AAAAAA==", 3));
        assertEquals("plaintext: longer than 3 bytes", e.parameters().get("message"));
    }
}
