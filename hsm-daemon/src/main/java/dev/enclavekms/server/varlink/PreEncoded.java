package dev.enclavekms.server.varlink;

import dev.enclavekms.json.Json;

/**
 * A reply value that is already JSON text encoded as UTF-8 (a batch reply's megabyte of
 * results, issue 9). When it is a reply's only parameter, {@link Connection#replyFrame}
 * copies its bytes into the frame once, instead of the value passing through the writer's
 * text, a {@code String} and its UTF-8 copy (three copies of a megabyte after the device's
 * last entry). As a {@link Json.Encoded} it writes the same text anywhere else.
 */
public interface PreEncoded extends Json.Encoded {
    /** The length of the UTF-8 text. */
    int utf8Length();

    /** Copies the UTF-8 text into {@code frame} at {@code offset}. */
    void copyUtf8(byte[] frame, int offset);
}
