package dev.enclavekms.shard;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

import static dev.enclavekms.shard.ShardRoundTripTest.CONTEXT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShardHeaderTest {
    @TempDir
    Path dir;

    static final LocalEnvelopes KMS = new LocalEnvelopes("model-weights", 3);

    static ShardHeader header(Map<String, String> context) {
        byte[] wrapped = KMS.newDataKey(context).ciphertext();
        return new ShardHeader(4096, new byte[32], new byte[7], context, new byte[32], "model-weights", 3, wrapped);
    }

    @Test
    void formatCodes_arePinned() {
        assertArrayEquals(new byte[] {0x45, 0x4B, 0x53}, ShardFormat.MAGIC);
        assertEquals(1, ShardFormat.VERSION);
        assertEquals(1, ShardFormat.SUITE_HKDF_SHA256_AES256_GCM);
        assertEquals(48, ShardFormat.FIXED_BYTES);
        assertEquals(64, ShardFormat.MIN_SEGMENT_SIZE);
        assertEquals(64 << 20, ShardFormat.MAX_SEGMENT_SIZE);
        assertEquals(1 << 20, ShardFormat.DEFAULT_SEGMENT_SIZE);
        assertArrayEquals("enclave-kms shard 1".getBytes(java.nio.charset.StandardCharsets.US_ASCII), ShardFormat.KDF_LABEL);
    }

    @Test
    void encodeThenParse_isTheSameHeader_andReadConsumesExactlyIt() throws Exception {
        ShardHeader h = header(CONTEXT);
        byte[] encoded = h.encode();
        assertEquals(h.length(), encoded.length);
        assertEquals(h, ShardHeader.parse(encoded));
        byte[] withBody = ByteBuffer.allocate(encoded.length + 3).put(encoded).put(new byte[] {7, 8, 9}).array();
        ByteArrayInputStream in = new ByteArrayInputStream(withBody);
        assertEquals(h, ShardHeader.read(in));
        assertArrayEquals(new byte[] {7, 8, 9}, in.readAllBytes());
    }

    @Test
    void contextEncoding_isTheKmsCanonicalEncoding() {
        // docs/formats.md, "Encryption context": the envelope test vector's context.
        assertEquals("00020005" + "6d6f64656c" + "000a" + "6c6c616d612d332d3862" + "0004" + "74696572" + "0003" + "686f74",
                HexFormat.of().formatHex(ShardFormat.encodeContext(Map.of("tier", "hot", "model", "llama-3-8b"))));
        assertEquals("0000", HexFormat.of().formatHex(ShardFormat.encodeContext(null)));
        // Sorted by UTF-8 bytes, not UTF-16 code units: the two orders differ outside the BMP.
        Map<String, String> m = new LinkedHashMap<>();
        m.put("\uD83D\uDE00", "a"); // U+1F600: F0 9F 98 80
        m.put("\uFF5E", "b");        // U+FF5E: EF BD 9E — UTF-16 puts it after the surrogate pair
        assertEquals("0002" + "0003efbd9e" + "000162" + "0004f09f9880" + "000161",
                HexFormat.of().formatHex(ShardFormat.encodeContext(m)));
    }

    @Test
    void nonCanonicalContext_isMalformed() {
        byte[] encoded = header(Map.of("a", "1", "b", "2")).encode();
        // swap the entries' keys: "b" before "a"
        int at = ShardFormat.FIXED_BYTES + 2 + 2;
        encoded[at] = 'b';
        encoded[at + 1 + 2 + 1 + 2] = 'a';
        ShardException e = assertThrows(ShardException.class, () -> ShardHeader.parse(encoded));
        assertEquals(ShardException.Reason.MALFORMED_HEADER, e.reason());
        assertEquals("malformed shard header: the context is not in canonical order", e.getMessage());
    }

    @Test
    void otherVersionOrSuite_isUnsupported() {
        byte[] v2 = header(CONTEXT).encode();
        v2[3] = 2;
        ShardException e = assertThrows(ShardException.class, () -> ShardHeader.parse(v2));
        assertEquals(ShardException.Reason.UNSUPPORTED_FORMAT, e.reason());
        assertEquals("shard format version 2 is not supported (this library reads version 1)", e.getMessage());
        byte[] suite = header(CONTEXT).encode();
        suite[4] = 9;
        assertEquals(ShardException.Reason.UNSUPPORTED_FORMAT,
                assertThrows(ShardException.class, () -> ShardHeader.parse(suite)).reason());
    }

    @Test
    void segmentSizeOutOfBounds_isMalformed() {
        for (int size : new int[] {0, 63, (64 << 20) + 1, -1}) {
            byte[] b = header(CONTEXT).encode();
            ByteBuffer.wrap(b).putInt(5, size);
            assertEquals(ShardException.Reason.MALFORMED_HEADER,
                    assertThrows(ShardException.class, () -> ShardHeader.parse(b)).reason(), "size " + size);
        }
        assertThrows(IllegalArgumentException.class, () -> new ShardEncryptor.Options(63, 1));
        assertThrows(IllegalArgumentException.class, () -> new ShardEncryptor.Options(4096, 0));
    }

    @Test
    void keyNameOrVersionDisagreeingWithTheEnvelope_isMalformed() {
        ShardHeader h = header(CONTEXT);
        byte[] wrongVersion = h.withKey("model-weights", 4, h.wrappedDataKey()).encode();
        ShardException e = assertThrows(ShardException.class, () -> ShardHeader.parse(wrongVersion));
        assertEquals("malformed shard header: the header names key model-weights version 4 but its wrapped data key "
                + "is under model-weights version 3", e.getMessage());
        byte[] notAnEnvelope = h.withKey("model-weights", 3, new byte[40]).encode();
        assertEquals(ShardException.Reason.MALFORMED_HEADER,
                assertThrows(ShardException.class, () -> ShardHeader.parse(notAnEnvelope)).reason());
    }

    @Test
    void isShard_looksAtTheMagicOnly() throws Exception {
        Path shard = dir.resolve("a.eks");
        Files.write(shard, header(CONTEXT).encode());
        Path text = dir.resolve("b.txt");
        Files.writeString(text, "EKG, not a shard");
        assertTrue(ShardHeaders.isShard(shard));
        assertFalse(ShardHeaders.isShard(text));
        assertFalse(ShardHeaders.isShard(dir));
        assertEquals(header(CONTEXT).context(), ShardHeaders.read(shard).context());
        assertEquals(ShardException.Reason.NOT_A_SHARD,
                assertThrows(ShardException.class, () -> ShardHeaders.read(text)).reason());
    }

    @Test
    void toString_showsParametersNotTheWrappedKey() {
        String s = header(CONTEXT).toString();
        assertTrue(s.contains("segmentSize=4096") && s.contains("keyVersion=3") && s.contains("wrappedDataKey=<"), s);
    }
}
