package dev.enclavekms.policy;

import java.util.List;

/**
 * A policy file that cannot be used, with every problem found: where (line, 1-based;
 * 0 for the file as a whole) and why. The message is one {@code FILE:LINE: reason} per
 * problem, as compilers report errors.
 */
public final class PolicyException extends Exception {
    /** One problem of a policy file. */
    public record Problem(int line, String message) {
        @Override
        public String toString() {
            return (line > 0 ? "line " + line + ": " : "") + message;
        }
    }

    private final String source;
    private final List<Problem> problems;

    public PolicyException(String source, List<Problem> problems) {
        super(format(source, problems), null, false, false);
        this.source = source;
        this.problems = List.copyOf(problems);
    }

    public String source() {
        return source;
    }

    public List<Problem> problems() {
        return problems;
    }

    private static String format(String source, List<Problem> problems) {
        StringBuilder b = new StringBuilder();
        for (Problem p : problems) {
            if (!b.isEmpty()) b.append('\n');
            b.append(source).append(':');
            if (p.line() > 0) b.append(p.line()).append(':');
            b.append(' ').append(p.message());
        }
        return b.toString();
    }
}
