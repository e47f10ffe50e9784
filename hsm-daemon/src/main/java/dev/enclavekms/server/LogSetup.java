package dev.enclavekms.server;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Daemon logging to stderr. Under systemd (JOURNAL_STREAM set) each line starts with
 * its syslog priority ({@code <3>} error … {@code <7>} debug) and carries no timestamp,
 * since the journal adds its own; on a terminal, lines carry a UTC time and the level.
 * Stack traces are logged only for internal faults, never for a caller's bad input.
 */
public final class LogSetup {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
            .withZone(ZoneOffset.UTC);

    private LogSetup() {
    }

    public static void configure(boolean verbose) {
        boolean journal = System.getenv("JOURNAL_STREAM") != null;
        LogManager.getLogManager().reset();
        Logger root = Logger.getLogger("");
        // ConsoleHandler writes to System.err (replacing its stream would close System.err).
        Handler h = new ConsoleHandler();
        h.setLevel(Level.ALL);
        h.setFormatter(new Formatter() {
            @Override
            public String format(LogRecord r) {
                StringBuilder sb = new StringBuilder(128);
                if (journal) {
                    sb.append('<').append(priority(r.getLevel())).append('>');
                } else {
                    sb.append(TIME.format(Instant.ofEpochMilli(r.getMillis()))).append(' ')
                            .append(String.format("%-5s", levelName(r.getLevel()))).append(' ');
                }
                String logger = r.getLoggerName() == null ? "" : r.getLoggerName();
                sb.append(logger.substring(logger.lastIndexOf('.') + 1)).append(": ").append(escape(formatMessage(r)));
                if (r.getThrown() != null) {
                    // One journal entry per line: continuation lines repeat the priority.
                    String prefix = "\n" + (journal ? "<" + priority(r.getLevel()) + ">" : "") + "    ";
                    appendTrace(sb, r.getThrown(), prefix);
                }
                return sb.append('\n').toString();
            }
        });
        root.addHandler(h);
        root.setLevel(verbose ? Level.FINE : Level.INFO);
        // Third-party libraries speak only when something is wrong.
        Logger.getLogger("org.xipki").setLevel(Level.WARNING);
        Logger.getLogger("org.sqlite").setLevel(Level.WARNING);
    }

    /**
     * Control characters in a message (which may quote a caller's input or a token's
     * label) are escaped, so no input can forge a log line or a journal priority.
     */
    static String escape(String s) {
        StringBuilder out = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                if (out == null) out = new StringBuilder(s.length() + 16).append(s, 0, i);
                out.append(switch (c) {
                    case '\n' -> "\\n";
                    case '\r' -> "\\r";
                    case '\t' -> "\\t";
                    default -> String.format("\\x%02x", (int) c);
                });
            } else if (out != null) {
                out.append(c);
            }
        }
        return out == null ? s : out.toString();
    }

    /** The throwable and its causes, one frame per line (a cause chain is bounded to 8). */
    private static void appendTrace(StringBuilder sb, Throwable t, String prefix) {
        for (int depth = 0; t != null && depth < 8; depth++, t = t.getCause()) {
            sb.append(prefix).append(depth == 0 ? "" : "caused by: ").append(escape(String.valueOf(t)));
            for (StackTraceElement e : t.getStackTrace()) {
                sb.append(prefix).append("  at ").append(e);
            }
        }
    }

    private static String levelName(Level l) {
        return switch (priority(l)) {
            case 3 -> "ERROR";
            case 4 -> "WARN";
            case 6 -> "INFO";
            default -> "DEBUG";
        };
    }

    static int priority(Level l) {
        int v = l.intValue();
        if (v >= Level.SEVERE.intValue()) return 3;
        if (v >= Level.WARNING.intValue()) return 4;
        if (v >= Level.INFO.intValue()) return 6;
        return 7;
    }
}
