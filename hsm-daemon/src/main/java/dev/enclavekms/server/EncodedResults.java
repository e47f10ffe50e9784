package dev.enclavekms.server;

import dev.enclavekms.json.Json;
import dev.enclavekms.server.varlink.PreEncoded;

import java.nio.charset.StandardCharsets;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A batch reply's {@code results}, encoded as JSON entry by entry while the batch runs
 * (issue 9: the reply of a 10,000-key DecryptBatch is about a megabyte; walking 10,000 maps
 * to write it after the device finished was on the call's critical path). The text is
 * exactly what {@link Json#write} makes of the list of entry maps it replaces, held as UTF-8
 * so that the reply frame copies it once ({@link PreEncoded}).
 *
 * <p>As a {@code List} it shows each entry's outcome without its values: an empty map for
 * an entry that succeeded, {@code {"error", "message"}} for one that failed — what the
 * audit record counts. Filled by one thread, then read by others after it is done (the
 * batch's hand-over orders the two).
 */
final class EncodedResults extends AbstractList<Map<String, Object>> implements PreEncoded {
    private static final Map<String, Object> SUCCEEDED = Map.of();

    /**
     * The text so far, '[' and the entries; {@link #copyUtf8} adds the closing ']'. Allocated
     * by the first entry (on the batch's encoding thread), not before the device starts.
     */
    private byte[] utf8 = {'['};
    private int length = 1;
    private final int expected;
    /** One entry's text, reused: written by {@link Json#append}, then copied into {@link #utf8}. */
    private final StringBuilder entry = new StringBuilder(256);
    private final List<Map<String, Object>> outcomes;

    /** @param expected entries expected, to size the text once */
    EncodedResults(int expected) {
        this.expected = expected;
        outcomes = new ArrayList<>(expected);
    }

    /** Appends an entry that succeeded: its fields as name, value pairs, in the reply's order. */
    void addSuccess(Object... fields) {
        append(fields);
        outcomes.add(SUCCEEDED);
    }

    /** Appends an entry that failed, as every batch reply gives one. */
    void addFailure(String error, String message) {
        append("error", error, "message", message);
        outcomes.add(Map.of("error", error, "message", message));
    }

    private void append(Object... fields) {
        entry.setLength(0);
        if (!outcomes.isEmpty()) entry.append(',');
        entry.append('{');
        for (int i = 0; i < fields.length; i += 2) {
            if (i > 0) entry.append(',');
            Json.append(entry, fields[i]).append(':');
            Json.append(entry, fields[i + 1]);
        }
        entry.append('}');
        appendUtf8(entry);
    }

    /** Copies the entry's text as UTF-8: byte by byte while it is ASCII (base64, names), else through the JDK's encoder. */
    private void appendUtf8(CharSequence text) {
        int n = text.length();
        ensure(n);
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if (c >= 0x80) {
                byte[] bytes = text.subSequence(i, n).toString().getBytes(StandardCharsets.UTF_8);
                ensure(bytes.length);
                System.arraycopy(bytes, 0, utf8, length, bytes.length);
                length += bytes.length;
                return;
            }
            utf8[length++] = (byte) c;
        }
    }

    /** Room for {@code more} bytes after {@link #length}. */
    private void ensure(int more) {
        if (length + more > utf8.length) {
            // First the expected size, once: ≈ 90 bytes per DecryptBatch entry (a 32-byte key's
            // base64, names, punctuation) and a short key name; then doubling.
            int size = utf8.length == 1 ? expected * 112 : utf8.length * 2;
            byte[] bigger = Arrays.copyOf(utf8, Math.max(size, length + more));
            Arrays.fill(utf8, (byte) 0); // the old copy holds plaintexts in base64
            utf8 = bigger;
        }
    }

    private static void wipe(StringBuilder sb) {
        for (int i = 0; i < sb.length(); i++) {
            sb.setCharAt(i, ' ');
        }
        sb.setLength(0);
    }

    /** Overwrites the text (which holds plaintexts in base64) when the reply will not be sent. */
    void wipe() {
        Arrays.fill(utf8, (byte) 0);
        utf8 = new byte[] {'['};
        length = 1;
        wipe(entry);
    }

    @Override
    public int utf8Length() {
        return length + 1;
    }

    @Override
    public void copyUtf8(byte[] frame, int offset) {
        System.arraycopy(utf8, 0, frame, offset, length);
        frame[offset + length] = ']';
    }

    @Override
    public void appendTo(StringBuilder sb) {
        sb.append(new String(utf8, 0, length, StandardCharsets.UTF_8)).append(']');
    }

    @Override
    public int length() {
        return utf8Length(); // in chars when all is ASCII; a size hint otherwise
    }

    @Override
    public Map<String, Object> get(int index) {
        return outcomes.get(index);
    }

    @Override
    public int size() {
        return outcomes.size();
    }
}
