package dev.enclavekms.manifest;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Manifest format 1 (docs/manifest.md): UTF-8 text, LF line ends, a header of seven
 * {@code # name: value} lines, then one {@code sha256sum} line per file,
 * {@code <64 lowercase hex>  <path>}, sorted by path. A path holding a backslash, LF or
 * CR is escaped as GNU sha256sum does it ({@code \\}, {@code \n}, {@code \r}, and a
 * {@code \} before the line), so {@code sha256sum -c} reads the file as it is.
 *
 * <p>There is exactly one encoding of each manifest: {@link #parse} accepts only what
 * {@link #write} produces, so the signed bytes and the parsed content cannot disagree.
 */
public final class ManifestFormat {
    public static final int VERSION = 1;
    /** The parser reads no more: about 400,000 files with 100-byte paths. */
    public static final int MAX_BYTES = 64 << 20;
    public static final Set<String> ALGORITHMS = Set.of("EC_P256_SHA256", "EC_P384_SHA384", "ED25519",
            "RSA_3072_PSS_SHA256");

    static final String MAGIC = "# enclave-kms manifest " + VERSION;
    private static final Pattern KEY_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");
    private static final Pattern CREATED = Pattern.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z");
    private static final Pattern NUMBER = Pattern.compile("0|[1-9][0-9]{0,18}");
    private static final Pattern HEX = Pattern.compile("[0-9a-f]{64}");
    private static final HexFormat HEXF = HexFormat.of();
    private static final String[] HEADER = {"key", "version", "algorithm", "created", "files", "bytes"};

    private ManifestFormat() {
    }

    /** The manifest's bytes. Its key, algorithm and paths must be valid, its entries sorted. */
    public static byte[] write(Manifest m) {
        if (!KEY_NAME.matcher(m.key()).matches() || !ALGORITHMS.contains(m.algorithm()) || m.version() < 1
                || m.bytes() < 0) {
            throw new IllegalArgumentException("invalid manifest header");
        }
        StringBuilder b = new StringBuilder(128 + m.entries().size() * 100);
        b.append(MAGIC).append('\n');
        b.append("# key: ").append(m.key()).append('\n');
        b.append("# version: ").append(m.version()).append('\n');
        b.append("# algorithm: ").append(m.algorithm()).append('\n');
        b.append("# created: ").append(created(m.created())).append('\n');
        b.append("# files: ").append(m.entries().size()).append('\n');
        b.append("# bytes: ").append(m.bytes()).append('\n');
        String previous = null;
        for (Manifest.Entry e : m.entries()) {
            String problem = ManifestPaths.problem(e.path());
            if (problem != null) {
                throw new IllegalArgumentException("path " + e.path() + ": " + problem);
            }
            if (previous != null && ManifestPaths.ORDER.compare(previous, e.path()) >= 0) {
                throw new IllegalArgumentException("entries not sorted: " + previous + ", " + e.path());
            }
            previous = e.path();
            boolean escape = needsEscape(e.path());
            if (escape) b.append('\\');
            b.append(HEXF.formatHex(e.sha256())).append("  ").append(escape ? escape(e.path()) : e.path()).append('\n');
        }
        return b.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** The instant as the header writes it: UTC, whole seconds, e.g. {@code 2026-11-22T14:03:07Z}. */
    public static String created(Instant t) {
        return DateTimeFormatter.ISO_INSTANT.format(t.truncatedTo(ChronoUnit.SECONDS));
    }

    /** Parses a manifest, accepting only the exact bytes {@link #write} gives. */
    public static Manifest parse(byte[] input) throws MalformedManifestException {
        if (input.length > MAX_BYTES) {
            throw new MalformedManifestException("larger than " + MAX_BYTES + " bytes");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(input)).toString();
        } catch (CharacterCodingException e) {
            throw new MalformedManifestException("not valid UTF-8");
        }
        if (!text.startsWith(MAGIC + "\n")) {
            throw new MalformedManifestException("line 1 is not '" + MAGIC + "' (not a manifest, or another format)");
        }
        if (!text.endsWith("\n")) {
            throw new MalformedManifestException("the last line does not end with a line feed");
        }
        String[] lines = text.substring(0, text.length() - 1).split("\n", -1);
        if (lines.length < 1 + HEADER.length) {
            throw new MalformedManifestException("the header is incomplete");
        }
        String[] values = new String[HEADER.length];
        for (int i = 0; i < HEADER.length; i++) {
            String prefix = "# " + HEADER[i] + ": ";
            if (!lines[i + 1].startsWith(prefix)) {
                throw new MalformedManifestException("line " + (i + 2) + " is not '" + prefix + "...'");
            }
            values[i] = lines[i + 1].substring(prefix.length());
        }
        String key = values[0];
        if (!KEY_NAME.matcher(key).matches()) {
            throw new MalformedManifestException("line 2: not a key name");
        }
        long version = number(values[1], 3, "version");
        if (version < 1 || version > Integer.MAX_VALUE) {
            throw new MalformedManifestException("line 3: version out of range");
        }
        String algorithm = values[2];
        if (!ALGORITHMS.contains(algorithm)) {
            throw new MalformedManifestException("line 4: unknown algorithm");
        }
        Instant created = created(values[3]);
        long files = number(values[4], 6, "files");
        long bytes = number(values[5], 7, "bytes");
        int first = 1 + HEADER.length;
        if (files != lines.length - first) {
            throw new MalformedManifestException("the header says " + files + " files, the manifest has "
                    + (lines.length - first) + " lines of files");
        }
        List<Manifest.Entry> entries = new ArrayList<>(lines.length - first);
        String previous = null;
        for (int i = first; i < lines.length; i++) {
            Manifest.Entry e = entry(lines[i], i + 1);
            if (previous != null && ManifestPaths.ORDER.compare(previous, e.path()) >= 0) {
                throw new MalformedManifestException("line " + (i + 1) + ": paths are not in strictly increasing"
                        + " byte order (sorted, no duplicates)");
            }
            previous = e.path();
            entries.add(e);
        }
        Manifest m = new Manifest(key, (int) version, algorithm, created, bytes, entries);
        if (!Arrays.equals(write(m), input)) {
            throw new MalformedManifestException("not in canonical form"); // a guard: the checks above should see it
        }
        return m;
    }

    private static Manifest.Entry entry(String line, int number) throws MalformedManifestException {
        boolean escaped = line.startsWith("\\");
        String rest = escaped ? line.substring(1) : line;
        if (rest.length() < 67 || !HEX.matcher(rest.substring(0, 64)).matches() || !rest.startsWith("  ", 64)) {
            throw new MalformedManifestException("line " + number + " is not '<64 lowercase hex>  <path>'");
        }
        String raw = rest.substring(66);
        String path;
        if (escaped) {
            path = unescape(raw, number);
            if (!needsEscape(path)) {
                throw new MalformedManifestException("line " + number + ": escaped, but the path needs no escape");
            }
        } else {
            if (raw.indexOf('\\') >= 0 || raw.indexOf('\r') >= 0) {
                throw new MalformedManifestException("line " + number + ": a path with '\\' or CR must be escaped");
            }
            path = raw;
        }
        String problem = ManifestPaths.problem(path);
        if (problem != null) {
            throw new MalformedManifestException("line " + number + ": path " + problem);
        }
        return new Manifest.Entry(path, HEXF.parseHex(rest, 0, 64));
    }

    private static long number(String s, int line, String what) throws MalformedManifestException {
        if (!NUMBER.matcher(s).matches()) {
            throw new MalformedManifestException("line " + line + ": " + what + " is not a decimal number");
        }
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new MalformedManifestException("line " + line + ": " + what + " is too large");
        }
    }

    private static Instant created(String s) throws MalformedManifestException {
        if (!CREATED.matcher(s).matches()) {
            throw new MalformedManifestException("line 5: created is not YYYY-MM-DDThh:mm:ssZ");
        }
        try {
            Instant t = Instant.parse(s);
            if (!created(t).equals(s)) {
                throw new MalformedManifestException("line 5: created is not a valid time");
            }
            return t;
        } catch (DateTimeParseException e) {
            throw new MalformedManifestException("line 5: created is not a valid time");
        }
    }

    static boolean needsEscape(String path) {
        return path.indexOf('\\') >= 0 || path.indexOf('\n') >= 0 || path.indexOf('\r') >= 0;
    }

    /** The path as a sha256sum line writes it: backslash, LF and CR escaped (also for printing one path per line). */
    public static String escape(String path) {
        return path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r");
    }

    private static String unescape(String s, int number) throws MalformedManifestException {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\r') {
                throw new MalformedManifestException("line " + number + ": CR in a line");
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (i + 1 == s.length()) {
                throw new MalformedManifestException("line " + number + ": '\\' at the end of the line");
            }
            char n = s.charAt(++i);
            switch (n) {
                case '\\' -> b.append('\\');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                default -> throw new MalformedManifestException("line " + number + ": unknown escape '\\" + n + "'");
            }
        }
        return b.toString();
    }
}
