package dev.enclavekms.cli;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Durations as operators write them: {@code 90d}, {@code 12h}, {@code 1d12h}, {@code 30m},
 * {@code 2w}, ISO 8601 ({@code P90D}, {@code PT12H}), or {@code 0} (off). A bare number
 * other than 0 is refused: "90" could mean seconds or days, and guessing wrong rotates a
 * key 86,400 times too often. Printed back in the same compact form, so what kmsctl
 * shows can be pasted into a command.
 */
final class Durations {
    private static final Pattern PART = Pattern.compile("(\\d+)([wdhms])");

    private Durations() {
    }

    static Duration parse(String text) {
        String s = text.strip().toLowerCase(java.util.Locale.ROOT);
        if (s.equals("0")) {
            return Duration.ZERO;
        }
        if (s.startsWith("p")) {
            try {
                Duration d = Duration.parse(s.toUpperCase(java.util.Locale.ROOT));
                if (d.isNegative()) throw new IllegalArgumentException("negative");
                return d;
            } catch (DateTimeParseException | IllegalArgumentException e) {
                throw new IllegalArgumentException("'" + text + "' is not an ISO 8601 duration such as P90D");
            }
        }
        Matcher m = PART.matcher(s);
        int at = 0;
        long seconds = 0;
        try {
            while (at < s.length()) {
                if (!m.find(at) || m.start() != at) {
                    throw new IllegalArgumentException(bad(text));
                }
                long unit = switch (m.group(2)) {
                    case "w" -> 7 * 86400L;
                    case "d" -> 86400L;
                    case "h" -> 3600L;
                    case "m" -> 60L;
                    default -> 1L;
                };
                seconds = Math.addExact(seconds, Math.multiplyExact(Long.parseLong(m.group(1)), unit));
                at = m.end();
            }
        } catch (ArithmeticException | NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too long a duration");
        }
        if (at == 0) {
            throw new IllegalArgumentException(bad(text));
        }
        return Duration.ofSeconds(seconds);
    }

    private static String bad(String text) {
        return "'" + text + "' is not a duration: give a number with a unit (e.g. 90d, 12h, 1d12h, 30m) or 0";
    }

    /** {@code 90d}, {@code 1d12h}, {@code 45s}; {@code 0s} for zero. */
    static String format(Duration d) {
        long s = d.getSeconds();
        if (s == 0) return "0s";
        StringBuilder b = new StringBuilder();
        long[] units = {86400, 3600, 60, 1};
        String[] names = {"d", "h", "m", "s"};
        for (int i = 0; i < units.length; i++) {
            if (s >= units[i]) {
                b.append(s / units[i]).append(names[i]);
                s %= units[i];
            }
        }
        return b.toString();
    }

    static final class Converter implements ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            try {
                return parse(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
