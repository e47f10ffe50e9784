package dev.enclavekms.shard;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;

import static dev.enclavekms.shard.ShardFormat.malformed;

/**
 * The header of a shard file, format 1 (docs/formats.md, "Shard files, format 1"). Not
 * secret: it holds parameters, the context, a tag and the data key <em>wrapped</em> by the
 * KMS. Byte arrays are copied in and out.
 *
 * <pre>
 *  offset  bytes  field
 *  0       3      magic "EKS"
 *  3       1      format version (1)
 *  4       1      suite (1: HKDF-SHA256, AES-256-GCM segments, HMAC-SHA256 header tag)
 *  5       4      segment size S: plaintext bytes per segment, 64 .. 64 MiB
 *  9       32     salt
 *  41      7      nonce prefix
 *  48      c      context, canonical encoding
 *  48+c    32     header tag = HMAC-SHA256(header key, bytes 0 .. 48+c)
 *  80+c    1      n = key name length, 1..128
 *  81+c    n      key name (UTF-8)             } informational copies of what the
 *  81+c+n  4      key version                  } envelope names; must agree with it
 *  85+c+n  2      w = wrapped data key length, 1..1024
 *  87+c+n  w      wrapped data key: the KMS envelope from GenerateDataKey
 * </pre>
 *
 * Bytes {@code 0 .. 48+c} are the <em>parameters</em>: fixed for the life of the file,
 * covered by the header tag and bound to every segment through the key derivation. The
 * <em>key block</em> after the tag is what a rewrap replaces; the KMS authenticates it.
 *
 * @param segmentSize    plaintext bytes per segment (every segment but the last is full)
 * @param salt           HKDF salt, random per file
 * @param noncePrefix    first 7 bytes of every segment nonce, random per file
 * @param context        the caller's context (canonical order, unmodifiable)
 * @param tag            HMAC-SHA256 of the parameters under the header key
 * @param keyName        the KMS key the data key is wrapped under
 * @param keyVersion     that key's version
 * @param wrappedDataKey the KMS ciphertext envelope of the data key
 */
public record ShardHeader(int segmentSize, byte[] salt, byte[] noncePrefix, Map<String, String> context, byte[] tag,
                          String keyName, int keyVersion, byte[] wrappedDataKey) {

    public ShardHeader {
        if (segmentSize < ShardFormat.MIN_SEGMENT_SIZE || segmentSize > ShardFormat.MAX_SEGMENT_SIZE) {
            throw new IllegalArgumentException("segment size " + segmentSize + " is outside "
                    + ShardFormat.MIN_SEGMENT_SIZE + ".." + ShardFormat.MAX_SEGMENT_SIZE);
        }
        salt = exactly(salt, ShardFormat.SALT_BYTES, "salt");
        noncePrefix = exactly(noncePrefix, ShardFormat.NONCE_PREFIX_BYTES, "nonce prefix");
        tag = exactly(tag, ShardFormat.HEADER_TAG_BYTES, "tag");
        context = ShardFormat.canonicalContext(context);
        Objects.requireNonNull(keyName, "keyName");
        int n = ShardFormat.utf8(keyName).length;
        if (n < 1 || n > ShardFormat.MAX_KEY_NAME_BYTES) {
            throw new IllegalArgumentException("a key name has 1.." + ShardFormat.MAX_KEY_NAME_BYTES + " bytes");
        }
        if (keyVersion < 1) {
            throw new IllegalArgumentException("key version must be positive");
        }
        Objects.requireNonNull(wrappedDataKey, "wrappedDataKey");
        if (wrappedDataKey.length < 1 || wrappedDataKey.length > ShardFormat.MAX_WRAPPED_KEY_BYTES) {
            throw new IllegalArgumentException("a wrapped data key has 1.." + ShardFormat.MAX_WRAPPED_KEY_BYTES + " bytes");
        }
        wrappedDataKey = wrappedDataKey.clone();
    }

    private static byte[] exactly(byte[] b, int n, String what) {
        Objects.requireNonNull(b, what);
        if (b.length != n) {
            throw new IllegalArgumentException(what + " must have " + n + " bytes, not " + b.length);
        }
        return b.clone();
    }

    @Override
    public byte[] salt() {
        return salt.clone();
    }

    @Override
    public byte[] noncePrefix() {
        return noncePrefix.clone();
    }

    @Override
    public byte[] tag() {
        return tag.clone();
    }

    @Override
    public byte[] wrappedDataKey() {
        return wrappedDataKey.clone();
    }

    /** The same header with another key block (what a rewrap writes); the parameters and tag stay. */
    public ShardHeader withKey(String keyName, int keyVersion, byte[] wrappedDataKey) {
        return new ShardHeader(segmentSize, salt, noncePrefix, context, tag, keyName, keyVersion, wrappedDataKey);
    }

    // ------------------------------------------------------------------------ encoding

    /** Bytes {@code 0 .. 48+c}: what the header tag covers and the key derivation binds. */
    public byte[] parameters() {
        return parameters(segmentSize, salt, noncePrefix, context);
    }

    static byte[] parameters(int segmentSize, byte[] salt, byte[] noncePrefix, Map<String, String> context) {
        byte[] ctx = ShardFormat.encodeContext(context);
        ByteBuffer b = ByteBuffer.allocate(ShardFormat.FIXED_BYTES + ctx.length);
        b.put(ShardFormat.MAGIC).put((byte) ShardFormat.VERSION).put((byte) ShardFormat.SUITE_HKDF_SHA256_AES256_GCM)
                .putInt(segmentSize).put(salt).put(noncePrefix).put(ctx);
        return b.array();
    }

    /** SHA-256 of {@link #parameters()}: the digest the key derivation binds. */
    byte[] parametersDigest() {
        try {
            return MessageDigest.getInstance("SHA-256").digest(parameters());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    /** The header as it is stored at the start of the file. */
    public byte[] encode() {
        byte[] params = parameters();
        byte[] name = ShardFormat.utf8(keyName);
        ByteBuffer b = ByteBuffer.allocate(params.length + tag.length + 1 + name.length + 4 + 2 + wrappedDataKey.length);
        b.put(params).put(tag).put((byte) name.length).put(name).putInt(keyVersion)
                .putShort((short) wrappedDataKey.length).put(wrappedDataKey);
        return b.array();
    }

    /** The encoded length: the offset at which the body starts. */
    public int length() {
        return ShardFormat.FIXED_BYTES + ShardFormat.encodeContext(context).length + ShardFormat.HEADER_TAG_BYTES + 1
                + ShardFormat.utf8(keyName).length + 4 + 2 + wrappedDataKey.length;
    }

    // ------------------------------------------------------------------------- parsing

    /**
     * Reads a header from the start of a shard, consuming exactly its bytes (so that the
     * stream is left at the first segment), and checks its structure: magic, version,
     * suite, bounds, canonical context, and that the key name and version agree with the
     * envelope's. Authenticity is checked later, with the data key.
     *
     * @throws ShardException NOT_A_SHARD, UNSUPPORTED_FORMAT, MALFORMED_HEADER, or TRUNCATED
     *                        when the stream ends inside the header
     */
    public static ShardHeader read(InputStream in) throws IOException {
        return parse(readRaw(in));
    }

    /**
     * Parses a header at the start of {@code bytes} (which may continue with the body).
     *
     * @throws ShardException as {@link #read(InputStream)}
     */
    public static ShardHeader parse(byte[] bytes) throws ShardException {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        checkFixed(in);
        int segmentSize = in.getInt(5);
        byte[] salt = Arrays.copyOfRange(bytes, 9, 9 + ShardFormat.SALT_BYTES);
        byte[] prefix = Arrays.copyOfRange(bytes, 41, 41 + ShardFormat.NONCE_PREFIX_BYTES);
        in.position(ShardFormat.FIXED_BYTES);
        Map<String, String> context = ShardFormat.decodeContext(in);
        if (in.remaining() < ShardFormat.HEADER_TAG_BYTES + 1) {
            throw truncated();
        }
        byte[] tag = new byte[ShardFormat.HEADER_TAG_BYTES];
        in.get(tag);
        int n = in.get() & 0xff;
        if (n < 1 || n > ShardFormat.MAX_KEY_NAME_BYTES) {
            throw malformed("key name length " + n + " is outside 1.." + ShardFormat.MAX_KEY_NAME_BYTES);
        }
        if (in.remaining() < n + 4 + 2) {
            throw truncated();
        }
        byte[] name = new byte[n];
        in.get(name);
        String keyName = ShardFormat.strictUtf8(name);
        int keyVersion = in.getInt();
        if (keyVersion < 1) {
            throw malformed("key version " + Integer.toUnsignedString(keyVersion) + " is not positive");
        }
        int w = in.getShort() & 0xffff;
        if (w < 1 || w > ShardFormat.MAX_WRAPPED_KEY_BYTES) {
            throw malformed("wrapped data key length " + w + " is outside 1.." + ShardFormat.MAX_WRAPPED_KEY_BYTES);
        }
        if (in.remaining() < w) {
            throw truncated();
        }
        byte[] wrapped = new byte[w];
        in.get(wrapped);
        ShardFormat.EnvelopeKey envelope = ShardFormat.envelopeKey(wrapped);
        if (!envelope.keyName().equals(keyName) || envelope.keyVersion() != keyVersion) {
            throw malformed("the header names key " + keyName + " version " + keyVersion + " but its wrapped data key "
                    + "is under " + envelope.keyName() + " version " + envelope.keyVersion());
        }
        return new ShardHeader(segmentSize, salt, prefix, context, tag, keyName, keyVersion, wrapped);
    }

    /** Magic, version, suite and segment size, from a buffer holding at least the fixed part (else TRUNCATED). */
    private static void checkFixed(ByteBuffer in) throws ShardException {
        int have = in.remaining();
        for (int i = 0; i < 3; i++) {
            if (i >= have) {
                throw have == 0 ? notAShard() : truncated();
            }
            if (in.get(i) != ShardFormat.MAGIC[i]) {
                throw notAShard();
            }
        }
        if (have < 5) {
            throw truncated();
        }
        if ((in.get(3) & 0xff) != ShardFormat.VERSION) {
            throw new ShardException(ShardException.Reason.UNSUPPORTED_FORMAT, -1,
                    "shard format version " + (in.get(3) & 0xff) + " is not supported (this library reads version "
                            + ShardFormat.VERSION + ")");
        }
        if ((in.get(4) & 0xff) != ShardFormat.SUITE_HKDF_SHA256_AES256_GCM) {
            throw new ShardException(ShardException.Reason.UNSUPPORTED_FORMAT, -1,
                    "shard suite " + (in.get(4) & 0xff) + " is not supported (this library reads suite "
                            + ShardFormat.SUITE_HKDF_SHA256_AES256_GCM + ")");
        }
        if (have < ShardFormat.FIXED_BYTES) {
            throw truncated();
        }
        long segmentSize = in.getInt(5) & 0xffffffffL;
        if (segmentSize < ShardFormat.MIN_SEGMENT_SIZE || segmentSize > ShardFormat.MAX_SEGMENT_SIZE) {
            throw malformed("segment size " + segmentSize + " is outside " + ShardFormat.MIN_SEGMENT_SIZE + ".."
                    + ShardFormat.MAX_SEGMENT_SIZE);
        }
    }

    /**
     * Exactly the header's bytes from a stream, reading no further. Lengths are bounded
     * before anything is read, so a hostile header cannot make this allocate much (at most
     * about 130 KiB, for a context at its limits).
     */
    static byte[] readRaw(InputStream in) throws IOException {
        ByteArrayOutputStream raw = new ByteArrayOutputStream(512);
        byte[] fixed = in.readNBytes(ShardFormat.FIXED_BYTES);
        raw.write(fixed);
        checkFixed(ByteBuffer.wrap(fixed));
        int count = u16(take(in, raw, 2));
        if (count > ShardFormat.MAX_CONTEXT_ENTRIES) {
            throw malformed("the context has " + count + " entries; at most " + ShardFormat.MAX_CONTEXT_ENTRIES);
        }
        for (int i = 0; i < 2 * count; i++) {
            int len = u16(take(in, raw, 2));
            if (len > ShardFormat.MAX_CONTEXT_FIELD_BYTES) {
                throw malformed("a context field has " + len + " bytes; at most " + ShardFormat.MAX_CONTEXT_FIELD_BYTES);
            }
            take(in, raw, len);
        }
        take(in, raw, ShardFormat.HEADER_TAG_BYTES);
        int n = take(in, raw, 1)[0] & 0xff;
        take(in, raw, n + 4);
        int w = u16(take(in, raw, 2));
        if (w > ShardFormat.MAX_WRAPPED_KEY_BYTES) {
            throw malformed("wrapped data key length " + w + " is over " + ShardFormat.MAX_WRAPPED_KEY_BYTES);
        }
        take(in, raw, w);
        return raw.toByteArray();
    }

    private static byte[] take(InputStream in, ByteArrayOutputStream raw, int n) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length < n) {
            throw truncated();
        }
        raw.write(b);
        return b;
    }

    private static int u16(byte[] b) {
        return (b[0] & 0xff) << 8 | (b[1] & 0xff);
    }

    private static ShardException truncated() {
        return new ShardException(ShardException.Reason.TRUNCATED, -1, "the shard is truncated: it ends inside its header");
    }

    private static ShardException notAShard() {
        return new ShardException(ShardException.Reason.NOT_A_SHARD, -1, "not a shard file (no \"EKS\" magic)");
    }

    // -------------------------------------------------------------------- value object

    @Override
    public boolean equals(Object o) {
        return o instanceof ShardHeader h && segmentSize == h.segmentSize && Arrays.equals(salt, h.salt)
                && Arrays.equals(noncePrefix, h.noncePrefix) && context.equals(h.context) && Arrays.equals(tag, h.tag)
                && keyName.equals(h.keyName) && keyVersion == h.keyVersion
                && Arrays.equals(wrappedDataKey, h.wrappedDataKey);
    }

    @Override
    public int hashCode() {
        return Objects.hash(segmentSize, Arrays.hashCode(salt), context, keyName, keyVersion,
                Arrays.hashCode(wrappedDataKey));
    }

    /** Every field; salt and prefix in hex (they are not secret), the wrapped key by length. */
    @Override
    public String toString() {
        HexFormat hex = HexFormat.of();
        return "ShardHeader[segmentSize=" + segmentSize + ", salt=" + hex.formatHex(salt) + ", noncePrefix="
                + hex.formatHex(noncePrefix) + ", context=" + context + ", keyName=" + keyName + ", keyVersion="
                + keyVersion + ", wrappedDataKey=<" + wrappedDataKey.length + " bytes>]";
    }
}
