package dev.enclavekms.shard;

import java.io.IOException;

/**
 * A shard file that cannot be decrypted as it is: not a shard, a header that is malformed
 * or fails authentication, a different context, a segment that fails authentication, a
 * file that was cut short or extended. The {@link #reason()} says which; the message says
 * it for a person, naming the segment where there is one.
 *
 * <p>When this is thrown for a segment, nothing of that segment's plaintext has been
 * released (the library decrypts into its own buffers and copies out only what
 * authenticated). With the streaming forms, the segments <em>before</em> it have already
 * been written: treat output as unusable unless decryption finished without an exception.
 *
 * <p>An {@link IOException}, so that it travels through {@code InputStream} and channel
 * APIs; failures of the KMS while unwrapping the data key are
 * {@link dev.enclavekms.client.KmsException}s instead, and plain I/O failures plain
 * IOExceptions.
 */
public final class ShardException extends IOException {

    /** What is wrong. Stable names: callers may switch on them. */
    public enum Reason {
        /** The file does not start with the shard magic: not a shard file. */
        NOT_A_SHARD,
        /** A shard of a format version or suite this library does not know. */
        UNSUPPORTED_FORMAT,
        /** The header's structure is invalid (a length out of bounds, a non-canonical context ...). */
        MALFORMED_HEADER,
        /** The caller expects another context than the one the header carries. */
        CONTEXT_MISMATCH,
        /**
         * The header tag does not verify: the header was changed, or its wrapped data key
         * was replaced by one for another data key.
         */
        HEADER_AUTHENTICATION_FAILED,
        /** A segment fails authentication: it was changed, moved, or comes from another file. */
        SEGMENT_AUTHENTICATION_FAILED,
        /** The file ends early: inside the header, inside a segment, or at a segment that is not the last. */
        TRUNCATED,
        /** Data follows the final segment. */
        TRAILING_DATA,
    }

    private final Reason reason;
    private final long segment;

    /**
     * @param segment the index of the segment concerned, or -1 when none
     */
    public ShardException(Reason reason, long segment, String message) {
        super(message);
        this.reason = reason;
        this.segment = segment;
    }

    public Reason reason() {
        return reason;
    }

    /** The index of the segment concerned (0 is the first), or -1 when the failure is not about one segment. */
    public long segment() {
        return segment;
    }
}
