package dev.enclavekms.shard;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The constants of shard format 1 (docs/formats.md, "Shard files, format 1") and the two
 * encodings it shares with the KMS: the canonical context encoding, and the leading fields
 * of the ciphertext envelope that the header carries as its wrapped data key.
 *
 * <p>Every number here is part of the format: changing one makes a different format.
 */
public final class ShardFormat {
    private ShardFormat() {
    }

    /** {@code 45 4B 53}, "EKS" (the KMS envelope is "EKC"). */
    static final byte[] MAGIC = {0x45, 0x4B, 0x53};
    /** The format version this library reads and writes. */
    public static final int VERSION = 1;
    /** Suite 1: HKDF-SHA256 key derivation, AES-256-GCM segments, HMAC-SHA256 header tag. */
    public static final int SUITE_HKDF_SHA256_AES256_GCM = 1;

    /** Length of the per-file HKDF salt. */
    public static final int SALT_BYTES = 32;
    /** Length of the per-file nonce prefix (as Tink's AES-GCM-HKDF streaming AEAD). */
    public static final int NONCE_PREFIX_BYTES = 7;
    /** Length of a segment's GCM nonce: prefix, u32 segment index, last-segment flag. */
    static final int NONCE_BYTES = NONCE_PREFIX_BYTES + 4 + 1;
    /** Length of a segment's GCM tag. */
    public static final int TAG_BYTES = 16;
    /** Length of the header tag (HMAC-SHA256). */
    public static final int HEADER_TAG_BYTES = 32;
    /** Length of the data key the KMS wraps: AES-256. */
    public static final int DATA_KEY_BYTES = 32;

    /** Smallest segment size (plaintext bytes per segment). */
    public static final int MIN_SEGMENT_SIZE = 64;
    /** Largest segment size: 64 MiB, so that a reader's buffers stay bounded. */
    public static final int MAX_SEGMENT_SIZE = 64 << 20;
    /** The default segment size: 1 MiB. */
    public static final int DEFAULT_SEGMENT_SIZE = 1 << 20;
    /** Segment indexes are unsigned 32-bit numbers. */
    public static final long MAX_SEGMENTS = 1L << 32;

    /** Key names are 1..128 bytes of UTF-8, as in the envelope. */
    public static final int MAX_KEY_NAME_BYTES = 128;
    /** Bound on the wrapped data key (an envelope of a 32-byte key is under 200 bytes). */
    public static final int MAX_WRAPPED_KEY_BYTES = 1024;
    /** Context limits, as for the KMS's context. */
    public static final int MAX_CONTEXT_ENTRIES = 64;
    public static final int MAX_CONTEXT_FIELD_BYTES = 1024;

    /** Offset of the context in the header: magic, version, suite, segment size, salt, nonce prefix. */
    static final int FIXED_BYTES = 3 + 1 + 1 + 4 + SALT_BYTES + NONCE_PREFIX_BYTES;

    /** HKDF info label; the parameters digest follows it. */
    static final byte[] KDF_LABEL = "enclave-kms shard 1".getBytes(StandardCharsets.US_ASCII);

    /** Envelope format 1 ("EKC"), as docs/formats.md specifies it. */
    private static final byte[] ENVELOPE_MAGIC = {0x45, 0x4B, 0x43};

    // ---------------------------------------------------------------- context encoding

    /**
     * The canonical encoding of a context (docs/formats.md, "Encryption context"): u16
     * count, then per entry in ascending order of the key's UTF-8 bytes (unsigned): u16
     * length, key, u16 length, value.
     *
     * @param context null or empty for none
     * @throws IllegalArgumentException when the context breaks the limits or has an empty key
     */
    public static byte[] encodeContext(Map<String, String> context) {
        Map<String, String> sorted = canonicalContext(context);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(sorted.size() >>> 8);
        out.write(sorted.size());
        for (Map.Entry<String, String> e : sorted.entrySet()) {
            writeField(out, e.getKey());
            writeField(out, e.getValue());
        }
        return out.toByteArray();
    }

    /**
     * The context as an unmodifiable map sorted in canonical order, checked against the
     * limits. Null means the empty context.
     */
    static Map<String, String> canonicalContext(Map<String, String> context) {
        TreeMap<String, String> sorted = new TreeMap<>(ShardFormat::compareUtf8);
        if (context == null) {
            return Collections.unmodifiableMap(sorted);
        }
        if (context.size() > MAX_CONTEXT_ENTRIES) {
            throw new IllegalArgumentException("a context has at most " + MAX_CONTEXT_ENTRIES + " entries");
        }
        for (Map.Entry<String, String> e : context.entrySet()) {
            String k = Objects.requireNonNull(e.getKey(), "context key");
            String v = Objects.requireNonNull(e.getValue(), "context value");
            if (k.isEmpty()) {
                throw new IllegalArgumentException("context keys must not be empty");
            }
            if (utf8(k).length > MAX_CONTEXT_FIELD_BYTES || utf8(v).length > MAX_CONTEXT_FIELD_BYTES) {
                throw new IllegalArgumentException("context keys and values are limited to "
                        + MAX_CONTEXT_FIELD_BYTES + " bytes of UTF-8");
            }
            sorted.put(k, v);
        }
        return Collections.unmodifiableMap(sorted);
    }

    /**
     * Decodes a canonical context encoding from {@code in} (advancing it), refusing
     * anything that is not canonical: entries out of order or repeated, an empty key,
     * fields over the limit, invalid UTF-8. So a header's bytes and its parsed form
     * correspond one to one.
     *
     * @throws ShardException MALFORMED_HEADER
     */
    static Map<String, String> decodeContext(ByteBuffer in) throws ShardException {
        int count = u16(in);
        if (count > MAX_CONTEXT_ENTRIES) {
            throw malformed("the context has " + count + " entries; at most " + MAX_CONTEXT_ENTRIES);
        }
        TreeMap<String, String> map = new TreeMap<>(ShardFormat::compareUtf8);
        byte[] previous = null;
        for (int i = 0; i < count; i++) {
            byte[] k = field(in);
            byte[] v = field(in);
            if (k.length == 0) {
                throw malformed("the context has an empty key");
            }
            if (previous != null && Arrays.compareUnsigned(previous, k) >= 0) {
                throw malformed("the context is not in canonical order");
            }
            previous = k;
            map.put(strictUtf8(k), strictUtf8(v));
        }
        return Collections.unmodifiableMap(map);
    }

    private static byte[] field(ByteBuffer in) throws ShardException {
        int n = u16(in);
        if (n > MAX_CONTEXT_FIELD_BYTES) {
            throw malformed("a context field has " + n + " bytes; at most " + MAX_CONTEXT_FIELD_BYTES);
        }
        if (in.remaining() < n) {
            throw malformed("the context is cut short");
        }
        byte[] b = new byte[n];
        in.get(b);
        return b;
    }

    private static int u16(ByteBuffer in) throws ShardException {
        if (in.remaining() < 2) {
            throw malformed("the context is cut short");
        }
        return in.getShort() & 0xffff;
    }

    private static void writeField(ByteArrayOutputStream out, String s) {
        byte[] b = utf8(s);
        out.write(b.length >>> 8);
        out.write(b.length);
        out.write(b, 0, b.length);
    }

    static int compareUtf8(String a, String b) {
        return Arrays.compareUnsigned(utf8(a), utf8(b));
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** UTF-8 that must be valid: String's own decoder would replace bad bytes silently. */
    static String strictUtf8(byte[] b) throws ShardException {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        try {
            CharBuffer c = d.decode(ByteBuffer.wrap(b));
            return c.toString();
        } catch (CharacterCodingException e) {
            throw malformed("a name or context field is not valid UTF-8");
        }
    }

    // --------------------------------------------------------------- envelope fields

    /** The key name and version an envelope names (its authenticated header fields). */
    record EnvelopeKey(String keyName, int keyVersion) { }

    /**
     * Reads the key name and version from a format-1 envelope ("EKC"), checking only its
     * structure; its authenticity is the KMS's business when it unwraps it.
     *
     * @throws ShardException MALFORMED_HEADER when the bytes are not a format-1 envelope
     */
    static EnvelopeKey envelopeKey(byte[] envelope) throws ShardException {
        // magic(3) version(1) n(1) name(n) version(4) scheme(1) ivlen(1) iv ciphertext‖tag(>=16)
        if (envelope.length < 3 + 1 + 1 + 1 + 4 + 1 + 1
                || !Arrays.equals(envelope, 0, 3, ENVELOPE_MAGIC, 0, 3) || envelope[3] != 1) {
            throw malformed("the wrapped data key is not a format-1 KMS envelope");
        }
        int n = envelope[4] & 0xff;
        if (n < 1 || n > MAX_KEY_NAME_BYTES || envelope.length < 5 + n + 4 + 2 + TAG_BYTES) {
            throw malformed("the wrapped data key is not a format-1 KMS envelope");
        }
        String name = strictUtf8(Arrays.copyOfRange(envelope, 5, 5 + n));
        int version = ByteBuffer.wrap(envelope, 5 + n, 4).getInt();
        if (version < 1) {
            throw malformed("the wrapped data key names key version " + Integer.toUnsignedString(version));
        }
        return new EnvelopeKey(name, version);
    }

    static ShardException malformed(String message) {
        return new ShardException(ShardException.Reason.MALFORMED_HEADER, -1, "malformed shard header: " + message);
    }
}
