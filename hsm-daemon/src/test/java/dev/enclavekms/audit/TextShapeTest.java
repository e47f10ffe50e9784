package dev.enclavekms.audit;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shapes {@link CallAuditor} shows in clear accept exactly what the regular expressions
 * they replaced accepted: what appears in clear in a record, and what is HMAC'd, is unchanged.
 */
class TextShapeTest {
    private static final Map<TextShape, Pattern> SHAPES = Map.of(
            CallAuditor.NAME, Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._/-]{0,127}"),
            CallAuditor.ENUM, Pattern.compile("[A-Z0-9_]{1,64}"),
            CallAuditor.CONTEXT_KEY, Pattern.compile("[A-Za-z0-9._:/-]{1,128}"),
            CallAuditor.IDENTIFIER, Pattern.compile("[A-Za-z0-9._:@/-]{1,128}"),
            CallAuditor.METHOD, Pattern.compile("[A-Za-z0-9_.]{1,255}"),
            CallAuditor.SESSION_ID, Pattern.compile("[0-9a-f]{48}"),
            CallAuditor.CERTIFICATE_TEXT, Pattern.compile("[\\x20-\\x7e]{1,1024}"));

    @Test
    void everyShape_agreesWithItsRegex() {
        Random rnd = new Random(3);
        List<String> samples = new ArrayList<>(List.of("", "a", "_", ".a", "-a", "/a", "A-b_c.d/e", "dev.enclavekms.Kms.Decrypt",
                "Kms.Decrypt", "AES_256_GCM", "aes", "0123456789abcdef0123456789abcdef0123456789abcdef",
                "0123456789abcdef0123456789abcdef0123456789abcdeF", "a:b@c", "x y", "é", "a\u0000", "~", "\u007f", " ",
                "a".repeat(64), "A".repeat(65), "a".repeat(128), "a".repeat(129), "a".repeat(255), "a".repeat(256),
                "a".repeat(1024), "a".repeat(1025), "a\n"));
        String alphabet = "aZ09_.-/:@ ~\"\\\u001f\u007f\u0080é€";
        for (int i = 0; i < 50_000; i++) {
            StringBuilder sb = new StringBuilder();
            int n = rnd.nextInt(8) == 0 ? rnd.nextInt(1100) : rnd.nextInt(6);
            for (int j = 0; j < n; j++) sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
            samples.add(sb.toString());
            samples.add("0123456789abcdef".repeat(3).substring(0, 48 - Math.min(48, n % 3)) + (n % 5 == 0 ? "g" : ""));
        }
        SHAPES.forEach((shape, regex) -> {
            for (String s : samples) {
                assertEquals(regex.matcher(s).matches(), shape.matches(s), () -> regex + " on '" + s + "'");
            }
        });
    }

    @Test
    void rangesAndLiteralDashes() {
        TextShape s = TextShape.of("a-c-", 1, 3);
        assertTrue(s.matches("a-c"));
        assertTrue(s.matches("b"));
        assertFalse(s.matches("d"));
        assertFalse(s.matches("abcd"));
        assertFalse(s.matches(""));
    }
}
