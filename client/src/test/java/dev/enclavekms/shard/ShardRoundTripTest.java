package dev.enclavekms.shard;

import dev.enclavekms.client.DataKey;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Encrypt and decrypt through every form, at every size that matters. */
class ShardRoundTripTest {
    static final Map<String, String> CONTEXT = Map.of("model", "llama-3-8b", "shard", "007");
    static final int S = 64;

    @TempDir
    Path dir;

    final LocalEnvelopes kms = new LocalEnvelopes("model-weights", 3);

    static byte[] pattern(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** The sizes where segment logic can go wrong, for segment size {@code s}. */
    static List<Integer> boundarySizes(int s) {
        List<Integer> sizes = new ArrayList<>(List.of(0, 1, 2));
        for (int k = 1; k <= 3; k++) {
            sizes.addAll(List.of(k * s - 1, k * s, k * s + 1));
        }
        sizes.add(7 * s + s / 2);
        return sizes;
    }

    static byte[] encrypt(ShardEncryptor enc, byte[] plaintext) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        enc.encrypt(new ByteArrayInputStream(plaintext), out);
        return out.toByteArray();
    }

    static byte[] decrypt(byte[] shard, DataKeyUnwrapper u, Map<String, String> ctx) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ShardDecryptor.decrypt(new ByteArrayInputStream(shard), out, u, ctx);
        return out.toByteArray();
    }

    ShardEncryptor encryptor(int segmentSize, int threads) {
        return ShardEncryptor.of(kms.newDataKey(CONTEXT), CONTEXT, new ShardEncryptor.Options(segmentSize, threads));
    }

    @Test
    void everySize_roundTripsThroughStreams() throws Exception {
        try (ShardEncryptor enc = encryptor(S, 1)) {
            for (int n : boundarySizes(S)) {
                byte[] plain = pattern(n, n);
                byte[] shard = encrypt(enc, plain);
                ShardHeader h = ShardHeader.parse(shard);
                long segments = Math.max(1, (n + S - 1) / S);
                assertEquals(h.length() + n + 16 * segments, shard.length, "layout for " + n + " bytes");
                assertArrayEquals(plain, decrypt(shard, kms, CONTEXT), "size " + n);
            }
        }
    }

    @Test
    void everySize_roundTripsThroughEncryptingStreamInOddChunks() throws Exception {
        try (ShardEncryptor enc = encryptor(S, 1)) {
            for (int n : boundarySizes(S)) {
                byte[] plain = pattern(n, n);
                ByteArrayOutputStream sink = new ByteArrayOutputStream();
                try (OutputStream out = enc.newEncryptingStream(sink)) {
                    int i = 0;
                    for (int step = 1; i < n; step = step % 23 + 1) { // 1, 2, ... 23 bytes at a time, and single bytes
                        int k = Math.min(step, n - i);
                        if (k == 1) out.write(plain[i]);
                        else out.write(plain, i, k);
                        i += k;
                    }
                }
                assertArrayEquals(encryptFixed(plain, S, 1), reEncryptWithSameNonces(sink.toByteArray(), plain),
                        "stream and one-shot agree, size " + n);
                try (InputStream in = ShardDecryptor.newDecryptingStream(new ByteArrayInputStream(sink.toByteArray()),
                        kms, CONTEXT)) {
                    assertArrayEquals(plain, readInOddChunks(in), "size " + n);
                }
            }
        }
    }

    /** Encrypts with a fixed data key and fixed nonce material. */
    byte[] encryptFixed(byte[] plain, int segmentSize, int threads) throws IOException {
        try (ShardEncryptor enc = ShardEncryptor.withNonceMaterial(FIXED_KEY, CONTEXT,
                new ShardEncryptor.Options(segmentSize, threads), ShardRoundTripTest::fixedNonces)) {
            return encrypt(enc, plain);
        }
    }

    /** The shard's plaintext encrypted again with the fixed key and nonces, through the one-shot path. */
    byte[] reEncryptWithSameNonces(byte[] shard, byte[] plain) throws IOException {
        return encryptFixed(plain, ShardHeader.parse(shard).segmentSize(), 1);
    }

    static final DataKey FIXED_KEY = new LocalEnvelopes("model-weights", 3).dataKey(pattern(32, 1), pattern(12, 2), CONTEXT);

    static void fixedNonces(byte[] salt, byte[] prefix) {
        Arrays.fill(salt, (byte) 0x5a);
        Arrays.fill(prefix, (byte) 0xa5);
    }

    static byte[] readInOddChunks(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[29];
        for (int step = 1; ; step = step % 29 + 1) {
            if (step == 1) {
                int b = in.read();
                if (b < 0) break;
                out.write(b);
                continue;
            }
            int n = in.read(buf, 0, step);
            if (n < 0) break;
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    @Test
    void everySize_roundTripsThroughChannels() throws Exception {
        try (ShardEncryptor enc = encryptor(S, 1)) {
            for (int n : boundarySizes(S)) {
                byte[] plain = pattern(n, n);
                Path p = dir.resolve("plain-" + n);
                Path s = dir.resolve("shard-" + n);
                Path back = dir.resolve("back-" + n);
                Files.write(p, plain);
                try (FileChannel in = FileChannel.open(p); FileChannel out = FileChannel.open(s,
                        StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                    enc.encrypt(in, out);
                }
                ShardHeader h = ShardHeaders.read(s);
                try (FileChannel in = FileChannel.open(s); FileChannel out = FileChannel.open(back,
                        StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                     ShardDecryptor d = ShardDecryptor.open(h, kms, CONTEXT)) {
                    in.position(h.length());
                    assertEquals(n, d.decrypt(in, out, 1));
                }
                assertArrayEquals(plain, Files.readAllBytes(back), "size " + n);

                Path viaChannel = dir.resolve("shard-ch-" + n);
                try (var out = enc.newEncryptingChannel(FileChannel.open(viaChannel, StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE))) {
                    ByteBuffer src = ByteBuffer.wrap(plain);
                    while (src.hasRemaining()) {
                        out.write(src.slice(src.position(), Math.min(10, src.remaining())));
                        src.position(src.position() + Math.min(10, src.remaining()));
                    }
                }
                try (ShardReader r = ShardReader.open(viaChannel, kms, CONTEXT)) {
                    ByteBuffer all = ByteBuffer.allocate(n);
                    r.readFully(0, all);
                    assertArrayEquals(plain, all.array(), "size " + n);
                }
            }
        }
    }

    @Test
    void multiThreaded_outputEqualsSingleThreaded() throws Exception {
        for (int n : List.of(0, 1, S, 50 * S, 50 * S + 3, 1000 * S + 1)) {
            byte[] plain = pattern(n, 7 * n);
            byte[] one = encryptFixed(plain, S, 1);
            for (int threads : List.of(2, 3, 8)) {
                assertArrayEquals(one, encryptFixed(plain, S, threads), n + " bytes, " + threads + " threads");
            }
            ShardHeader h = ShardHeader.parse(one);
            for (int threads : List.of(1, 2, 4)) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                ByteArrayInputStream in = new ByteArrayInputStream(one);
                in.skipNBytes(h.length());
                try (ShardDecryptor d = ShardDecryptor.open(h, kms, CONTEXT)) {
                    d.decrypt(in, out, threads);
                }
                assertArrayEquals(plain, out.toByteArray(), n + " bytes, decrypted on " + threads + " threads");
            }
        }
    }

    @Test
    void randomAccess_atEveryBoundary_matchesThePlaintext() throws Exception {
        int n = 5 * S + 17;
        byte[] plain = pattern(n, 99);
        Path shard = dir.resolve("ra");
        Files.write(shard, encryptFixed(plain, S, 1));
        try (ShardReader r = ShardReader.open(shard, kms, CONTEXT)) {
            assertEquals(n, r.size());
            assertEquals(6, r.segmentCount());
            for (int pos = 0; pos <= n + 1; pos++) {
                for (int len : List.of(0, 1, 2, S - 1, S, S + 1, 2 * S + 1, n)) {
                    ByteBuffer dst = ByteBuffer.allocate(len);
                    int got = r.read(pos, dst);
                    int expected = pos >= n ? -1 : Math.min(len, n - pos);
                    if (pos >= n) {
                        assertEquals(-1, got, "read at " + pos);
                        continue;
                    }
                    assertEquals(expected, got, "read " + len + " at " + pos);
                    assertArrayEquals(Arrays.copyOfRange(plain, pos, pos + expected),
                            Arrays.copyOf(dst.array(), expected), "read " + len + " at " + pos);
                }
            }
            assertThrows(java.io.EOFException.class, () -> r.readFully(n - 3, ByteBuffer.allocate(4)));
        }
    }

    /** The reader maps the file: a file cut or extended while it is open must still fail cleanly (or read fine). */
    @Test
    void randomAccess_fileChangedWhileOpen_isTruncatedNotACrash() throws Exception {
        // 64-byte segments: the cut is inside the mapping's last page (reads as zeros);
        // 16 KiB: whole pages past the end (SIGBUS, which the JDK turns into an InternalError).
        for (int seg : new int[] {S, 16 << 10})
        for (boolean mmap : new boolean[] {true, false}) {
            int n = 6 * seg;
            byte[] plain = pattern(n, 5);
            byte[] sealed = encryptFixed(plain, seg, 1);
            Path shard = dir.resolve("changing-" + seg + "-" + mmap);
            Files.write(shard, sealed);
            String before = System.getProperty("dev.enclavekms.shard.mmap");
            System.setProperty("dev.enclavekms.shard.mmap", Boolean.toString(mmap));
            try (ShardReader r = ShardReader.open(shard, kms, CONTEXT);
                 FileChannel ch = FileChannel.open(shard, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                ch.write(ByteBuffer.wrap(new byte[3 * seg])); // appended after open: outside the reader's shard
                ByteBuffer all = ByteBuffer.allocate(n);
                r.readFully(0, all);
                assertArrayEquals(plain, all.array(), "mmap=" + mmap);
                ch.truncate(sealed.length / 2);
                ShardException e = assertThrows(ShardException.class,
                        () -> r.read(4L * seg, ByteBuffer.allocate(10)), "mmap=" + mmap); // 5 is cached since open
                assertEquals(ShardException.Reason.TRUNCATED, e.reason(), e.getMessage());
                assertTrue(e.getMessage().contains("did it change while open?"), e.getMessage());
            } finally {
                if (before == null) System.clearProperty("dev.enclavekms.shard.mmap");
                else System.setProperty("dev.enclavekms.shard.mmap", before);
            }
        }
    }

    /** Whole segments are decrypted straight into a heap buffer's array: offsets into it, and direct buffers, must not matter. */
    @Test
    void randomAccess_intoSlicedReadOnlyAndDirectBuffers_matchesThePlaintext() throws Exception {
        int n = 4 * S + 9;
        byte[] plain = pattern(n, 7);
        Path shard = dir.resolve("ra-buffers");
        Files.write(shard, encryptFixed(plain, S, 1));
        try (ShardReader r = ShardReader.open(shard, kms, CONTEXT)) {
            for (int pos : new int[] {0, 1, S - 1, S, S + 3, 3 * S}) {
                for (int len : new int[] {S, S + 1, 2 * S + 5, n - pos}) {
                    int expected = Math.min(len, n - pos);
                    ByteBuffer sliced = ByteBuffer.allocate(len + 11).position(5).slice().limit(len);
                    ByteBuffer direct = ByteBuffer.allocateDirect(len);
                    for (ByteBuffer dst : List.of(sliced, direct)) {
                        assertEquals(expected, r.read(pos, dst), "read " + len + " at " + pos);
                        byte[] got = new byte[expected];
                        dst.flip().get(got);
                        assertArrayEquals(Arrays.copyOfRange(plain, pos, pos + expected), got,
                                (dst.isDirect() ? "direct" : "sliced") + " read " + len + " at " + pos);
                    }
                    ByteBuffer backing = ByteBuffer.allocate(len);
                    assertThrows(java.nio.ReadOnlyBufferException.class, () -> r.read(pos, backing.asReadOnlyBuffer()));
                }
            }
        }
    }

    @Test
    void randomAccess_smallStepsThroughOneSegment_decryptItOnce() throws Exception {
        byte[] plain = pattern(4 * S, 5);
        Path shard = dir.resolve("cache");
        Files.write(shard, encryptFixed(plain, S, 1));
        try (ShardReader r = ShardReader.open(shard, kms, CONTEXT)) {
            long before = r.segmentDecryptions();
            for (int pos = S; pos < 2 * S; pos++) {
                ByteBuffer one = ByteBuffer.allocate(1);
                r.read(pos, one);
                assertEquals(plain[pos], one.get(0));
            }
            assertEquals(before + 1, r.segmentDecryptions(), "segment 1 decrypted once for " + S + " one-byte reads");
        }
    }

    @Test
    void emptyPlaintext_isOneEmptySegment() throws Exception {
        byte[] shard = encryptFixed(new byte[0], S, 1);
        ShardHeader h = ShardHeader.parse(shard);
        assertEquals(h.length() + 16, shard.length);
        Path p = dir.resolve("empty");
        Files.write(p, shard);
        try (ShardReader r = ShardReader.open(p, kms, CONTEXT)) {
            assertEquals(0, r.size());
            assertEquals(-1, r.read(0, ByteBuffer.allocate(1)));
        }
    }

    @Test
    void oneDataKey_manyFiles_eachGetsItsOwnSaltAndPrefix() throws Exception {
        try (ShardEncryptor enc = encryptor(S, 1)) {
            ShardHeader a = ShardHeader.parse(encrypt(enc, pattern(10, 1)));
            ShardHeader b = ShardHeader.parse(encrypt(enc, pattern(10, 1)));
            assertTrue(!Arrays.equals(a.salt(), b.salt()) && !Arrays.equals(a.noncePrefix(), b.noncePrefix()));
            assertArrayEquals(a.wrappedDataKey(), b.wrappedDataKey());
        }
    }

    @Test
    void streamAndChannelForms_closeWhatTheyShould() throws Exception {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        try (ShardEncryptor enc = encryptor(S, 1)) {
            OutputStream out = enc.newEncryptingStream(sink);
            out.write(pattern(3, 3));
            out.close();
            out.close(); // idempotent
            assertThrows(IOException.class, () -> out.write(1));
        }
        assertArrayEquals(pattern(3, 3), decrypt(sink.toByteArray(), kms, CONTEXT));
        assertThrows(IllegalStateException.class, () -> {
            ShardEncryptor enc = encryptor(S, 1);
            enc.close();
            enc.encrypt(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream());
        });
        Channels.newChannel(new ByteArrayOutputStream()).close();
    }
}
