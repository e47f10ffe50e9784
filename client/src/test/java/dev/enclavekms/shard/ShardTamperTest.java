package dev.enclavekms.shard;

import dev.enclavekms.client.DataKey;
import dev.enclavekms.client.DecryptionFailedException;
import dev.enclavekms.client.KmsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.enclavekms.shard.ShardException.Reason.CONTEXT_MISMATCH;
import static dev.enclavekms.shard.ShardException.Reason.HEADER_AUTHENTICATION_FAILED;
import static dev.enclavekms.shard.ShardException.Reason.MALFORMED_HEADER;
import static dev.enclavekms.shard.ShardException.Reason.NOT_A_SHARD;
import static dev.enclavekms.shard.ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED;
import static dev.enclavekms.shard.ShardException.Reason.TRAILING_DATA;
import static dev.enclavekms.shard.ShardException.Reason.TRUNCATED;
import static dev.enclavekms.shard.ShardException.Reason.UNSUPPORTED_FORMAT;
import static dev.enclavekms.shard.ShardRoundTripTest.CONTEXT;
import static dev.enclavekms.shard.ShardRoundTripTest.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every way of damaging a shard — a bit flipped anywhere, cuts at and between segments,
 * bytes appended, segments swapped, dropped, repeated or spliced in from another file under
 * the same data key — is detected, by streaming decryption (on one and on three threads)
 * and by the random-access reader, with the reason and segment it concerns; and the
 * plaintext released is exactly that of the segments before the damage, never any of it.
 */
class ShardTamperTest {
    static final int S = 64;
    static final int C = S + 16;

    @TempDir
    Path dir;

    final LocalEnvelopes kms = new LocalEnvelopes("model-weights", 3);
    final DataKey dataKey = kms.newDataKey(CONTEXT);

    /** 4 full segments and a short final one. */
    final byte[] plain = pattern(4 * S + 10, 1);
    /** 4 full segments, the last one full. */
    final byte[] plainFull = pattern(4 * S, 2);

    byte[] encrypt(byte[] plaintext) throws IOException {
        try (ShardEncryptor enc = ShardEncryptor.of(dataKey, CONTEXT, new ShardEncryptor.Options(S, 1))) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            enc.encrypt(new ByteArrayInputStream(plaintext), out);
            return out.toByteArray();
        }
    }

    /** What streaming decryption did: the exception (or null) and the bytes it wrote. */
    record Outcome(Exception failure, byte[] written) {
        ShardException shard() {
            return assertInstanceOf(ShardException.class, failure, "expected a ShardException");
        }
    }

    Outcome stream(byte[] shard, int threads) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ByteArrayInputStream in = new ByteArrayInputStream(shard);
            ShardHeader h = ShardHeader.read(in);
            try (ShardDecryptor d = ShardDecryptor.open(h, kms, CONTEXT)) {
                d.decrypt(in, out, threads);
            }
            return new Outcome(null, out.toByteArray());
        } catch (IOException | KmsException e) {
            return new Outcome(e, out.toByteArray());
        }
    }

    /** Streams on 1 and 3 threads; both must fail the same way and release the same prefix. */
    ShardException assertStreamFails(byte[] shard, byte[] plaintext, ShardException.Reason reason, long segment,
                                     long releasedSegments) {
        ShardException first = null;
        for (int threads : new int[] {1, 3}) {
            Outcome o = stream(shard, threads);
            assertNotNull(o.failure(), "damage not detected (" + threads + " threads)");
            ShardException e = o.shard();
            assertEquals(reason, e.reason(), e.getMessage());
            assertEquals(segment, e.segment(), e.getMessage());
            assertArrayEquals(Arrays.copyOf(plaintext, (int) Math.min(plaintext.length, releasedSegments * S)),
                    o.written(), "released exactly the segments before the damage (" + threads + " threads)");
            first = e;
        }
        for (int threads : new int[] {1, 3}) {
            assertFileFails(shard, reason, segment, threads);
        }
        return first;
    }

    /**
     * File to file ({@link ShardDecryptor#decryptFile}) fails and leaves no file behind:
     * neither the target nor its temporary file. It opens a {@link ShardReader}, which
     * checks the layout and the final segment first: where that fails, the file path
     * reports what the reader reports; otherwise what streaming reports.
     */
    void assertFileFails(byte[] shard, ShardException.Reason reason, long segment, int threads) {
        try {
            Path in = file(shard);
            try {
                ShardReader.open(in, kms, CONTEXT).close();
            } catch (ShardException atOpen) {
                reason = atOpen.reason();
                segment = atOpen.segment();
            } catch (KmsException e) {
                throw new AssertionError(e);
            }
            Path out = Files.createTempDirectory(dir, "out");
            ShardException.Reason expectedReason = reason;
            long expectedSegment = segment;
            ShardException e = assertThrows(ShardException.class,
                    () -> ShardDecryptor.decryptFile(in, out.resolve("plain"), kms, CONTEXT, threads, null),
                    "file path, " + threads + " threads");
            assertEquals(expectedReason, e.reason(), "file path, " + threads + " threads: " + e.getMessage());
            assertEquals(expectedSegment, e.segment(), "file path, " + threads + " threads: " + e.getMessage());
            try (var left = Files.list(out)) {
                assertEquals(List.of(), left.toList(), "no plaintext file left behind");
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    Path file(byte[] shard) throws IOException {
        Path p = Files.createTempFile(dir, "shard", ".eks");
        Files.write(p, shard);
        return p;
    }

    ShardException assertReaderOpenFails(byte[] shard, ShardException.Reason reason, long segment) throws IOException {
        Path p = file(shard);
        ShardException e = assertThrows(ShardException.class, () -> ShardReader.open(p, kms, CONTEXT).close());
        assertEquals(reason, e.reason(), e.getMessage());
        assertEquals(segment, e.segment(), e.getMessage());
        return e;
    }

    static byte[] flip(byte[] b, int index, int bit) {
        byte[] c = b.clone();
        c[index] ^= (byte) (1 << bit);
        return c;
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    int headerLength(byte[] shard) throws ShardException {
        return ShardHeader.parse(shard).length();
    }

    byte[] segment(byte[] shard, int i) throws ShardException {
        int h = headerLength(shard);
        return Arrays.copyOfRange(shard, h + i * C, Math.min(shard.length, h + (i + 1) * C));
    }

    // ---------------------------------------------------------------------- header

    @Test
    void everyHeaderBitFlipped_isDetected_andReleasesNothing() throws Exception {
        byte[] shard = encrypt(plain);
        ShardHeader h = ShardHeader.parse(shard);
        int contextEnd = ShardFormat.FIXED_BYTES + ShardFormat.encodeContext(CONTEXT).length;
        int tagEnd = contextEnd + ShardFormat.HEADER_TAG_BYTES;
        List<String> undetected = new ArrayList<>();
        EnumSet<ShardException.Reason> seen = EnumSet.noneOf(ShardException.Reason.class);
        int kmsRefusals = 0;
        for (int i = 0; i < h.length(); i++) {
            for (int bit = 0; bit < 8; bit++) {
                Outcome o = stream(flip(shard, i, bit), 1);
                if (o.failure() == null || o.written().length > 0) {
                    undetected.add(i + "." + bit);
                    continue;
                }
                if (o.failure() instanceof DecryptionFailedException) {
                    kmsRefusals++; // the KMS refused the changed envelope or context
                    assertTrue(i >= ShardFormat.FIXED_BYTES, "KMS reached with a bad fixed part at " + i);
                    continue;
                }
                ShardException e = o.shard();
                seen.add(e.reason());
                Set<ShardException.Reason> allowed = i < 3 ? EnumSet.of(NOT_A_SHARD)
                        : i < 5 ? EnumSet.of(UNSUPPORTED_FORMAT)
                        : i < ShardFormat.FIXED_BYTES ? EnumSet.of(HEADER_AUTHENTICATION_FAILED, MALFORMED_HEADER)
                        : i < contextEnd ? EnumSet.of(MALFORMED_HEADER, CONTEXT_MISMATCH, TRUNCATED)
                        : i < tagEnd ? EnumSet.of(HEADER_AUTHENTICATION_FAILED)
                        : EnumSet.of(MALFORMED_HEADER, TRUNCATED);
                assertTrue(allowed.contains(e.reason()), "byte " + i + " bit " + bit + ": " + e.reason() + " " + e.getMessage());
            }
        }
        assertEquals(List.of(), undetected, "header bit flips not detected (byte.bit)");
        assertTrue(seen.containsAll(EnumSet.of(NOT_A_SHARD, UNSUPPORTED_FORMAT, HEADER_AUTHENTICATION_FAILED,
                MALFORMED_HEADER, CONTEXT_MISMATCH)), seen.toString());
        assertTrue(kmsRefusals > 0);
    }

    @Test
    void headerBitFlipped_readerRefusesToOpen() throws Exception {
        byte[] shard = encrypt(plain);
        Path salt = file(flip(shard, 20, 3));
        ShardException e = assertThrows(ShardException.class, () -> ShardReader.open(salt, kms, CONTEXT));
        assertEquals(HEADER_AUTHENTICATION_FAILED, e.reason());
        assertEquals("the shard header fails authentication: it was modified, or its wrapped data key was replaced",
                e.getMessage());
    }

    @Test
    void wrappedKeyReplacedByAnotherDataKeysEnvelope_failsTheHeaderTag() throws Exception {
        byte[] shard = encrypt(plain);
        ShardHeader h = ShardHeader.parse(shard);
        DataKey other = kms.newDataKey(CONTEXT); // same key version and context: the KMS unwraps it happily
        byte[] swapped = concat(h.withKey(h.keyName(), h.keyVersion(), other.ciphertext()).encode(),
                Arrays.copyOfRange(shard, h.length(), shard.length));
        assertEquals(HEADER_AUTHENTICATION_FAILED, stream(swapped, 1).shard().reason());
        assertEquals(0, stream(swapped, 1).written().length);
    }

    @Test
    void otherContextExpected_failsBeforeTheKmsIsAsked() throws Exception {
        byte[] shard = encrypt(plain);
        ShardHeader h = ShardHeader.parse(shard);
        int before = kms.unwraps.get();
        ShardException e = assertThrows(ShardException.class,
                () -> ShardDecryptor.open(h, kms, Map.of("model", "other", "shard", "007")));
        assertEquals(CONTEXT_MISMATCH, e.reason());
        assertEquals("the shard is bound to context {model=llama-3-8b, shard=007}, not {model=other, shard=007}",
                e.getMessage());
        assertEquals(CONTEXT_MISMATCH, assertThrows(ShardException.class,
                () -> ShardDecryptor.open(h, kms, null)).reason());
        assertEquals(before, kms.unwraps.get());
    }

    // -------------------------------------------------------------------- segments

    @Test
    void bitFlippedInEachSegment_failsAtThatSegment_releasingOnlyTheOnesBefore() throws Exception {
        for (byte[] p : List.of(plain, plainFull)) {
            byte[] shard = encrypt(p);
            int h = headerLength(shard);
            int n = (shard.length - h + C - 1) / C;
            for (int i = 0; i < n; i++) {
                int segLen = Math.min(C, shard.length - h - i * C);
                for (int at : new int[] {0, segLen / 2, segLen - 16, segLen - 1}) { // ciphertext and tag bytes
                    byte[] bad = flip(shard, h + i * C + at, 5);
                    ShardException e = assertStreamFails(bad, p, SEGMENT_AUTHENTICATION_FAILED, i, i);
                    assertTrue(e.getMessage().startsWith("segment " + i + (i == n - 1 ? ", the final one," : "")
                            + " fails authentication"), e.getMessage());
                    if (i == n - 1) {
                        assertReaderOpenFails(bad, SEGMENT_AUTHENTICATION_FAILED, i); // size is checked at open
                        continue;
                    }
                    try (ShardReader r = ShardReader.open(file(bad), kms, CONTEXT)) {
                        for (int j = 0; j < n; j++) {
                            ByteBuffer one = ByteBuffer.allocate(1);
                            if (j == i) {
                                int segment = j;
                                ShardException re = assertThrows(ShardException.class, () -> r.read((long) segment * S, one));
                                assertEquals(i, re.segment());
                                assertEquals(0, one.position(), "nothing of the damaged segment released");
                            } else {
                                r.read((long) j * S, one);
                                assertEquals(p[j * S], one.get(0), "segment " + j + " still reads");
                            }
                        }
                        // A read spanning into the damaged segment gets the good part before it and nothing after.
                        if (i > 0) {
                            ByteBuffer span = ByteBuffer.allocate(2 * S);
                            long from = (long) i * S - 5;
                            assertThrows(ShardException.class, () -> r.read(from, span));
                            assertEquals(5, span.position());
                            assertArrayEquals(Arrays.copyOfRange(p, (int) from, i * S), Arrays.copyOf(span.array(), 5));
                            assertTrue(Arrays.equals(new byte[2 * S - 5], 0, 2 * S - 5, span.array(), 5, 2 * S));
                        }
                    }
                }
            }
        }
    }

    @Test
    void truncatedAtEachSegmentBoundary_isDetected() throws Exception {
        for (byte[] p : List.of(plain, plainFull)) {
            byte[] shard = encrypt(p);
            int h = headerLength(shard);
            int n = (shard.length - h + C - 1) / C;
            // No segment at all.
            assertStreamFails(Arrays.copyOf(shard, h), p, TRUNCATED, 0, 0);
            assertReaderOpenFails(Arrays.copyOf(shard, h), TRUNCATED, 0);
            for (int j = 1; j < n; j++) {
                byte[] cut = Arrays.copyOf(shard, h + j * C); // segments j.. removed: j-1 now looks final
                ShardException e = assertStreamFails(cut, p, TRUNCATED, j - 1, j - 1);
                assertEquals("the shard is truncated: segment " + (j - 1) + " is not its final segment", e.getMessage());
                assertReaderOpenFails(cut, TRUNCATED, j - 1);
            }
        }
    }

    @Test
    void truncatedBetweenSegmentBoundaries_isDetected() throws Exception {
        byte[] shard = encrypt(plainFull);
        int h = headerLength(shard);
        for (int j = 0; j < 4; j++) {
            // Inside segment j's tag or exactly at its tag: "ends inside segment j".
            for (int r : new int[] {1, 15, 16}) {
                if (j == 0 && r == 16) continue; // a lone 16-byte segment 0 is an empty final segment: tag fails
                byte[] cut = Arrays.copyOf(shard, h + j * C + r);
                ShardException e = assertStreamFails(cut, plainFull, TRUNCATED, j, j);
                assertEquals("the shard is truncated: it ends inside segment " + j, e.getMessage());
                assertReaderOpenFails(cut, TRUNCATED, j);
            }
            // Deeper inside segment j: it is the final one now, and fails.
            for (int r : new int[] {17, C / 2, C - 1}) {
                byte[] cut = Arrays.copyOf(shard, h + j * C + r);
                ShardException e = assertStreamFails(cut, plainFull, SEGMENT_AUTHENTICATION_FAILED, j, j);
                assertTrue(e.getMessage().contains("cut inside this segment"), e.getMessage());
                assertReaderOpenFails(cut, SEGMENT_AUTHENTICATION_FAILED, j);
            }
        }
        // Inside the header.
        for (int r : new int[] {1, 3, 10, 48, h - 1}) {
            assertStreamFails(Arrays.copyOf(shard, r), plainFull, TRUNCATED, -1, 0);
        }
        assertStreamFails(new byte[0], plainFull, NOT_A_SHARD, -1, 0);
    }

    @Test
    void appended_afterAFullFinalSegment_isTrailingData() throws Exception {
        byte[] shard = encrypt(plainFull);
        for (byte[] extra : List.of(new byte[1], new byte[15], new byte[16], new byte[17], pattern(C, 9),
                pattern(3 * C + 1, 9))) {
            byte[] longer = concat(shard, extra);
            ShardException e = assertStreamFails(longer, plainFull, TRAILING_DATA, 3, 3);
            assertEquals("data follows the final segment (segment 3): the shard was extended", e.getMessage());
            assertReaderOpenFails(longer, TRAILING_DATA, 3);
        }
    }

    @Test
    void appended_afterAShortFinalSegment_isDetected() throws Exception {
        byte[] shard = encrypt(plain); // final segment holds 10 bytes: appended bytes merge into it
        for (byte[] extra : List.of(new byte[1], new byte[16], pattern(C, 9), pattern(5 * C, 9))) {
            byte[] longer = concat(shard, extra);
            assertStreamFails(longer, plain, SEGMENT_AUTHENTICATION_FAILED, 4, 4);
            Path p = file(longer);
            ShardException e = assertThrows(ShardException.class, () -> ShardReader.open(p, kms, CONTEXT));
            assertTrue(EnumSet.of(SEGMENT_AUTHENTICATION_FAILED, TRUNCATED, TRAILING_DATA).contains(e.reason()),
                    e.getMessage());
        }
    }

    @Test
    void twoSegmentsSwapped_failsAtTheFirstOfThem() throws Exception {
        byte[] shard = encrypt(plainFull);
        int h = headerLength(shard);
        for (int[] ij : new int[][] {{0, 1}, {1, 2}, {0, 3}, {2, 3}}) {
            int i = ij[0], j = ij[1];
            byte[] swapped = shard.clone();
            System.arraycopy(shard, h + j * C, swapped, h + i * C, C);
            System.arraycopy(shard, h + i * C, swapped, h + j * C, C);
            assertStreamFails(swapped, plainFull, SEGMENT_AUTHENTICATION_FAILED, i, i);
        }
    }

    @Test
    void segmentDroppedOrRepeated_isDetected() throws Exception {
        byte[] shard = encrypt(plain);
        int h = headerLength(shard);
        byte[] dropped = concat(Arrays.copyOf(shard, h + C), Arrays.copyOfRange(shard, h + 2 * C, shard.length));
        assertStreamFails(dropped, plain, SEGMENT_AUTHENTICATION_FAILED, 1, 1);
        byte[] repeated = concat(Arrays.copyOf(shard, h + 2 * C), segment(shard, 1),
                Arrays.copyOfRange(shard, h + 2 * C, shard.length));
        assertStreamFails(repeated, plain, SEGMENT_AUTHENTICATION_FAILED, 2, 2);
    }

    @Test
    void segmentSplicedFromAnotherFileUnderTheSameDataKey_isDetected() throws Exception {
        byte[] a = encrypt(plainFull);
        byte[] b = encrypt(plainFull); // same data key, same plaintext: only the salt and prefix differ
        int h = headerLength(a);
        assertArrayEquals(ShardHeader.parse(a).wrappedDataKey(), ShardHeader.parse(b).wrappedDataKey());
        for (int i = 0; i < 4; i++) {
            byte[] spliced = a.clone();
            System.arraycopy(b, h + i * C, spliced, h + i * C, C);
            assertStreamFails(spliced, plainFull, SEGMENT_AUTHENTICATION_FAILED, i, i);
        }
        // A's header on B's body.
        byte[] mixed = concat(Arrays.copyOf(a, h), Arrays.copyOfRange(b, h, b.length));
        assertStreamFails(mixed, plainFull, SEGMENT_AUTHENTICATION_FAILED, 0, 0);
        assertReaderOpenFails(mixed, SEGMENT_AUTHENTICATION_FAILED, 3);
    }

    @Test
    void decryptingStream_afterAFailure_keepsFailing() throws Exception {
        byte[] bad = flip(encrypt(plain), headerLength(encrypt(plain)) + C + 3, 0);
        var in = ShardDecryptor.newDecryptingStream(new ByteArrayInputStream(bad), kms, CONTEXT);
        assertArrayEquals(Arrays.copyOf(plain, S), in.readNBytes(S));
        ShardException e = assertThrows(ShardException.class, in::read);
        assertEquals(1, e.segment());
        assertEquals(e, assertThrows(ShardException.class, () -> in.read(new byte[10])));
        in.close();
    }

    // ------------------------------------------------------------------- wiping

    @Test
    void keys_areWipedAfterUse() throws Exception {
        byte[] shard = encrypt(plain);
        ShardEncryptor enc = ShardEncryptor.of(dataKey, CONTEXT, new ShardEncryptor.Options(S, 1));
        enc.close();
        assertTrue(enc.dataKeyWiped(), "the encryptor's copy of the data key");
        assertTrue(Arrays.stream(new byte[][] {dataKey.plaintext()}).allMatch(k -> !Arrays.equals(k, new byte[32])),
                "the caller's DataKey is the caller's to wipe");

        ShardDecryptor d = ShardDecryptor.open(ShardHeader.parse(shard), kms, CONTEXT);
        for (byte[] handed : kms.handedOut) {
            assertArrayEquals(new byte[32], handed, "the unwrapped data key is wiped once the file keys are derived");
        }
        ShardReader r = d.newReader(java.nio.channels.FileChannel.open(file(shard)));
        assertTrue(r.read(0, ByteBuffer.allocate(10)) > 0);
        r.close();
        assertTrue(r.cacheWiped(), "the reader's cached plaintext");
        d.close();
        assertTrue(d.keys().wiped(), "the file's derived keys");
    }
}
