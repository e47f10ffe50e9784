package dev.enclavekms.audit;

import dev.enclavekms.json.Json;
import dev.enclavekms.json.JsonException;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The one encoding of an audit record, byte for byte: what is written to the log, what its
 * hash covers and what a checkpoint signs. A record has exactly one canonical line, so
 * that a verifier can recompute hashes from the parsed record and that any edit — even
 * whitespace — is visible.
 *
 * <p>Rules (a subset of RFC 8785 JCS, which is enough because records hold no floats):
 * objects with their members sorted by key in UTF-16 code unit order; no whitespace;
 * strings with {@code "} and {@code \} escaped, control characters below U+0020 as
 * {@code \b \f \n \r \t} or {@code \}{@code u00XX} (lower-case hex), everything else as UTF-8;
 * integers as {@code long} decimals; {@code true}, {@code false}; arrays in order. No null
 * (absent fields are left out), no floating point, no lone surrogates.
 */
public final class CanonicalJson {
    private CanonicalJson() {
    }

    /**
     * @throws IllegalArgumentException for a value outside the rules (null, a float, a lone
     *                                  surrogate, an object of another type)
     */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder(256);
        write(sb, value);
        return sb.toString();
    }

    public static byte[] bytes(Object value) {
        return write(value).getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Parses one line and checks that it is the canonical form of what it says: the parse of
     * a non-canonical line (reordered members, whitespace, {@code \}{@code u0041} for "A") is
     * refused, so two different lines never stand for one record.
     *
     * @throws JsonException when the line is not a JSON object in canonical form
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseCanonical(String line) throws JsonException {
        Object v = Json.parse(line, 8);
        if (!(v instanceof Map)) {
            throw new JsonException("not a JSON object", 0);
        }
        String again;
        try {
            again = write(v);
        } catch (IllegalArgumentException e) {
            throw new JsonException("not representable canonically: " + e.getMessage(), 0);
        }
        if (!again.equals(line)) {
            throw new JsonException("not in canonical form", firstDifference(again, line));
        }
        return (Map<String, Object>) v;
    }

    private static int firstDifference(String a, String b) {
        int n = Math.min(a.length(), b.length());
        for (int i = 0; i < n; i++) {
            if (a.charAt(i) != b.charAt(i)) return i;
        }
        return n;
    }

    private static void write(StringBuilder sb, Object v) {
        switch (v) {
            case null -> throw new IllegalArgumentException("null has no canonical form: leave the field out");
            case String s -> writeString(sb, s);
            case Boolean b -> sb.append(b.booleanValue());
            case Long n -> sb.append(n.longValue());
            case Integer n -> sb.append(n.intValue());
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<String, Object> e : sorted(m)) {
                    if (!first) sb.append(',');
                    first = false;
                    member(sb, e.getKey(), e.getValue());
                }
                sb.append('}');
            }
            case List<?> list -> {
                sb.append('[');
                for (int i = 0; i < list.size(); i++) {
                    if (i > 0) sb.append(',');
                    write(sb, list.get(i));
                }
                sb.append(']');
            }
            default -> throw new IllegalArgumentException("no canonical form for " + v.getClass().getName());
        }
    }

    /**
     * The members of an object in canonical order (by key, UTF-16 code units: what
     * {@link String#compareTo} compares). An array sort rather than a {@code TreeMap}: every
     * call's record is encoded, and its members are few.
     *
     * @throws IllegalArgumentException when a key is not a string
     */
    @SuppressWarnings("unchecked")
    static Map.Entry<String, Object>[] sorted(Map<?, ?> m) {
        Map.Entry<String, Object>[] members = m.entrySet().toArray(new Map.Entry[0]);
        for (Map.Entry<String, Object> e : members) {
            if (!((Object) e.getKey() instanceof String)) {
                throw new IllegalArgumentException("object keys must be strings");
            }
        }
        Arrays.sort(members, Map.Entry.comparingByKey());
        return members;
    }

    /** One member of an object, {@code "key":value}, in canonical form. */
    static void member(StringBuilder sb, String key, Object value) {
        writeString(sb, key);
        sb.append(':');
        write(sb, value);
    }

    /** Length of the run at the start of {@code s} that is written as it is. */
    private static int plainPrefix(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == '"' || c == '\\' || Character.isSurrogate(c)) {
                return i;
            }
        }
        return s.length();
    }

    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        // Most strings in a record (names, ids, hashes, base64) need no escaping: copy the
        // plain run in one piece and escape from the first character that needs it.
        int plain = plainPrefix(s);
        sb.append(s, 0, plain);
        for (int i = plain; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else if (Character.isHighSurrogate(c)) {
                        if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) {
                            throw new IllegalArgumentException("lone surrogate in string");
                        }
                        sb.append(c).append(s.charAt(++i));
                    } else if (Character.isLowSurrogate(c)) {
                        throw new IllegalArgumentException("lone surrogate in string");
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
