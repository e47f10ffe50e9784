package dev.enclavekms.shard;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;

import static dev.enclavekms.shard.ShardRoundTripTest.CONTEXT;
import static dev.enclavekms.shard.ShardRoundTripTest.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The in-memory forms (a tensor a runtime holds): {@link ShardEncryptor#encrypt(ByteBuffer,
 * ByteBuffer)} writes exactly what the stream form writes, for any number of threads and
 * heap or direct buffers; {@link ShardDecryptor#decrypt(ByteBuffer, ByteBuffer, int)} gives
 * the plaintext back, or — for any damage — an error, an all-zero output and unmoved positions.
 */
class ShardBufferTest {
    static final int S = ShardFileParallelTest.S;
    static final int OFFSET = 5; // positions inside the buffers, and array offsets for heap ones

    final ShardFileParallelTest files = new ShardFileParallelTest();

    static ByteBuffer buffer(boolean direct, int n) {
        ByteBuffer b = direct ? ByteBuffer.allocateDirect(n + 2 * OFFSET)
                : ByteBuffer.wrap(new byte[n + 3 * OFFSET], OFFSET, n + 2 * OFFSET).slice();
        return b.position(OFFSET).limit(OFFSET + n);
    }

    static ByteBuffer of(boolean direct, byte[] bytes) {
        ByteBuffer b = buffer(direct, bytes.length);
        b.put(OFFSET, bytes);
        return b;
    }

    static byte[] remaining(ByteBuffer b, int from, int n) {
        byte[] out = new byte[n];
        b.get(from, out);
        return out;
    }

    @Test
    void encrypt_isByteIdenticalToTheStreamForm_decryptGivesThePlaintextBack() throws Exception {
        for (int size : new int[] {0, 1, S - 1, S, S + 1, 3 * S, 3 * S + 5}) {
            byte[] plain = pattern(size, size + 1);
            byte[] expected = files.streamEncrypt(plain, S);
            for (int threads : ShardFileParallelTest.THREADS) {
                for (boolean direct : new boolean[] {false, true}) {
                    String what = size + " bytes, " + threads + " threads" + (direct ? ", direct" : ", heap");
                    ByteBuffer in = of(direct, plain);
                    try (ShardEncryptor enc = files.fixed(S, threads)) {
                        assertEquals(expected.length, enc.shardLength(size), what);
                        ByteBuffer shard = buffer(direct, expected.length);
                        ShardHeader h = enc.encrypt(in, shard);
                        assertEquals(OFFSET + size, in.position(), what);
                        assertEquals(OFFSET + expected.length, shard.position(), what);
                        assertArrayEquals(expected, remaining(shard, OFFSET, expected.length), what);

                        int headerLength = h.encode().length;
                        ByteBuffer body = of(direct, Arrays.copyOfRange(expected, headerLength, expected.length));
                        ByteBuffer out = buffer(direct, size);
                        try (ShardDecryptor dec = ShardDecryptor.open(ShardHeader.parse(expected), files.kms, CONTEXT)) {
                            assertEquals(size, dec.decrypt(body, out, threads), what);
                        }
                        assertEquals(OFFSET + size, out.position(), what);
                        assertEquals(body.limit(), body.position(), what);
                        assertArrayEquals(plain, remaining(out, OFFSET, size), what);
                    }
                }
            }
        }
    }

    @Test
    void encrypt_intoTooSmallABuffer_isRefusedBeforeWritingAnything() throws Exception {
        try (ShardEncryptor enc = files.fixed(S, 2)) {
            ByteBuffer in = ByteBuffer.wrap(pattern(3 * S, 9));
            ByteBuffer shard = ByteBuffer.allocate((int) enc.shardLength(3 * S) - 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> enc.encrypt(in, shard));
            assertTrue(e.getMessage().contains("are needed"), e.getMessage());
            assertEquals(0, shard.position());
            assertArrayEquals(new byte[shard.capacity()], shard.array());
        }
    }

    /** Each kind of damage to the body: detected, the output all zeros, the positions where they were. */
    @Test
    void damagedBody_failsWholly_releasingNothing() throws Exception {
        int size = 4 * S + 7;
        byte[] plain = pattern(size, 3);
        byte[] shard = files.streamEncrypt(plain, S);
        ShardHeader header = ShardHeader.parse(shard);
        int h = header.encode().length;
        byte[] body = Arrays.copyOfRange(shard, h, shard.length);
        int c = S + ShardFormat.TAG_BYTES;
        // Same data key, another file (its own salt and nonce prefix, so its own file keys).
        java.io.ByteArrayOutputStream otherFile = new java.io.ByteArrayOutputStream();
        try (ShardEncryptor enc = ShardEncryptor.withNonceMaterial(ShardRoundTripTest.FIXED_KEY, CONTEXT,
                new ShardEncryptor.Options(S, 1), (salt, prefix) -> {
                    Arrays.fill(salt, (byte) 0x77);
                    Arrays.fill(prefix, (byte) 0x78);
                })) {
            enc.encrypt(new java.io.ByteArrayInputStream(pattern(size, 4)), otherFile);
        }
        byte[] other = otherFile.toByteArray();

        byte[] flipped = body.clone();
        flipped[2 * c + 10] ^= 1;
        byte[] cutAtSegment = Arrays.copyOf(body, 3 * c);
        byte[] cutInside = Arrays.copyOf(body, 3 * c + 9);
        byte[] appended = Arrays.copyOf(body, body.length + c);
        System.arraycopy(body, 0, appended, body.length, c);
        byte[] swapped = body.clone();
        System.arraycopy(body, c, swapped, 2 * c, c);
        System.arraycopy(body, 2 * c, swapped, c, c);
        byte[] spliced = body.clone();
        System.arraycopy(other, h + c, spliced, c, c);

        Object[][] cases = {
                {"bit flipped in segment 2", flipped, 2L},
                {"cut at a segment boundary", cutAtSegment, 2L},
                {"cut inside a segment", cutInside, 3L},
                {"a segment appended", appended, 4L},
                {"segments 1 and 2 swapped", swapped, 1L},
                {"segment 1 from another file", spliced, 1L},
        };
        for (Object[] k : cases) {
            for (int threads : ShardFileParallelTest.THREADS) {
                for (boolean direct : new boolean[] {false, true}) {
                    String what = k[0] + ", " + threads + " threads" + (direct ? ", direct" : ", heap");
                    ByteBuffer in = of(direct, (byte[]) k[1]);
                    ByteBuffer out = buffer(direct, size + 2 * S);
                    try (ShardDecryptor dec = ShardDecryptor.open(header, files.kms, CONTEXT)) {
                        ShardException e = assertThrows(ShardException.class, () -> dec.decrypt(in, out, threads), what);
                        assertEquals((long) k[2], e.segment(), what + ": " + e.getMessage());
                    }
                    assertEquals(OFFSET, in.position(), what);
                    assertEquals(OFFSET, out.position(), what);
                    assertArrayEquals(new byte[size + 2 * S], remaining(out, OFFSET, size + 2 * S), what);
                }
            }
        }
    }
}
