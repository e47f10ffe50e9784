package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkError;

import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Typed, bounded access to a call's parameters. Every getter fails with the interface's
 * InvalidParameter error naming the parameter and what was wrong with it, so handlers
 * never see a value of the wrong type.
 */
public final class Params {
    private final Map<String, Object> values;
    private final String invalidParameterError;

    public Params(Map<String, Object> values, String invalidParameterError) {
        this.values = values == null ? Map.of() : values;
        this.invalidParameterError = invalidParameterError;
    }

    public Map<String, Object> asMap() {
        return values;
    }

    public boolean has(String name) {
        return values.get(name) != null;
    }

    public VarlinkError invalid(String name, String reason) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("parameter", name);
        p.put("message", name + ": " + reason);
        return new VarlinkError(invalidParameterError, p);
    }

    public String string(String name, int maxLength) throws VarlinkError {
        String s = optString(name, maxLength);
        if (s == null) {
            throw invalid(name, "required");
        }
        return s;
    }

    public String optString(String name, int maxLength) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) return null;
        if (!(v instanceof String s)) throw invalid(name, "must be a string");
        if (s.length() > maxLength) throw invalid(name, "longer than " + maxLength + " characters");
        return s;
    }

    public long integer(String name, long min, long max) throws VarlinkError {
        Long v = optInteger(name, min, max);
        if (v == null) throw invalid(name, "required");
        return v;
    }

    public Long optInteger(String name, long min, long max) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) return null;
        if (!(v instanceof Long l)) throw invalid(name, "must be an integer");
        if (l < min || l > max) throw invalid(name, "must be between " + min + " and " + max);
        return l;
    }

    public Double optFloat(String name) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) return null;
        if (!(v instanceof Number n)) throw invalid(name, "must be a number");
        return n.doubleValue();
    }

    public boolean bool(String name, boolean dflt) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) return dflt;
        if (!(v instanceof Boolean b)) throw invalid(name, "must be true or false");
        return b;
    }

    /**
     * A standard-base64 string (RFC 4648 §4, padded, canonical) of at most {@code maxBytes}
     * decoded bytes.
     */
    public byte[] bytes(String name, int maxBytes) throws VarlinkError {
        byte[] b = optBytes(name, maxBytes);
        if (b == null) throw invalid(name, "required");
        return b;
    }

    public byte[] optBytes(String name, int maxBytes) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) return null;
        if (!(v instanceof String s)) throw invalid(name, "must be a base64 string");
        return decodeBase64(name, s, maxBytes);
    }

    /**
     * Decodes strict base64: the JDK decoder alone also takes unpadded input and ignores
     * non-zero trailing bits, so two spellings would decode to one value; only the
     * canonical spelling (the one the encoder produces) is accepted. The decoder refuses
     * characters outside the alphabet and misplaced padding; what is left to refuse is a
     * length that is not a multiple of 4 and non-zero bits under the padding, checked here
     * instead of encoding the result again to compare (ParamsTest holds both to agree).
     */
    public byte[] decodeBase64(String name, String s, int maxBytes) throws VarlinkError {
        if ((long) s.length() > 4L * ((maxBytes + 2L) / 3)) {
            throw invalid(name, "longer than " + maxBytes + " bytes");
        }
        byte[] decoded;
        try {
            decoded = Base64.getDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            throw invalid(name, "is not valid base64 (standard alphabet, padded)");
        }
        if (!paddedWithZeroBits(s)) {
            throw invalid(name, "is not valid base64 (standard alphabet, padded)");
        }
        if (decoded.length > maxBytes) {
            throw invalid(name, "longer than " + maxBytes + " bytes");
        }
        return decoded;
    }

    /**
     * Whether base64 the decoder accepted is the encoder's spelling: whole 4-character groups,
     * and the bits the padding leaves over in the last data character all zero.
     */
    private static boolean paddedWithZeroBits(String s) {
        int n = s.length();
        if (n % 4 != 0) return false;
        if (n == 0 || s.charAt(n - 1) != '=') return true;
        boolean two = s.charAt(n - 2) == '=';
        int last = sextet(s.charAt(two ? n - 3 : n - 2));
        return (last & (two ? 0x0f : 0x03)) == 0;
    }

    /** The value of a character of the standard base64 alphabet (the decoder has checked it is one). */
    private static int sextet(char c) {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        return c == '+' ? 62 : 63;
    }

    /** A map of string to string, at most {@code maxEntries} entries of bounded length. */
    public Map<String, String> optStringMap(String name, int maxEntries, int maxLength) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) return null;
        if (!(v instanceof Map<?, ?> m)) throw invalid(name, "must be an object of strings");
        if (m.size() > maxEntries) throw invalid(name, "has more than " + maxEntries + " entries");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            String k = (String) e.getKey();
            if (!(e.getValue() instanceof String s)) throw invalid(name, "value of '" + k + "' must be a string");
            if (k.length() > maxLength || s.length() > maxLength) {
                throw invalid(name, "entry '" + (k.length() > 64 ? k.substring(0, 64) + "…" : k) + "' longer than " + maxLength + " characters");
            }
            out.put(k, s);
        }
        return out;
    }

    public List<?> list(String name, int maxItems) throws VarlinkError {
        Object v = values.get(name);
        if (v == null) throw invalid(name, "required");
        if (!(v instanceof List<?> l)) throw invalid(name, "must be an array");
        if (l.size() > maxItems) throw invalid(name, "has more than " + maxItems + " items");
        return l;
    }

    public Object raw(String name) {
        return values.get(name);
    }
}
