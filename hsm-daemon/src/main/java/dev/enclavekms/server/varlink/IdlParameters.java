package dev.enclavekms.server.varlink;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the input parameter names of every method from a varlink IDL text, so that a
 * strict interface can refuse parameters its IDL does not declare — a misspelt
 * {@code contxt} must fail, not silently encrypt without a context.
 */
final class IdlParameters {
    private static final Pattern METHOD = Pattern.compile("\\bmethod\\s+([A-Z][A-Za-z0-9]*)\\s*\\(");

    private IdlParameters() {
    }

    static Map<String, Set<String>> of(String idl) {
        String text = idl.replaceAll("#[^\\n]*", "");
        Map<String, Set<String>> out = new LinkedHashMap<>();
        Matcher m = METHOD.matcher(text);
        while (m.find()) {
            int depth = 1;
            int i = m.end();
            int start = i;
            while (i < text.length() && depth > 0) {
                char c = text.charAt(i++);
                if (c == '(') depth++;
                if (c == ')') depth--;
            }
            if (depth != 0) {
                throw new IllegalArgumentException("unbalanced parentheses in method " + m.group(1));
            }
            out.put(m.group(1), names(text.substring(start, i - 1)));
        }
        return out;
    }

    /** Top-level field names of a struct body "a: T, b: ?(x: int), c: []string". */
    private static Set<String> names(String body) {
        Set<String> names = new LinkedHashSet<>();
        int depth = 0;
        StringBuilder field = new StringBuilder();
        for (int i = 0; i <= body.length(); i++) {
            char c = i < body.length() ? body.charAt(i) : ',';
            if (c == '(') depth++;
            if (c == ')') depth--;
            if (c == ',' && depth == 0) {
                String f = field.toString().trim();
                if (!f.isEmpty()) {
                    int colon = f.indexOf(':');
                    names.add((colon < 0 ? f : f.substring(0, colon)).trim());
                }
                field.setLength(0);
            } else {
                field.append(c);
            }
        }
        return names;
    }
}
