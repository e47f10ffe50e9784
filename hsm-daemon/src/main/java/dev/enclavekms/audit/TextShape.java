package dev.enclavekms.audit;

/**
 * A shape a recorded string must have to appear in clear — a first character from one set,
 * the rest from another, a length within bounds — checked with a table rather than a regex:
 * {@link CallAuditor} checks several values of every call (method, outcome, key names,
 * context keys), and the regex matchers were a measurable part of a call's CPU.
 *
 * <p>Sets are written like regex character classes without the brackets: {@code A-Za-z0-9._-}
 * (a {@code -} between two characters is a range, elsewhere it stands for itself). ASCII only.
 */
final class TextShape {
    private final boolean[] first;
    private final boolean[] rest;
    private final int min;
    private final int max;

    private TextShape(String firstChars, String restChars, int min, int max) {
        this.first = table(firstChars);
        this.rest = table(restChars);
        this.min = min;
        this.max = max;
    }

    /** {@code [chars]{min,max}} */
    static TextShape of(String chars, int min, int max) {
        return new TextShape(chars, chars, min, max);
    }

    /** {@code [firstChars][restChars]{min - 1,max - 1}} */
    static TextShape of(String firstChars, String restChars, int min, int max) {
        return new TextShape(firstChars, restChars, min, max);
    }

    boolean matches(String s) {
        int n = s.length();
        if (n < min || n > max) return false;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c >= 128 || !(i == 0 ? first : rest)[c]) return false;
        }
        return true;
    }

    private static boolean[] table(String chars) {
        boolean[] t = new boolean[128];
        for (int i = 0; i < chars.length(); i++) {
            char from = chars.charAt(i);
            char to = from;
            if (i + 2 < chars.length() && chars.charAt(i + 1) == '-') {
                to = chars.charAt(i + 2);
                i += 2;
            }
            for (char c = from; c <= to; c++) {
                t[c] = true;
            }
        }
        return t;
    }
}
