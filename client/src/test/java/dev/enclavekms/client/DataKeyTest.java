package dev.enclavekms.client;

import org.junit.jupiter.api.Test;

import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataKeyTest {
    // Distinctive bytes: any rendering of them (hex either case, base64 either alphabet,
    // Arrays.toString) is a long string that cannot appear by chance.
    private static final byte[] SECRET = HexFormat.of().parseHex(
            "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7");
    private static final byte[] CIPHERTEXT = HexFormat.of().parseHex("01020304");

    private static List<String> renderings(byte[] b) {
        String hex = HexFormat.of().formatHex(b);
        String b64 = Base64.getEncoder().encodeToString(b);
        return List.of(hex, hex.toUpperCase(Locale.ROOT), b64, b64.replace("=", ""),
                Base64.getUrlEncoder().withoutPadding().encodeToString(b), java.util.Arrays.toString(b),
                // a prefix is enough to leak most of a key
                hex.substring(0, 16), b64.substring(0, 12));
    }

    @Test
    void toString_neverContainsPlaintext() {
        String s = new DataKey("model-weights", 3, SECRET.clone(), CIPHERTEXT.clone()).toString();
        for (String r : renderings(SECRET)) {
            assertFalse(s.contains(r), () -> "toString leaks the plaintext as " + r + ": " + s);
        }
        assertTrue(s.contains("model-weights") && s.contains("version=3") && s.contains("32 bytes"), s);
    }

    @Test
    void plaintextRecord_toStringNeverContainsPlaintext() {
        String s = new Plaintext("k", 1, SECRET.clone()).toString();
        for (String r : renderings(SECRET)) {
            assertFalse(s.contains(r), () -> "toString leaks the plaintext as " + r + ": " + s);
        }
    }

    @Test
    void listOfDataKeys_toStringNeverContainsPlaintext() {
        String s = List.of(new DataKey("k", 1, SECRET.clone(), CIPHERTEXT.clone())).toString();
        assertFalse(s.contains(renderings(SECRET).getFirst()), s);
    }

    @Test
    void equalContents_areEqualRecords() {
        DataKey a = new DataKey("k", 1, SECRET.clone(), CIPHERTEXT.clone());
        DataKey b = new DataKey("k", 1, SECRET.clone(), CIPHERTEXT.clone());
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        byte[] other = SECRET.clone();
        other[31] ^= 1;
        assertNotEquals(a, new DataKey("k", 1, other, CIPHERTEXT.clone()));
        assertNotEquals(a, new DataKey("k", 2, SECRET.clone(), CIPHERTEXT.clone()));
    }

    @Test
    void plaintextAccessor_returnsTheRecordsOwnArray_soItCanBeWiped() {
        DataKey dk = new DataKey("k", 1, SECRET.clone(), CIPHERTEXT.clone());
        java.util.Arrays.fill(dk.plaintext(), (byte) 0);
        assertTrue(java.util.Arrays.equals(new byte[32], dk.plaintext()));
    }
}
