package dev.enclavekms.client;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A varlink interface description read from its IDL text, able to check a JSON value
 * (as {@link dev.enclavekms.json.Json} parses it) against a method's input or output or
 * an error's parameters. The wire-contract tests use it so that the IDL file — not a
 * hand-written copy of it — decides what the client must send and what a reply may hold.
 *
 * <p>Covers the grammar of varlink.org: {@code string int float bool object}, {@code ?T},
 * {@code []T}, {@code [string]T}, named types, inline structs and enums.
 */
public final class VarlinkIdl {
    sealed interface Type { }
    record Primitive(String name) implements Type { }
    record Nullable(Type inner) implements Type { }
    record ArrayOf(Type element) implements Type { }
    record MapOf(Type value) implements Type { }
    record Struct(Map<String, Type> fields) implements Type { }
    record Enum(Set<String> values) implements Type { }
    record Named(String name) implements Type { }

    public record Method(Struct in, Struct out) { }

    private final String name;
    private final Map<String, Type> types = new LinkedHashMap<>();
    private final Map<String, Method> methods = new LinkedHashMap<>();
    private final Map<String, Struct> errors = new LinkedHashMap<>();

    // parser state
    private final List<String> tokens;
    private int pos;

    private VarlinkIdl(String text) {
        this.tokens = tokenize(text);
        expect("interface");
        this.name = next();
        while (pos < tokens.size()) {
            String keyword = next();
            String member = next();
            switch (keyword) {
                case "type" -> types.put(member, structOrEnum());
                case "method" -> {
                    Struct in = (Struct) structOrEnum();
                    expect("->");
                    methods.put(member, new Method(in, (Struct) structOrEnum()));
                }
                case "error" -> errors.put(member, (Struct) structOrEnum());
                default -> throw new IllegalArgumentException("unexpected '" + keyword + "' in IDL");
            }
        }
    }

    public static VarlinkIdl parse(String text) {
        return new VarlinkIdl(text);
    }

    /** Reads an IDL shipped in the daemon's resources, e.g. {@code dev.enclavekms.Kms}. */
    public static String resourceText(String interfaceName) {
        try (InputStream in = VarlinkIdl.class.getResourceAsStream("/varlink/" + interfaceName + ".varlink")) {
            if (in == null) throw new IllegalArgumentException("no IDL resource for " + interfaceName);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public String name() {
        return name;
    }

    public Map<String, Method> methods() {
        return methods;
    }

    /** Error short name → parameter struct. */
    public Map<String, Struct> errors() {
        return errors;
    }

    // ------------------------------------------------------------------ parsing

    private static List<String> tokenize(String text) {
        List<String> out = new ArrayList<>();
        for (String line : text.split("\n")) {
            int hash = line.indexOf('#');
            String s = hash >= 0 ? line.substring(0, hash) : line;
            int i = 0;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (Character.isWhitespace(c)) {
                    i++;
                } else if (s.startsWith("->", i)) {
                    out.add("->");
                    i += 2;
                } else if ("()[]?:,".indexOf(c) >= 0) {
                    out.add(String.valueOf(c));
                    i++;
                } else if (Character.isLetterOrDigit(c) || c == '_' || c == '.') {
                    int start = i;
                    while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_'
                            || s.charAt(i) == '.')) {
                        i++;
                    }
                    out.add(s.substring(start, i));
                } else {
                    throw new IllegalArgumentException("unexpected character '" + c + "' in IDL");
                }
            }
        }
        return out;
    }

    private String next() {
        if (pos >= tokens.size()) throw new IllegalArgumentException("IDL ends early");
        return tokens.get(pos++);
    }

    private String peek(int ahead) {
        return pos + ahead < tokens.size() ? tokens.get(pos + ahead) : "";
    }

    private void expect(String t) {
        String n = next();
        if (!n.equals(t)) throw new IllegalArgumentException("expected '" + t + "' but found '" + n + "' in IDL");
    }

    private Type structOrEnum() {
        expect("(");
        if (peek(0).equals(")")) {
            pos++;
            return new Struct(Map.of());
        }
        if (!peek(1).equals(":")) {
            Set<String> values = new LinkedHashSet<>();
            values.add(next());
            while (peek(0).equals(",")) {
                pos++;
                values.add(next());
            }
            expect(")");
            return new Enum(values);
        }
        Map<String, Type> fields = new LinkedHashMap<>();
        while (true) {
            String field = next();
            expect(":");
            fields.put(field, type());
            String t = next();
            if (t.equals(")")) return new Struct(fields);
            if (!t.equals(",")) throw new IllegalArgumentException("expected ',' or ')' in IDL, found " + t);
        }
    }

    private Type type() {
        String t = peek(0);
        switch (t) {
            case "?" -> {
                pos++;
                return new Nullable(type());
            }
            case "[" -> {
                pos++;
                if (peek(0).equals("]")) {
                    pos++;
                    return new ArrayOf(type());
                }
                expect("string");
                expect("]");
                return new MapOf(type());
            }
            case "(" -> {
                return structOrEnum();
            }
            case "string", "int", "float", "bool", "object" -> {
                pos++;
                return new Primitive(t);
            }
            default -> {
                pos++;
                return new Named(t);
            }
        }
    }

    // --------------------------------------------------------------- validation

    /** Violations of {@code value} (a parameters object; null = absent = {}) against {@code struct}. */
    public List<String> check(Struct struct, Object value) {
        List<String> out = new ArrayList<>();
        check(struct, value == null ? Map.of() : value, "", out);
        return out;
    }

    private void check(Type type, Object v, String path, List<String> out) {
        switch (type) {
            case Nullable n -> {
                if (v != null) check(n.inner(), v, path, out);
            }
            case Primitive p -> {
                boolean ok = switch (p.name()) {
                    case "string" -> v instanceof String;
                    // Requests arrive parsed (always Long); replies are built by tests (Integer is fine).
                    case "int" -> v instanceof Long || v instanceof Integer;
                    case "float" -> v instanceof Number;
                    case "bool" -> v instanceof Boolean;
                    default -> v != null;
                };
                if (!ok) out.add(path + ": expected " + p.name() + " but got " + describe(v));
            }
            case ArrayOf a -> {
                if (!(v instanceof List<?> l)) {
                    out.add(path + ": expected an array but got " + describe(v));
                    return;
                }
                for (int i = 0; i < l.size(); i++) check(a.element(), l.get(i), path + "[" + i + "]", out);
            }
            case MapOf m -> {
                if (!(v instanceof Map<?, ?> map)) {
                    out.add(path + ": expected a map but got " + describe(v));
                    return;
                }
                for (Map.Entry<?, ?> e : map.entrySet()) check(m.value(), e.getValue(), path + "[" + e.getKey() + "]", out);
            }
            case Struct s -> {
                if (!(v instanceof Map<?, ?> map)) {
                    out.add(path + ": expected an object but got " + describe(v));
                    return;
                }
                String prefix = path.isEmpty() ? "" : path + ".";
                for (Map.Entry<String, Type> f : s.fields().entrySet()) {
                    check(f.getValue(), map.get(f.getKey()), prefix + f.getKey(), out);
                }
                for (Object k : map.keySet()) {
                    if (!s.fields().containsKey((String) k)) out.add(prefix + k + ": not in the IDL");
                }
            }
            case Enum e -> {
                if (!(v instanceof String str) || !e.values().contains(str)) {
                    out.add(path + ": expected one of " + e.values() + " but got " + describe(v));
                }
            }
            case Named n -> {
                Type t = types.get(n.name());
                if (t == null) out.add(path + ": unknown type " + n.name());
                else check(t, v, path, out);
            }
        }
    }

    private static String describe(Object v) {
        return v == null ? "nothing" : v.getClass().getSimpleName();
    }

    /** A value of {@code type} for building IDL-shaped error parameters: strings are {@code <field>-value}, ints 7. */
    public Object sample(Type type, String field) {
        return switch (type) {
            case Nullable n -> sample(n.inner(), field);
            case Primitive p -> switch (p.name()) {
                case "string" -> field + "-value";
                case "int" -> 7L;
                case "float" -> 0.5;
                case "bool" -> true;
                default -> Map.of();
            };
            case ArrayOf a -> List.of(sample(a.element(), field));
            case MapOf m -> Map.of("k", sample(m.value(), field));
            case Struct s -> {
                Map<String, Object> m = new LinkedHashMap<>();
                s.fields().forEach((f, t) -> m.put(f, sample(t, f)));
                yield m;
            }
            case Enum e -> e.values().iterator().next();
            case Named n -> sample(types.get(n.name()), field);
        };
    }
}
