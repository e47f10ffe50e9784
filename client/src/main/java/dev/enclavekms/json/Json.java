package dev.enclavekms.json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict RFC 8259 JSON reader and writer for the varlink wire, with no dependency
 * beyond the JDK (the client library must stay JDK-only).
 *
 * <p>Values map to Java as: object → {@code Map<String,Object>} (insertion order kept),
 * array → {@code List<Object>}, string → {@code String}, true/false → {@code Boolean},
 * null → {@code null}, number → {@code Long} when it is an integer that fits, else
 * {@code Double}. Parsed maps and lists are unmodifiable.
 *
 * <p>The reader is meant for untrusted input: nesting depth and number length are
 * bounded (string length is bounded by the size of the text, which the varlink frame
 * limit bounds), duplicate object keys, lone surrogates and numbers beyond the range
 * of a double are rejected (two readers must never disagree about what a message
 * says), and it never recurses deeper than the depth limit. It fails only with
 * {@link JsonException}.
 *
 * <p>The writer emits what the reader accepts: {@code parse(write(v))} equals
 * {@code v} for every value the reader returns.
 */
public final class Json {
    /** Default nesting limit; varlink messages need far less. */
    public static final int DEFAULT_MAX_DEPTH = 64;
    /** The reader recurses once per level: a larger limit would risk the caller's stack. */
    private static final int LARGEST_MAX_DEPTH = 512;
    /** Longest number accepted; a double needs at most 17 significant digits. */
    private static final int MAX_NUMBER_LENGTH = 400;

    private final String text;
    private final int maxDepth;
    private int pos;

    private Json(String text, int maxDepth) {
        this.text = text;
        this.maxDepth = maxDepth;
    }

    public static Object parse(String text) throws JsonException {
        return parse(text, DEFAULT_MAX_DEPTH);
    }

    public static Object parse(String text, int maxDepth) throws JsonException {
        if (maxDepth < 1 || maxDepth > LARGEST_MAX_DEPTH) {
            throw new IllegalArgumentException("maxDepth must be between 1 and " + LARGEST_MAX_DEPTH);
        }
        Json p = new Json(text, maxDepth);
        p.skipWhitespace();
        Object value = p.readValue(0);
        p.skipWhitespace();
        if (p.pos != text.length()) {
            throw new JsonException("unexpected data after the JSON value", p.pos);
        }
        return value;
    }

    /** Parses a JSON object (the only top-level value varlink allows). */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text) throws JsonException {
        Object v = parse(text);
        if (!(v instanceof Map)) {
            throw new JsonException("expected a JSON object", 0);
        }
        return (Map<String, Object>) v;
    }

    private Object readValue(int depth) throws JsonException {
        if (pos >= text.length()) {
            throw new JsonException("unexpected end of input", pos);
        }
        char c = text.charAt(pos);
        return switch (c) {
            case '{' -> readObject(depth + 1);
            case '[' -> readArray(depth + 1);
            case '"' -> readString();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", null);
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) {
                    yield readNumber();
                }
                throw new JsonException("unexpected character", pos);
            }
        };
    }

    private Object literal(String word, Object value) throws JsonException {
        if (!text.startsWith(word, pos)) {
            throw new JsonException("invalid literal", pos);
        }
        pos += word.length();
        return value;
    }

    private Map<String, Object> readObject(int depth) throws JsonException {
        checkDepth(depth);
        pos++; // '{'
        Map<String, Object> map = new LinkedHashMap<>();
        skipWhitespace();
        if (peek() == '}') {
            pos++;
            return Collections.unmodifiableMap(map);
        }
        while (true) {
            skipWhitespace();
            if (peek() != '"') {
                throw new JsonException("expected a string key", pos);
            }
            int keyPos = pos;
            String key = readString();
            skipWhitespace();
            expect(':');
            skipWhitespace();
            Object value = readValue(depth);
            if (map.containsKey(key)) {
                throw new JsonException("duplicate key", keyPos);
            }
            map.put(key, value);
            skipWhitespace();
            char c = next();
            if (c == '}') {
                return Collections.unmodifiableMap(map);
            }
            if (c != ',') {
                throw new JsonException("expected ',' or '}'", pos - 1);
            }
        }
    }

    private List<Object> readArray(int depth) throws JsonException {
        checkDepth(depth);
        pos++; // '['
        List<Object> list = new ArrayList<>();
        skipWhitespace();
        if (peek() == ']') {
            pos++;
            return Collections.unmodifiableList(list);
        }
        while (true) {
            skipWhitespace();
            list.add(readValue(depth));
            skipWhitespace();
            char c = next();
            if (c == ']') {
                return Collections.unmodifiableList(list);
            }
            if (c != ',') {
                throw new JsonException("expected ',' or ']'", pos - 1);
            }
        }
    }

    private void checkDepth(int depth) throws JsonException {
        if (depth > maxDepth) {
            throw new JsonException("nesting deeper than " + maxDepth, pos);
        }
    }

    private String readString() throws JsonException {
        int start = ++pos; // after '"'
        // Fast path: no escapes. The closing quote is found by the JDK's vectorised search,
        // then the span is checked in one tight pass (a megabyte DecryptBatch call is mostly
        // base64 strings).
        int close = text.indexOf('"', pos);
        if (close >= 0) {
            boolean surrogates = false;
            int i = pos;
            for (; i < close; i++) {
                char c = text.charAt(i);
                if (c == '\\' || c < 0x20) {
                    break;
                }
                surrogates |= Character.isSurrogate(c);
            }
            if (i == close) {
                String s = text.substring(start, close);
                pos = close + 1;
                if (surrogates) {
                    checkSurrogates(s, start);
                }
                return s;
            }
            pos = i;
            if (text.charAt(i) < 0x20) {
                throw new JsonException("control character in string", pos);
            }
        } else {
            while (pos < text.length() && text.charAt(pos) != '\\') {
                if (text.charAt(pos) < 0x20) {
                    throw new JsonException("control character in string", pos);
                }
                pos++;
            }
        }
        StringBuilder sb = new StringBuilder(text.length() - start > 64 ? 64 : 16);
        sb.append(text, start, pos);
        while (true) {
            if (pos >= text.length()) {
                throw new JsonException("unterminated string", start - 1);
            }
            char c = text.charAt(pos++);
            if (c == '"') {
                String s = sb.toString();
                checkSurrogates(s, start);
                return s;
            }
            if (c < 0x20) {
                throw new JsonException("control character in string", pos - 1);
            }
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            if (pos >= text.length()) {
                throw new JsonException("unterminated escape", pos);
            }
            char e = text.charAt(pos++);
            switch (e) {
                case '"' -> sb.append('"');
                case '\\' -> sb.append('\\');
                case '/' -> sb.append('/');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'n' -> sb.append('\n');
                case 'r' -> sb.append('\r');
                case 't' -> sb.append('\t');
                case 'u' -> {
                    if (pos + 4 > text.length()) {
                        throw new JsonException("truncated \\u escape", pos);
                    }
                    int cp = 0;
                    for (int i = 0; i < 4; i++) {
                        // ASCII hex only: Character.digit would also take e.g. Arabic-Indic digits.
                        int d = hexDigit(text.charAt(pos + i));
                        if (d < 0) {
                            throw new JsonException("invalid \\u escape", pos);
                        }
                        cp = cp * 16 + d;
                    }
                    pos += 4;
                    sb.append((char) cp);
                }
                default -> throw new JsonException("invalid escape", pos - 1);
            }
        }
    }

    /** Rejects lone surrogates: they cannot be encoded as UTF-8 and would be replaced silently. */
    private static void checkSurrogates(String s, int offset) throws JsonException {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                    continue;
                }
                throw new JsonException("lone surrogate in string", offset);
            }
            if (Character.isLowSurrogate(c)) {
                throw new JsonException("lone surrogate in string", offset);
            }
        }
    }

    private Object readNumber() throws JsonException {
        int start = pos;
        boolean integral = true;
        if (peek() == '-') {
            pos++;
        }
        if (peek() == '0') {
            pos++;
        } else if (isDigit(peek())) {
            while (isDigit(peek())) pos++;
        } else {
            throw new JsonException("invalid number", start);
        }
        if (peek() == '.') {
            integral = false;
            pos++;
            if (!isDigit(peek())) throw new JsonException("invalid number", start);
            while (isDigit(peek())) pos++;
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            pos++;
            if (peek() == '+' || peek() == '-') pos++;
            if (!isDigit(peek())) throw new JsonException("invalid number", start);
            while (isDigit(peek())) pos++;
        }
        String n = text.substring(start, pos);
        if (integral && n.length() <= 20) {
            try {
                return Long.parseLong(n);
            } catch (NumberFormatException tooBig) {
                // fall through: represent as a double like other JSON readers do
            }
        }
        if (n.length() > MAX_NUMBER_LENGTH) {
            throw new JsonException("number longer than " + MAX_NUMBER_LENGTH + " characters", start);
        }
        // The grammar was checked above, so parseDouble cannot fail; it rounds correctly
        // and, unlike BigDecimal, copes with any exponent (1e999999999999 → infinity).
        double d = Double.parseDouble(n);
        if (Double.isInfinite(d)) {
            throw new JsonException("number out of range", start);
        }
        return d;
    }

    private static int hexDigit(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private char peek() {
        return pos < text.length() ? text.charAt(pos) : '\0';
    }

    private char next() throws JsonException {
        if (pos >= text.length()) {
            throw new JsonException("unexpected end of input", pos);
        }
        return text.charAt(pos++);
    }

    private void expect(char c) throws JsonException {
        if (next() != c) {
            throw new JsonException("expected '" + c + "'", pos - 1);
        }
    }

    private void skipWhitespace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                pos++;
            } else {
                return;
            }
        }
    }

    // ---------------------------------------------------------------- writing

    /**
     * Serialises maps, lists, strings, booleans, numbers and null as compact JSON.
     *
     * @throws IllegalArgumentException for a value JSON cannot carry: NaN, an infinity,
     *         a string with a lone surrogate (not encodable as UTF-8), or an object of
     *         another type
     */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder(128);
        write(sb, value);
        return sb.toString();
    }

    /**
     * A value that is already JSON text: {@link #write} copies it as it is. For a large
     * value built piece by piece while other work goes on (DecryptBatch encodes its entries
     * as the device finishes them); the maker writes its pieces with {@link #append}, so
     * the text is what {@code write} would have produced from the plain value.
     */
    public interface Encoded {
        /** Appends this value's JSON text. */
        void appendTo(StringBuilder sb);

        /** The length of that text, so that the writer grows its buffer once, not by doubling. */
        int length();
    }

    /** {@link #write(Object)} into {@code sb}; returns {@code sb}. */
    public static StringBuilder append(StringBuilder sb, Object value) {
        write(sb, value);
        return sb;
    }

    private static void write(StringBuilder sb, Object v) {
        switch (v) {
            case null -> sb.append("null");
            case Encoded e -> {
                // Room for the value and a little of what may follow (closing brackets).
                sb.ensureCapacity(sb.length() + e.length() + 64);
                e.appendTo(sb);
            }
            case String s -> writeString(sb, s);
            case Boolean b -> sb.append(b.booleanValue());
            case Double d -> writeDouble(sb, d);
            case Float f -> writeDouble(sb, f.doubleValue());
            case Long n -> sb.append(n.longValue());
            case Integer n -> sb.append(n.intValue());
            case Short n -> sb.append(n.shortValue());
            case Byte n -> sb.append(n.byteValue());
            case BigInteger n -> sb.append(n);
            case BigDecimal n -> sb.append(n); // toString's form (1.5, 1E+3, 0E-10) is valid JSON
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    writeString(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            }
            case Iterable<?> it -> {
                sb.append('[');
                boolean first = true;
                for (Object o : it) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, o);
                }
                sb.append(']');
            }
            case Enum<?> e -> writeString(sb, e.name());
            // Other Numbers (AtomicLong, DoubleAdder…) land here too: their longValue() would truncate silently.
            default -> throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
        }
    }

    private static void writeDouble(StringBuilder sb, double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new IllegalArgumentException("JSON has no NaN or infinity");
        }
        if (d == 0 && 1 / d < 0) {
            sb.append("-0.0"); // (long) -0.0 would lose the sign
        } else if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            sb.append((long) d).append(".0");
        } else {
            // Shortest representation that reads back as the same double; "1.0E20" is valid JSON.
            sb.append(d);
        }
    }

    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        // Most strings (names, base64) need no escaping: copied in one piece, which is several
        // times faster than char by char on a megabyte reply (DecryptBatch).
        int plain = plainPrefix(s);
        if (plain == s.length()) {
            sb.append(s).append('"');
            return;
        }
        sb.append(s, 0, plain);
        for (int i = plain; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || c == 0x2028 || c == 0x2029) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else if (Character.isSurrogate(c)) {
                        if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                            sb.append(c).append(s.charAt(++i));
                        } else {
                            throw new IllegalArgumentException("string with a lone surrogate at index " + i + " cannot be written as JSON");
                        }
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** The length of the prefix of {@code s} that writeString copies unchanged. */
    private static int plainPrefix(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == '"' || c == '\\' || c >= Character.MIN_SURROGATE && c <= Character.MAX_SURROGATE
                    || c == 0x2028 || c == 0x2029) {
                return i;
            }
        }
        return s.length();
    }
}
