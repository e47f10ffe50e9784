package dev.enclavekms.client;

import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Typed reading of one reply's parameters. A reply that does not have the shape the IDL
 * promises is a broken daemon or a broken connection, not a refusal, so every failure
 * here is an {@link IOException} naming the method and the field — never the value,
 * which may be secret.
 */
final class Reply {
    private final String method;
    private final String path;
    private final Map<String, Object> values;

    Reply(String method, Map<String, Object> values) {
        this(method, "", values);
    }

    private Reply(String method, String path, Map<String, Object> values) {
        this.method = method;
        this.path = path;
        this.values = values;
    }

    private IOException malformed(String name, String what) {
        return new IOException("malformed reply to " + method + ": '" + path + name + "' " + what);
    }

    private Object required(String name) throws IOException {
        Object v = values.get(name);
        if (v == null) {
            throw malformed(name, "is missing");
        }
        return v;
    }

    String string(String name) throws IOException {
        if (!(required(name) instanceof String s)) {
            throw malformed(name, "is not a string");
        }
        return s;
    }

    String optString(String name) throws IOException {
        return values.get(name) == null ? null : string(name);
    }

    long int64(String name) throws IOException {
        if (!(required(name) instanceof Long l)) {
            throw malformed(name, "is not an integer");
        }
        return l;
    }

    int int32(String name) throws IOException {
        long l = int64(name);
        if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
            throw malformed(name, "is out of range");
        }
        return (int) l;
    }

    Long optInt64(String name) throws IOException {
        return values.get(name) == null ? null : int64(name);
    }

    Integer optInt32(String name) throws IOException {
        return values.get(name) == null ? null : int32(name);
    }

    boolean bool(String name) throws IOException {
        if (!(required(name) instanceof Boolean b)) {
            throw malformed(name, "is not a boolean");
        }
        return b;
    }

    byte[] bytes(String name) throws IOException {
        String s = string(name);
        try {
            return Base64.getDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            throw malformed(name, "is not valid base64");
        }
    }

    byte[] optBytes(String name) throws IOException {
        return values.get(name) == null ? null : bytes(name);
    }

    Instant instant(String name) throws IOException {
        String s = string(name);
        try {
            return Instant.parse(s);
        } catch (DateTimeParseException e) {
            throw malformed(name, "is not an RFC 3339 time");
        }
    }

    Instant optInstant(String name) throws IOException {
        return values.get(name) == null ? null : instant(name);
    }

    @SuppressWarnings("unchecked")
    Reply object(String name) throws IOException {
        if (!(required(name) instanceof Map<?, ?> m)) {
            throw malformed(name, "is not an object");
        }
        return new Reply(method, path + name + ".", (Map<String, Object>) m);
    }

    private List<?> list(String name) throws IOException {
        if (!(required(name) instanceof List<?> l)) {
            throw malformed(name, "is not an array");
        }
        return l;
    }

    List<String> strings(String name) throws IOException {
        List<?> l = list(name);
        List<String> out = new ArrayList<>(l.size());
        for (int i = 0; i < l.size(); i++) {
            if (!(l.get(i) instanceof String s)) {
                throw malformed(name + "[" + i + "]", "is not a string");
            }
            out.add(s);
        }
        return List.copyOf(out);
    }

    /** An array of 32-bit integers; empty when the field is absent. */
    List<Integer> int32sOrEmpty(String name) throws IOException {
        if (values.get(name) == null) return List.of();
        List<?> l = list(name);
        List<Integer> out = new ArrayList<>(l.size());
        for (int i = 0; i < l.size(); i++) {
            if (!(l.get(i) instanceof Long v) || v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
                throw malformed(name + "[" + i + "]", "is not a 32-bit integer");
            }
            out.add(v.intValue());
        }
        return List.copyOf(out);
    }

    @SuppressWarnings("unchecked")
    List<Reply> objects(String name) throws IOException {
        List<?> l = list(name);
        List<Reply> out = new ArrayList<>(l.size());
        for (int i = 0; i < l.size(); i++) {
            if (!(l.get(i) instanceof Map<?, ?> m)) {
                throw malformed(name + "[" + i + "]", "is not an object");
            }
            out.add(new Reply(method, path + name + "[" + i + "].", (Map<String, Object>) m));
        }
        return out;
    }
}
