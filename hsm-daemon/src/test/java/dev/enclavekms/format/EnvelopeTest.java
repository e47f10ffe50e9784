package dev.enclavekms.format;

import org.junit.jupiter.api.Test;

import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The envelope and context encodings, pinned by the test vectors in docs/formats.md. */
class EnvelopeTest {
    private static final HexFormat HEX = HexFormat.of();

    // Test vector 1 of docs/formats.md. The master key is a published test value; real
    // master keys never leave the enclave, so the vector is computed here with JCA.
    static final byte[] MASTER_KEY = HEX.parseHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    static final byte[] IV = HEX.parseHex("cafebabefacedbaddecaf888");
    static final byte[] PLAINTEXT = "a 32-byte data key for shard 001".getBytes(StandardCharsets.US_ASCII);
    static final String CONTEXT_HEX = "0002" + "0005" + "6d6f64656c" + "000a" + "6c6c616d612d332d3862"
            + "0004" + "74696572" + "0003" + "686f74";
    static final String HEADER_HEX = "454b43" + "01" + "0d" + "6d6f64656c2d77656967687473" + "00000003" + "01";

    private static EncryptionContext context() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("tier", "hot"); // deliberately out of order: the encoding sorts
        m.put("model", "llama-3-8b");
        return EncryptionContext.of(m);
    }

    @Test
    void contextEncoding_isSortedAndLengthPrefixed() {
        assertEquals(CONTEXT_HEX, HEX.formatHex(context().canonicalEncoding()));
        assertEquals("0000", HEX.formatHex(EncryptionContext.EMPTY.canonicalEncoding()));
    }

    @Test
    void contextEncoding_sortsByUtf8BytesNotUtf16() {
        // U+FF5E (EF BD 9E) sorts after U+1F600 (F0 9F 98 80)? No: EF < F0, so U+FF5E first,
        // whereas UTF-16 order would put the surrogate pair (D83D) first.
        EncryptionContext c = EncryptionContext.of(Map.of("\uD83D\uDE00", "a", "\uFF5E", "b"));
        assertEquals("0002" + "0003efbd9e" + "000162" + "0004f09f9880" + "000161", HEX.formatHex(c.canonicalEncoding()));
    }

    @Test
    void header_matchesVector() {
        assertEquals(HEADER_HEX, HEX.formatHex(Envelope.header("model-weights", 3, Envelope.SealingScheme.AES_256_GCM)));
    }

    @Test
    void vector1_encryptsAndParsesAsDocumented() throws Exception {
        byte[] aad = Envelope.aad("model-weights", 3, Envelope.SealingScheme.AES_256_GCM, context());
        assertEquals(HEADER_HEX + CONTEXT_HEX, HEX.formatHex(aad));
        Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
        gcm.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(MASTER_KEY, "AES"), new GCMParameterSpec(128, IV));
        gcm.updateAAD(aad);
        byte[] ct = gcm.doFinal(PLAINTEXT);
        Envelope e = new Envelope("model-weights", 3, Envelope.SealingScheme.AES_256_GCM, IV, ct);
        byte[] encoded = e.encode();
        assertEquals(VECTOR1_ENVELOPE, HEX.formatHex(encoded));
        Envelope parsed = Envelope.parse(encoded);
        assertEquals(e, parsed);

        Cipher dec = Cipher.getInstance("AES/GCM/NoPadding");
        dec.init(Cipher.DECRYPT_MODE, new SecretKeySpec(MASTER_KEY, "AES"), new GCMParameterSpec(128, parsed.iv()));
        dec.updateAAD(parsed.aad(context()));
        assertArrayEquals(PLAINTEXT, dec.doFinal(parsed.ciphertext()));
    }

    /** docs/formats.md, test vector 1: the complete envelope. */
    static final String VECTOR1_ENVELOPE = HEADER_HEX + "0c" + "cafebabefacedbaddecaf888"
            + "eb8393148718366f232b39bc0f7ca9546859e037b06b4a0726be76159eb955ce" // ciphertext
            + "820e83d8b94370908db1cc2d2a30c7e7"; // tag

    @Test
    void parse_rejectsEveryStructuralDefect() throws Exception {
        byte[] good = new Envelope("k", 1, Envelope.SealingScheme.AES_256_GCM, new byte[12], new byte[16]).encode();
        assertEquals(good.length, 3 + 1 + 1 + 1 + 4 + 1 + 1 + 12 + 16);
        Envelope.parse(good); // sanity
        for (int cut = 0; cut < good.length; cut++) {
            byte[] t = java.util.Arrays.copyOf(good, cut);
            assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(t), "truncated to " + cut);
        }
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 0, 0x46)), "magic");
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 3, 2)), "format version");
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 4, 0)), "empty name");
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 6, 0x80)), "version >= 2^31");
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 10, 9)), "scheme");
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 11, 16)), "iv length");
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(new byte[Envelope.MAX_ENVELOPE_BYTES + 1]));
        assertThrows(MalformedEnvelopeException.class, () -> Envelope.parse(patch(good, 5, 0xff)), "name not UTF-8");
    }

    @Test
    void context_refusesOversizedAndEmptyKeys() {
        assertThrows(IllegalArgumentException.class, () -> EncryptionContext.of(Map.of("", "v")));
        assertThrows(IllegalArgumentException.class, () -> EncryptionContext.of(Map.of("k", "v".repeat(1025))));
        Map<String, String> many = new LinkedHashMap<>();
        for (int i = 0; i <= EncryptionContext.MAX_ENTRIES; i++) many.put("k" + i, "v");
        assertThrows(IllegalArgumentException.class, () -> EncryptionContext.of(many));
    }

    private static byte[] patch(byte[] b, int i, int v) {
        byte[] c = b.clone();
        c[i] = (byte) v;
        return c;
    }

    @Test
    void keyNames_asciiAndNot_roundTrip_andTheByteLimitHolds() throws Exception {
        for (String name : new String[] {"k", "model-weights", "clé-ключ-\uD83D\uDD11", "a".repeat(128), "é".repeat(64)}) {
            Envelope e = new Envelope(name, 2, Envelope.SealingScheme.AES_256_GCM, new byte[12], new byte[16]);
            assertEquals(name, Envelope.parse(e.encode()).keyName(), name);
        }
        for (String name : new String[] {"", "a".repeat(129), "é".repeat(65), "\uD83D\uDD11".repeat(33)}) {
            assertThrows(IllegalArgumentException.class,
                    () -> new Envelope(name, 2, Envelope.SealingScheme.AES_256_GCM, new byte[12], new byte[16]),
                    name.length() + " chars");
        }
    }
}
