package dev.enclavekms.json;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonTest {

    private static JsonException rejected(String text) {
        return assertThrows(JsonException.class, () -> Json.parse(text), () -> "accepted: " + text);
    }

    // ------------------------------------------------------------------ values

    @Test
    void literals_parseToBooleanAndNull() throws JsonException {
        assertEquals(Boolean.TRUE, Json.parse("true"));
        assertEquals(Boolean.FALSE, Json.parse("false"));
        assertNull(Json.parse("null"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"tru", "nul", "True", "NULL", "falsey", "nan", "NaN", "Infinity", "-Infinity", "undefined"})
    void invalidLiterals_rejected(String text) {
        rejected(text);
    }

    @Test
    @SuppressWarnings("unchecked")
    void objectsAndArrays_keepOrderAndAreUnmodifiable() throws JsonException {
        Object v = Json.parse("{\"b\":1,\"a\":[true,null,\"x\"],\"c\":{}}");
        Map<?, ?> m = assertInstanceOf(Map.class, v);
        assertEquals(List.of("b", "a", "c"), new ArrayList<>(m.keySet()));
        assertEquals(Arrays.asList(true, null, "x"), m.get("a"));
        assertEquals(Map.of(), m.get("c"));
        assertThrows(UnsupportedOperationException.class, () -> ((Map<Object, Object>) m).put("d", 1));
        assertThrows(UnsupportedOperationException.class, () -> ((List<Object>) m.get("a")).add(1));
    }

    @Test
    void parseObject_rejectsOtherTopLevelValues() {
        for (String text : List.of("[]", "1", "\"s\"", "null", "true")) {
            JsonException e = assertThrows(JsonException.class, () -> Json.parseObject(text));
            assertTrue(e.getMessage().contains("expected a JSON object"), e.getMessage());
        }
    }

    // ------------------------------------------------------------------ strings

    @Test
    void escapes_allRfc8259EscapesDecoded() throws JsonException {
        assertEquals("\" \\ / \b \f \n \r \t", Json.parse("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""));
        assertEquals("A\u00e9\u4e2d", Json.parse("\"\\u0041\\u00E9\\u4e2D\""));
        assertEquals("\u0000", Json.parse("\"\\u0000\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"\\a\"", "\"\\x41\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\", "\"\\u00"})
    void invalidEscapes_rejected(String text) {
        rejected(text);
    }

    @Test
    void unicodeEscape_nonAsciiHexDigitsRejected() {
        // Character.digit would read Arabic-Indic and fullwidth digits as hex.
        rejected("\"\\u\u0660\u0660\u0664\u0661\"");
        rejected("\"\\u\uff10\uff10\uff14\uff11\"");
    }

    @Test
    void surrogatePairs_escapedOrRaw_decodeToOneCodePoint() throws JsonException {
        String clef = new String(Character.toChars(0x1D11E));
        assertEquals(clef, Json.parse("\"\\uD834\\uDD1E\""));
        assertEquals(clef, Json.parse("\"" + clef + "\""));
        assertEquals("x" + clef + "y", Json.parse("\"x\\ud834\\udd1ey\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"\\uD834\"", "\"\\uDD1E\"", "\"\\uDD1E\\uD834\"", "\"\\uD834x\"", "\"\\uD834\\u0041\"",
            "\"\\uD834\\uD834\\uDD1E\"", "{\"\\uD800\":1}"})
    void loneSurrogates_escaped_rejected(String text) {
        assertTrue(rejected(text).getMessage().contains("lone surrogate"));
    }

    @Test
    void loneSurrogates_raw_rejected() {
        assertTrue(rejected("\"\uD834\"").getMessage().contains("lone surrogate"));
        assertTrue(rejected("\"a\uDD1E\"").getMessage().contains("lone surrogate"));
    }

    @Test
    void controlCharacters_unescapedRejected() {
        for (char c = 0; c < 0x20; c++) {
            assertTrue(rejected("\"a" + c + "b\"").getMessage().contains("control character"));
            assertTrue(rejected("\"\\n" + c + "\"").getMessage().contains("control character"));
        }
        assertEquals("\u007f", assertDoesNotThrowParse("\"\u007f\""));
    }

    @Test
    void unterminatedString_rejected() {
        rejected("\"abc");
        rejected("\"abc\\\"");
        rejected("{\"a");
    }

    // ------------------------------------------------------------------ objects

    @Test
    void duplicateKeys_rejectedEvenWhenSpelledDifferently() {
        assertTrue(rejected("{\"a\":1,\"a\":2}").getMessage().contains("duplicate key"));
        assertTrue(rejected("{\"a\":1,\"\\u0061\":1}").getMessage().contains("duplicate key"));
        assertTrue(rejected("{\"x\":{\"a\":null,\"a\":null}}").getMessage().contains("duplicate key"));
    }

    @Test
    void duplicateKeysInSeparateObjects_accepted() throws JsonException {
        assertEquals(List.of(Map.of("a", 1L), Map.of("a", 2L)), Json.parse("[{\"a\":1},{\"a\":2}]"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{a:1}", "{'a':1}", "{\"a\" 1}", "{1:1}",
            "[", "[1,]", "[,1]", "[1 2]", "]", "}", "[1}", "{\"a\":1]"})
    void malformedStructures_rejected(String text) {
        rejected(text);
    }

    // ------------------------------------------------------------------ depth

    @Test
    void depth_atLimitAccepted_beyondRejected() throws JsonException {
        int limit = Json.DEFAULT_MAX_DEPTH;
        Json.parse("[".repeat(limit) + "]".repeat(limit));
        JsonException e = rejected("[".repeat(limit + 1) + "]".repeat(limit + 1));
        assertTrue(e.getMessage().contains("nesting deeper than " + limit), e.getMessage());
        Json.parse("{\"a\":".repeat(3) + "1" + "}".repeat(3), 3);
        assertThrows(JsonException.class, () -> Json.parse("{\"a\":".repeat(4) + "1" + "}".repeat(4), 3));
    }

    @Test
    void depth_hugeNestingRejectedWithoutStackOverflow() {
        rejected("[".repeat(1_000_000));
        rejected("{\"a\":".repeat(200_000));
    }

    @Test
    void depth_limitOutOfRange_illegalArgument() {
        assertThrows(IllegalArgumentException.class, () -> Json.parse("1", 0));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("1", 100_000));
    }

    // ------------------------------------------------------------------ numbers

    @Test
    void integers_parseToLong() throws JsonException {
        assertEquals(0L, Json.parse("0"));
        assertEquals(0L, Json.parse("-0"));
        assertEquals(-42L, Json.parse("-42"));
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(Long.MIN_VALUE, Json.parse("-9223372036854775808"));
    }

    @Test
    void integersBeyondLong_parseToNearestDouble() throws JsonException {
        assertEquals(9.223372036854775808E18, Json.parse("9223372036854775808"));
        assertEquals(-9.223372036854775809E18, Json.parse("-9223372036854775809"));
        assertEquals(1e30, Json.parse("1000000000000000000000000000000"));
    }

    @Test
    void fractionsAndExponents_parseToDouble() throws JsonException {
        assertEquals(1.0, Json.parse("1.0"));
        assertEquals(100.0, Json.parse("1e2"));
        assertEquals(100.0, Json.parse("1E+2"));
        assertEquals(0.01, Json.parse("1e-2"));
        assertEquals(Math.PI, Json.parse("3.141592653589793"));
        assertEquals(-0.0, Json.parse("-0.0"));
        assertEquals(Double.MIN_VALUE, Json.parse("4.9e-324"));
        assertEquals(0.0, Json.parse("1e-400"), "underflow rounds to zero");
        assertEquals(Double.MAX_VALUE, Json.parse("1.7976931348623157e308"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"1e309", "-1e309", "1e999999999999", "1E2147483648", "1.7976931348623159e308"})
    void numbersBeyondDouble_rejected(String text) {
        assertTrue(rejected(text).getMessage().contains("out of range"), text);
    }

    @Test
    void integerBeyondDouble_rejected() {
        assertTrue(rejected("9".repeat(310)).getMessage().contains("out of range"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"01", "-01", "00", "+1", ".5", "5.", "-", "1e", "1e+", "1.e3", "0x10", "1_000", "- 1", "--1",
            "1.5.2", "\u0661"})
    void malformedNumbers_rejected(String text) {
        rejected(text);
    }

    @Test
    void overlongNumbers_rejectedWithClearMessage() {
        assertTrue(rejected("1." + "0".repeat(500)).getMessage().contains("longer than"));
    }

    // ------------------------------------------------------------------ whitespace and garbage

    @Test
    void whitespace_onlyTheFourJsonCharactersAllowed() throws JsonException {
        assertEquals(Map.of("a", List.of(1L, 2L)), Json.parse(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] }\r\n "));
        for (String ws : List.of("\u00a0", "\u2028", "\u000b", "\u000c", "\ufeff")) {
            rejected(ws + "1");
            rejected("[1" + ws + "]");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"{}x", "{} {}", "1 2", "true false", "\"a\"\"b\"", "[]]", "{}\u0000", "null,"})
    void trailingGarbage_rejected(String text) {
        assertTrue(rejected(text).getMessage().contains("unexpected data after the JSON value"), text);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "\n\t"})
    void emptyInput_rejected(String text) {
        assertTrue(rejected(text).getMessage().contains("unexpected end of input"));
    }

    @Test
    void errorMessages_nameTheOffsetButNotTheInput() {
        JsonException e = rejected("{\"secret-token\":\"s3cr3t\" oops}");
        assertTrue(e.getMessage().contains("offset 25"), e.getMessage());
        assertFalse(e.getMessage().contains("s3cr3t"), e.getMessage());
        assertEquals(25, e.offset());
    }

    // ------------------------------------------------------------------ writing

    @Test
    void write_compactAndEscaped() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "q\"b\\n\n\u0001\u2028/é\uD834\uDD1E");
        m.put("n", null);
        m.put("l", List.of(1, 2L, (short) 3, (byte) 4));
        m.put("t", true);
        assertEquals("{\"s\":\"q\\\"b\\\\n\\n\\u0001\\u2028/é\uD834\uDD1E\",\"n\":null,\"l\":[1,2,3,4],\"t\":true}",
                Json.write(m));
    }

    @Test
    void write_escapeAtAnyPosition_afterAPlainPrefix() throws JsonException {
        assertEquals("\"QUJD+/==\"", Json.write("QUJD+/=="));
        assertEquals("\"\"", Json.write(""));
        for (String special : List.of("\"", "\\", "\n", "\u0000", "\u001f", "\u2028", "\u2029", "\uD834\uDD1E")) {
            for (String s : List.of(special + "abc", "a" + special + "bc", "abc" + special)) {
                String json = Json.write(s);
                assertEquals(s, Json.parse(json), () -> "round trip of " + json);
            }
        }
        assertEquals("\"ab\\\"c\"", Json.write("ab\"c"));
        assertThrows(IllegalArgumentException.class, () -> Json.write("abc\uD834"));
    }

    @Test
    void write_doubles_alwaysReadBackAsTheSameDouble() throws JsonException {
        assertEquals("1.0", Json.write(1.0));
        assertEquals("-0.0", Json.write(-0.0));
        assertEquals("0.0", Json.write(0.0));
        assertEquals("3.141592653589793", Json.write(Math.PI));
        assertEquals("1.0E20", Json.write(1e20));
        for (double d : new double[] {-0.0, 0.1, 1e15, 1e-7, 123456789012345.0, Double.MAX_VALUE, Double.MIN_VALUE,
                -Double.MIN_NORMAL, 2.5f, 9.007199254740993E15}) {
            assertEquals(d, Json.parse(Json.write(d)), () -> "round trip of " + d);
        }
    }

    @Test
    void write_bigNumbers_exact() throws JsonException {
        assertEquals("123456789012345678901234567890", Json.write(new BigInteger("123456789012345678901234567890")));
        assertEquals("1.25", Json.write(new BigDecimal("1.25")));
        assertEquals(1000.0, Json.parse(Json.write(new BigDecimal("1E+3"))));
    }

    @Test
    void write_unrepresentableValues_illegalArgument() {
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> Json.write("a\uD834"));
        assertThrows(IllegalArgumentException.class, () -> Json.write("\uDD1Ea"));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Map.of("\uD800", 1)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new byte[] {1}));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new AtomicLong(1)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
    }

    @Test
    void writeThenParse_roundTripsEveryKindOfValue() throws JsonException {
        String text = "{\"o\":{\"e\":{},\"a\":[]},\"s\":\"\\u0000\\u001f\\\"\\\\ \uD834\uDD1E\u2029\",\"i\":-9223372036854775808,"
                + "\"d\":[0.5,-0.0,1.0E-300,1.7976931348623157E308,1e2],\"b\":[true,false,null],\"u\":\"\u00e9\u4e2d\"}";
        Object parsed = Json.parse(text);
        assertEquals(parsed, Json.parse(Json.write(parsed)));
        assertEquals(Json.write(parsed), Json.write(Json.parse(Json.write(parsed))), "writing is deterministic");
    }

    private static Object assertDoesNotThrowParse(String text) {
        try {
            return Json.parse(text);
        } catch (JsonException e) {
            throw new AssertionError("rejected " + text + ": " + e.getMessage(), e);
        }
    }
}
