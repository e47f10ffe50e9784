package dev.enclavekms.server;

import dev.enclavekms.json.Json;

import java.util.AbstractList;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A batch reply's {@code results}, encoded as JSON entry by entry while the batch runs
 * (issue 9: the reply of a 10,000-key DecryptBatch is about a megabyte; walking 10,000 maps
 * to write it after the device finished was on the call's critical path). The text is
 * exactly what {@link Json#write} makes of the list of entry maps it replaces.
 *
 * <p>As a {@code List} it shows each entry's outcome without its values: an empty map for
 * an entry that succeeded, {@code {"error", "message"}} for one that failed — what the
 * audit record counts. Filled by one thread, then read by others after it is done (the
 * batch's hand-over orders the two).
 */
final class EncodedResults extends AbstractList<Map<String, Object>> implements Json.Encoded {
    private static final Map<String, Object> SUCCEEDED = Map.of();

    private final StringBuilder json;
    private final List<Map<String, Object>> outcomes;

    /** @param expected entries expected, to size the text once */
    EncodedResults(int expected) {
        // ~70 characters of names and punctuation per entry beside its values (base64, key name).
        json = new StringBuilder(Math.max(16, expected * 128)).append('[');
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
        if (!outcomes.isEmpty()) json.append(',');
        json.append('{');
        for (int i = 0; i < fields.length; i += 2) {
            if (i > 0) json.append(',');
            Json.append(json, fields[i]).append(':');
            Json.append(json, fields[i + 1]);
        }
        json.append('}');
    }

    /** Overwrites the text (which holds plaintexts in base64) when the reply will not be sent. */
    void wipe() {
        for (int i = 0; i < json.length(); i++) {
            json.setCharAt(i, ' ');
        }
        json.setLength(0);
    }

    @Override
    public void appendTo(StringBuilder sb) {
        sb.append(json).append(']');
    }

    @Override
    public int length() {
        return json.length() + 1;
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
