package dev.enclavekms.policy;

import java.util.regex.Pattern;

/**
 * A glob of a policy: {@code *} matches any run of characters (including none, and
 * including {@code /}), {@code ?} exactly one; every other character stands for itself.
 * There are no character classes or escapes, so a pattern reads the same to everyone.
 */
public final class Glob {
    private final String pattern;
    private final Pattern regex;
    /**
     * The pattern's literal part when it is {@code *}, a literal, or a literal then {@code *}
     * (most key patterns): matched without a regex, since every call is decided against the
     * patterns of its caller's grants. Null for any other shape.
     */
    private final String plain;
    private final boolean plainIsPrefix;

    private Glob(String pattern) {
        this.pattern = pattern;
        StringBuilder b = new StringBuilder();
        StringBuilder literal = new StringBuilder();
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c == '*' || c == '?') {
                if (!literal.isEmpty()) {
                    b.append(Pattern.quote(literal.toString()));
                    literal.setLength(0);
                }
                b.append(c == '*' ? ".*" : ".");
            } else {
                literal.append(c);
            }
        }
        if (!literal.isEmpty()) b.append(Pattern.quote(literal.toString()));
        this.regex = Pattern.compile(b.toString(), Pattern.DOTALL);
        String head = pattern.endsWith("*") ? pattern.substring(0, pattern.length() - 1) : pattern;
        boolean simple = head.indexOf('*') < 0 && head.indexOf('?') < 0;
        this.plain = simple ? head : null;
        this.plainIsPrefix = pattern.endsWith("*");
    }

    public static Glob of(String pattern) {
        if (pattern == null || pattern.isEmpty()) {
            throw new IllegalArgumentException("a pattern cannot be empty");
        }
        return new Glob(pattern);
    }

    public boolean matches(String s) {
        if (s == null) return false;
        if (plain != null) return plainIsPrefix ? s.startsWith(plain) : s.equals(plain);
        return regex.matcher(s).matches();
    }

    public String pattern() {
        return pattern;
    }

    @Override
    public String toString() {
        return pattern;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Glob g && g.pattern.equals(pattern);
    }

    @Override
    public int hashCode() {
        return pattern.hashCode();
    }
}
