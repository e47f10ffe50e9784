package dev.enclavekms.json;

/** Malformed or over-limit JSON. The message names the offset and the problem, never the input. */
public final class JsonException extends Exception {
    private final int offset;

    public JsonException(String message, int offset) {
        super(message + " at offset " + offset);
        this.offset = offset;
    }

    public int offset() {
        return offset;
    }
}
