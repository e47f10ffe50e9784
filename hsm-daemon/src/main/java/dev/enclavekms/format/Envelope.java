package dev.enclavekms.format;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The ciphertext envelope returned by Encrypt and GenerateDataKey: self-describing, so
 * that Decrypt needs nothing but the envelope and the caller's context. Specified byte
 * by byte in docs/formats.md:
 *
 * <pre>
 *   0   3  magic "EKC" (0x45 0x4B 0x43)
 *   3   1  format version (1)
 *   4   1  n = length of the key name in UTF-8 bytes (1..128)
 *   5   n  key name
 *   5+n 4  key version, big-endian, 1..2^31-1
 *   9+n 1  sealing scheme (1 = AES-256-GCM, 12-byte IV, 16-byte tag)
 *  10+n 1  m = IV length (must match the scheme)
 *  11+n m  IV
 *  ...     ciphertext followed by the tag (at least the tag)
 * </pre>
 *
 * The AAD given to the enclave is the header (bytes 0 .. 9+n, i.e. up to and including
 * the scheme byte) followed by the canonical context encoding, so the key name, version
 * and scheme cannot be changed without decryption failing. The IV needs no extra
 * binding: GCM authenticates it already.
 *
 * <p>Not secret: an envelope holds only ciphertext and metadata.
 */
public record Envelope(String keyName, int keyVersion, SealingScheme scheme, byte[] iv, byte[] ciphertext) {
    public static final byte[] MAGIC = {0x45, 0x4B, 0x43};
    public static final int FORMAT_VERSION = 1;
    public static final int MAX_KEY_NAME_BYTES = 128;
    /** Largest envelope the parser accepts: a 64 KiB secret plus header, IV and tag, with room. */
    public static final int MAX_ENVELOPE_BYTES = 65536 + 1024;

    /** How the enclave sealed the payload; the code is part of the format and never changes. */
    public enum SealingScheme {
        AES_256_GCM(1, 12, 16);

        private final int code;
        private final int ivLength;
        private final int tagLength;

        SealingScheme(int code, int ivLength, int tagLength) {
            this.code = code;
            this.ivLength = ivLength;
            this.tagLength = tagLength;
        }

        public int code() {
            return code;
        }

        public int ivLength() {
            return ivLength;
        }

        public int tagLength() {
            return tagLength;
        }

        static SealingScheme ofCode(int code) throws MalformedEnvelopeException {
            for (SealingScheme s : values()) {
                if (s.code == code) return s;
            }
            throw new MalformedEnvelopeException("unknown sealing scheme " + code);
        }
    }

    public Envelope {
        validateKeyName(keyName);
        if (keyVersion < 1) {
            throw new IllegalArgumentException("key version must be positive");
        }
        if (iv.length != scheme.ivLength()) {
            throw new IllegalArgumentException("IV length " + iv.length + " does not match " + scheme);
        }
        iv = iv.clone();
        ciphertext = ciphertext.clone();
    }

    private static boolean ascii(byte[] b, int from, int length) {
        for (int i = from; i < from + length; i++) {
            if (b[i] < 0) return false;
        }
        return true;
    }

    private static void validateKeyName(String keyName) {
        int n = keyName.length() <= MAX_KEY_NAME_BYTES / 3 ? keyName.length() // ≤ 3 bytes per char: within the limit
                : keyName.getBytes(StandardCharsets.UTF_8).length;
        if (n < 1 || n > MAX_KEY_NAME_BYTES) {
            throw new IllegalArgumentException("key name must be 1.." + MAX_KEY_NAME_BYTES + " bytes");
        }
    }

    @Override
    public byte[] iv() {
        return iv.clone();
    }

    @Override
    public byte[] ciphertext() {
        return ciphertext.clone();
    }

    /** The authenticated header: everything up to and including the scheme byte. */
    public static byte[] header(String keyName, int keyVersion, SealingScheme scheme) {
        validateKeyName(keyName);
        byte[] name = keyName.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(10 + name.length);
        out.writeBytes(MAGIC);
        out.write(FORMAT_VERSION);
        out.write(name.length);
        out.writeBytes(name);
        out.write(keyVersion >>> 24);
        out.write(keyVersion >>> 16);
        out.write(keyVersion >>> 8);
        out.write(keyVersion);
        out.write(scheme.code());
        return out.toByteArray();
    }

    /** The AAD the enclave authenticates: header ‖ canonical context. */
    public static byte[] aad(String keyName, int keyVersion, SealingScheme scheme, EncryptionContext context) {
        byte[] h = header(keyName, keyVersion, scheme);
        byte[] c = context.canonicalEncoding();
        byte[] aad = Arrays.copyOf(h, h.length + c.length);
        System.arraycopy(c, 0, aad, h.length, c.length);
        return aad;
    }

    public byte[] aad(EncryptionContext context) {
        return aad(keyName, keyVersion, scheme, context);
    }

    public byte[] encode() {
        byte[] h = header(keyName, keyVersion, scheme);
        ByteArrayOutputStream out = new ByteArrayOutputStream(h.length + 1 + iv.length + ciphertext.length);
        out.writeBytes(h);
        out.write(iv.length);
        out.writeBytes(iv);
        out.writeBytes(ciphertext);
        return out.toByteArray();
    }

    /**
     * Parses an envelope. Checks structure only (magic, version, lengths, scheme); the
     * authenticity of everything is established by decryption.
     */
    public static Envelope parse(byte[] b) throws MalformedEnvelopeException {
        if (b.length > MAX_ENVELOPE_BYTES) {
            throw new MalformedEnvelopeException("envelope longer than " + MAX_ENVELOPE_BYTES + " bytes");
        }
        if (b.length < 5 || b[0] != MAGIC[0] || b[1] != MAGIC[1] || b[2] != MAGIC[2]) {
            throw new MalformedEnvelopeException("not an enclave-kms ciphertext (bad magic)");
        }
        if (b[3] != FORMAT_VERSION) {
            throw new MalformedEnvelopeException("unsupported envelope format version " + (b[3] & 0xff));
        }
        int n = b[4] & 0xff;
        if (n < 1 || n > MAX_KEY_NAME_BYTES) {
            throw new MalformedEnvelopeException("key name length " + n + " out of range");
        }
        int p = 5 + n;
        if (b.length < p + 6) {
            throw new MalformedEnvelopeException("truncated header");
        }
        String name;
        if (ascii(b, 5, n)) {
            // The common case, without a decoder per envelope (a DecryptBatch parses 10,000).
            name = new String(b, 5, n, StandardCharsets.US_ASCII);
        } else {
            try {
                name = StandardCharsets.UTF_8.newDecoder()
                        .decode(java.nio.ByteBuffer.wrap(b, 5, n)).toString();
            } catch (java.nio.charset.CharacterCodingException e) {
                throw new MalformedEnvelopeException("key name is not UTF-8");
            }
        }
        int version = ((b[p] & 0xff) << 24) | ((b[p + 1] & 0xff) << 16) | ((b[p + 2] & 0xff) << 8) | (b[p + 3] & 0xff);
        if (version < 1) {
            throw new MalformedEnvelopeException("key version out of range");
        }
        SealingScheme scheme = SealingScheme.ofCode(b[p + 4] & 0xff);
        int m = b[p + 5] & 0xff;
        if (m != scheme.ivLength()) {
            throw new MalformedEnvelopeException("IV length " + m + " does not match the sealing scheme");
        }
        int ivStart = p + 6;
        if (b.length < ivStart + m + scheme.tagLength()) {
            throw new MalformedEnvelopeException("truncated ciphertext");
        }
        byte[] iv = Arrays.copyOfRange(b, ivStart, ivStart + m);
        byte[] ct = Arrays.copyOfRange(b, ivStart + m, b.length);
        return new Envelope(name, version, scheme, iv, ct);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Envelope e && keyName.equals(e.keyName) && keyVersion == e.keyVersion
                && scheme == e.scheme && Arrays.equals(iv, e.iv) && Arrays.equals(ciphertext, e.ciphertext);
    }

    @Override
    public int hashCode() {
        return keyName.hashCode() * 31 + keyVersion;
    }

    @Override
    public String toString() {
        return "Envelope[" + keyName + " v" + keyVersion + " " + scheme + ", " + ciphertext.length + " bytes]";
    }
}
