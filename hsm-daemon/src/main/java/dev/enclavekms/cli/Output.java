package dev.enclavekms.cli;

import dev.enclavekms.json.Json;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Everything kmsctl prints: {@code key: value} blocks for records, aligned tables for
 * lists, JSON for {@code --json}, raw bytes for plaintext. Text from the daemon is
 * printed with control characters escaped, so a key description cannot drive the
 * terminal; raw bytes the user asked for are written untouched.
 */
final class Output {
    private final PrintStream out;
    private final boolean json;

    Output(PrintStream out, boolean json) {
        this.out = out;
        this.json = json;
    }

    /** True when the user asked for {@code --json}. */
    boolean json() {
        return json;
    }

    void json(Map<String, Object> reply) {
        out.println(Json.write(reply));
    }

    void line(String s) {
        out.println(clean(s));
    }

    /** Text the daemon produced that is meant to be printed verbatim (PEM, IDL), control characters still escaped. */
    void text(String s) {
        String c = clean(s);
        out.print(c.endsWith("\n") ? c : c + "\n");
    }

    void raw(byte[] bytes) {
        out.write(bytes, 0, bytes.length);
        out.flush();
    }

    /** A {@code key: value} block, values aligned. */
    static final class Fields {
        private final List<String[]> rows = new ArrayList<>();

        Fields add(String name, Object value) {
            rows.add(new String[] {name, String.valueOf(value)});
            return this;
        }
    }

    void fields(Fields f) {
        int width = 0;
        for (String[] r : f.rows) width = Math.max(width, r[0].length());
        for (String[] r : f.rows) {
            out.println(r[0] + ":" + " ".repeat(width - r[0].length() + 2) + clean(r[1]));
        }
    }

    /** An aligned table with a header line; columns separated by two spaces, no trailing blanks. */
    void table(List<String> headers, List<List<String>> rows) {
        int[] width = new int[headers.size()];
        for (int i = 0; i < width.length; i++) width[i] = headers.get(i).length();
        List<List<String>> cleaned = new ArrayList<>();
        for (List<String> row : rows) {
            List<String> c = new ArrayList<>();
            for (int i = 0; i < width.length; i++) {
                String v = clean(row.get(i));
                width[i] = Math.max(width[i], v.length());
                c.add(v);
            }
            cleaned.add(c);
        }
        out.println(tableLine(headers, width));
        for (List<String> row : cleaned) out.println(tableLine(row, width));
    }

    private static String tableLine(List<String> cells, int[] width) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < cells.size(); i++) {
            if (i > 0) b.append("  ");
            b.append(cells.get(i));
            if (i < cells.size() - 1) b.append(" ".repeat(width[i] - cells.get(i).length()));
        }
        // An empty last cell (e.g. PRIMARY of a version that is not) would leave the padding behind.
        return b.toString().stripTrailing();
    }

    /**
     * Writes {@code bytes} to {@code file}, replacing it. A secret goes into a new file
     * made readable by its owner only (0600); an existing file keeps its mode.
     */
    static void writeFile(Path file, byte[] bytes, boolean secret) {
        try {
            if (secret) {
                try {
                    Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                } catch (FileAlreadyExistsException exists) {
                    // overwrite below; the owner chose this file and its mode
                } catch (UnsupportedOperationException noPosix) {
                    // not a POSIX file system: the platform's defaults apply
                }
            }
            try (OutputStream o = Files.newOutputStream(file, StandardOpenOption.CREATE,
                    StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
                o.write(bytes);
            }
        } catch (IOException e) {
            throw CliFailure.local("cannot write " + file + ": " + Inputs.reason(e));
        }
    }

    /** Escapes C0 controls (but tab and newline), DEL and C1 controls as {@code \xNN}. */
    static String clean(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean control = (c < 0x20 && c != '\n' && c != '\t') || (c >= 0x7f && c < 0xa0);
            if (control) {
                if (b == null) b = new StringBuilder(s.length() + 8).append(s, 0, i);
                b.append(String.format("\\x%02x", (int) c));
            } else if (b != null) {
                b.append(c);
            }
        }
        return b == null ? s : b.toString();
    }

    /** {@code 1d 2h 3m 4s}, leading zero units left out. */
    static String duration(long seconds) {
        long d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60, s = seconds % 60;
        StringBuilder b = new StringBuilder();
        if (d > 0) b.append(d).append("d ");
        if (d > 0 || h > 0) b.append(h).append("h ");
        if (d > 0 || h > 0 || m > 0) b.append(m).append("m ");
        return b.append(s).append('s').toString();
    }

    static String list(List<String> values) {
        return values.isEmpty() ? "none" : String.join(", ", values);
    }
}
