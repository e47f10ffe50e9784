package dev.enclavekms.shard;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import static dev.enclavekms.shard.ShardRoundTripTest.CONTEXT;
import static dev.enclavekms.shard.ShardRoundTripTest.FIXED_KEY;
import static dev.enclavekms.shard.ShardRoundTripTest.boundarySizes;
import static dev.enclavekms.shard.ShardRoundTripTest.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The parallel paths of issue 8, item 5: file to file ({@link ShardEncryptor#encryptFile},
 * {@link ShardDecryptor#decryptFile}), the stream pipeline with the caller working too, and
 * random reads spread over threads ({@link ShardReader#readThreads}). Each must write
 * exactly what one thread writes.
 */
class ShardFileParallelTest {
    static final int S = 64;
    static final int[] THREADS = {1, 2, 4};

    @TempDir
    Path dir;

    final LocalEnvelopes kms = new LocalEnvelopes("model-weights", 3);

    ShardEncryptor fixed(int segmentSize, int threads) {
        return ShardEncryptor.withNonceMaterial(FIXED_KEY, CONTEXT, new ShardEncryptor.Options(segmentSize, threads),
                ShardRoundTripTest::fixedNonces);
    }

    /** The reference: one thread through the stream form. */
    byte[] streamEncrypt(byte[] plain, int segmentSize) throws IOException {
        try (ShardEncryptor enc = fixed(segmentSize, 1)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            enc.encrypt(new ByteArrayInputStream(plain), out);
            return out.toByteArray();
        }
    }

    LocalEnvelopes unwrapperFor() {
        return new LocalEnvelopes("model-weights", 3);
    }

    void fileRoundTrips(int segmentSize, List<Integer> sizes) throws Exception {
        for (int n : sizes) {
            byte[] plain = pattern(n, n);
            Path in = dir.resolve("plain-" + n);
            Files.write(in, plain);
            byte[] expected = streamEncrypt(plain, segmentSize);
            for (int threads : THREADS) {
                Path shard = dir.resolve("shard-" + n + "-" + threads);
                AtomicLong progress = new AtomicLong();
                try (ShardEncryptor enc = fixed(segmentSize, threads)) {
                    ShardHeader h = enc.encryptFile(in, shard, progress::addAndGet);
                    assertEquals(ShardHeader.parse(expected).length(), h.length());
                }
                assertArrayEquals(expected, Files.readAllBytes(shard), n + " bytes, " + threads + " threads");
                assertEquals(n, progress.get(), "progress counts the plaintext");

                Path back = dir.resolve("back-" + n + "-" + threads);
                AtomicLong read = new AtomicLong();
                assertEquals(n, ShardDecryptor.decryptFile(shard, back, kms, CONTEXT, threads, read::addAndGet));
                assertArrayEquals(plain, Files.readAllBytes(back), n + " bytes decrypted on " + threads + " threads");
                assertEquals(Files.size(shard) - ShardHeader.parse(expected).length(), read.get(),
                        "progress counts the body");
                assertEquals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
                        Files.getPosixFilePermissions(back), "plaintext only its owner can read");
                Files.delete(shard);
                Files.delete(back);
            }
            Files.delete(in);
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.toList(), "no temporary file left");
        }
    }

    @Test
    void fileToFile_everyBoundarySize_isByteIdenticalToOneThread_andRoundTrips() throws Exception {
        fileRoundTrips(S, boundarySizes(S));
    }

    @Test
    void fileToFile_mappedMegabyteSegments_severalSegments() throws Exception {
        int mib = 1 << 20;
        fileRoundTrips(mib, List.of(mib - 1, mib, mib + 1, 3 * mib + mib / 2));
    }

    @Test
    void fileToFile_withoutMapping_positionedReads() throws Exception {
        System.setProperty("dev.enclavekms.shard.mmap", "false");
        try {
            int mib = 1 << 20;
            fileRoundTrips(mib, List.of(0, 2 * mib + 1));
            fileRoundTrips(S, List.of(5 * S - 1));
        } finally {
            System.clearProperty("dev.enclavekms.shard.mmap");
        }
    }

    @Test
    void fileToFile_replacesAnExistingTarget_andLeavesItUntouchedOnFailure() throws Exception {
        byte[] plain = pattern(5 * S + 3, 9);
        Path in = dir.resolve("plain");
        Files.write(in, plain);
        Path shard = dir.resolve("shard");
        Files.write(shard, new byte[100_000]); // longer than the shard: must not survive as a tail
        try (ShardEncryptor enc = fixed(S, 2)) {
            enc.encryptFile(in, shard, null);
        }
        assertArrayEquals(streamEncrypt(plain, S), Files.readAllBytes(shard));

        Path out = dir.resolve("out");
        Files.write(out, "keep me".getBytes());
        byte[] bad = Files.readAllBytes(shard);
        bad[ShardHeader.parse(bad).length() + 2 * (S + 16) + 7] ^= 1;
        Files.write(shard, bad);
        for (int threads : THREADS) {
            ShardException e = assertThrows(ShardException.class,
                    () -> ShardDecryptor.decryptFile(shard, out, kms, CONTEXT, threads, null));
            assertEquals(ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED, e.reason());
            assertEquals(2, e.segment(), "the lowest failing segment, whatever the threads");
            assertArrayEquals("keep me".getBytes(), Files.readAllBytes(out));
        }
        try (var left = Files.list(dir)) {
            assertEquals(3, left.count(), "plain, shard, out: no temporary file");
        }
    }

    @Test
    void fileToFile_twoDamagedSegments_reportsTheFirst() throws Exception {
        byte[] plain = pattern(40 * S, 10);
        Path in = dir.resolve("plain");
        Files.write(in, plain);
        Path shard = dir.resolve("shard");
        try (ShardEncryptor enc = fixed(S, 1)) {
            enc.encryptFile(in, shard, null);
        }
        byte[] bad = Files.readAllBytes(shard);
        int h = ShardHeader.parse(bad).length();
        bad[h + 30 * (S + 16)] ^= 1;
        bad[h + 11 * (S + 16)] ^= 1;
        Files.write(shard, bad);
        for (int threads : THREADS) {
            ShardException e = assertThrows(ShardException.class,
                    () -> ShardDecryptor.decryptFile(shard, dir.resolve("out"), kms, CONTEXT, threads, null));
            assertEquals(11, e.segment(), threads + " threads");
            assertFalse(Files.exists(dir.resolve("out")));
        }
    }

    @Test
    void streamPipeline_callerWorksToo_outputIdenticalForAnyThreads() throws Exception {
        for (int n : List.of(0, 1, S - 1, S, S + 1, 50 * S + 7)) {
            byte[] plain = pattern(n, 3);
            byte[] expected = streamEncrypt(plain, S);
            for (int threads : THREADS) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                try (ShardEncryptor enc = fixed(S, threads)) {
                    enc.encrypt(Channels.newChannel(new ByteArrayInputStream(plain)), Channels.newChannel(out));
                }
                assertArrayEquals(expected, out.toByteArray(), n + " bytes, " + threads + " threads (channel)");
                ByteArrayInputStream src = new ByteArrayInputStream(expected);
                ShardHeader h = ShardHeader.read(src);
                ByteArrayOutputStream back = new ByteArrayOutputStream();
                try (ShardDecryptor d = ShardDecryptor.open(h, kms, CONTEXT)) {
                    assertEquals(n, d.decrypt(src, back, threads));
                }
                assertArrayEquals(plain, back.toByteArray(), n + " bytes decrypted on " + threads + " threads");
            }
        }
    }

    /** Positions and lengths around every segment boundary, reading 1 to 4 segments. */
    static List<long[]> boundaryReads(int segments) {
        List<long[]> reads = new ArrayList<>();
        for (int b = 0; b <= segments; b++) {
            for (int d : new int[] {-1, 0, 1}) {
                long pos = (long) b * S + d;
                if (pos < 0) continue;
                for (int len : new int[] {1, S - 1, S, S + 1, 2 * S, 2 * S + 2, 4 * S - 1}) {
                    reads.add(new long[] {pos, len});
                }
            }
        }
        return reads;
    }

    @Test
    void parallelSlice_atEveryBoundary_readsWhatOneThreadReads() throws Exception {
        int segments = 6;
        for (int size : new int[] {segments * S, segments * S - 5}) {
            byte[] plain = pattern(size, size);
            Path shard = dir.resolve("shard-" + size);
            Files.write(shard, streamEncrypt(plain, S));
            for (int threads : THREADS) {
                try (ShardReader r = ShardReader.open(shard, kms, CONTEXT).readThreads(threads)) {
                    for (long[] read : boundaryReads(segments)) {
                        long pos = read[0];
                        int len = (int) read[1];
                        for (boolean direct : new boolean[] {false, true}) {
                            ByteBuffer dst = direct ? ByteBuffer.allocateDirect(len + 3) : ByteBuffer.allocate(len + 3);
                            dst.position(3); // an offset into the array too
                            int n = r.read(pos, dst);
                            String what = size + "-byte shard, " + threads + " threads, " + len + " at " + pos
                                    + (direct ? " (direct)" : " (heap)");
                            if (pos >= size) {
                                assertEquals(-1, n, what);
                                continue;
                            }
                            int expect = (int) Math.min(len, size - pos);
                            assertEquals(expect, n, what);
                            assertEquals(3 + expect, dst.position(), what);
                            byte[] got = new byte[expect];
                            dst.get(3, got);
                            assertArrayEquals(Arrays.copyOfRange(plain, (int) pos, (int) pos + expect), got, what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void parallelSlice_damagedSegment_failsAndReleasesNothingOfTheRead() throws Exception {
        byte[] plain = pattern(8 * S, 4);
        byte[] shard = streamEncrypt(plain, S);
        shard[ShardHeader.parse(shard).length() + 3 * (S + 16) + 5] ^= 1;
        Path p = dir.resolve("bad");
        Files.write(p, shard);
        try (ShardReader r = ShardReader.open(p, kms, CONTEXT).readThreads(3)) {
            for (boolean direct : new boolean[] {false, true}) {
                ByteBuffer dst = direct ? ByteBuffer.allocateDirect(5 * S) : ByteBuffer.allocate(5 * S);
                ShardException e = assertThrows(ShardException.class, () -> r.read(S + 1, dst));
                assertEquals(3, e.segment());
                assertEquals(0, dst.position(), "position unchanged");
                for (int i = 0; i < dst.capacity(); i++) {
                    assertEquals(0, dst.get(i), "byte " + i + " withheld");
                }
            }
            ByteBuffer before = ByteBuffer.allocate(2 * S);
            assertEquals(2 * S, r.read(S, before), "segments before the damage still read");
            assertArrayEquals(Arrays.copyOfRange(plain, S, 3 * S), before.array());
        }
    }

    @Test
    void encryptInto_truncatesALongerOutput_andLeavesChannelPositionsAlone() throws Exception {
        byte[] plain = pattern(3 * S + 1, 5);
        Path in = dir.resolve("in");
        Files.write(in, plain);
        Path out = dir.resolve("out");
        Files.write(out, new byte[10 * S * 2]);
        try (ShardEncryptor enc = fixed(S, 2);
             FileChannel src = FileChannel.open(in, StandardOpenOption.READ);
             FileChannel dst = FileChannel.open(out, StandardOpenOption.WRITE)) {
            src.position(7);
            enc.encryptInto(src, dst, null);
            assertEquals(7, src.position());
            assertEquals(0, dst.position());
        }
        assertArrayEquals(streamEncrypt(plain, S), Files.readAllBytes(out));
        assertTrue(Files.size(out) < 10 * S * 2);
    }
}
