package dev.enclavekms.shard;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.enclavekms.shard.ShardRoundTripTest.CONTEXT;
import static dev.enclavekms.shard.ShardRoundTripTest.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Shards of just over 2 GiB (2^31 + 12 MiB + 12345 bytes), so that every position, length and
 * segment offset that could overflow an int is crossed. The plaintext is a sparse file
 * (holes with marked regions); the ciphertext is never written in full: it is piped from
 * the encrypting thread into a streaming decryptor, and only the segments that the
 * random-access reads touch are written to a sparse file (the others stay holes), so the
 * suite needs neither 2 GiB of disk nor 2 GiB of disk bandwidth (which on these VMs runs
 * at 150–700 MiB/s, against GiB/s for the cipher).
 */
class SparseShardTest {
    static final int SEGMENT = 4 << 20;
    static final long SIZE = (2L << 30) + 3L * SEGMENT + 12345;
    static final long[] MARKS = {0, SEGMENT - 3, (1L << 31) - 5, SIZE - 100};

    @TempDir
    Path dir;

    final LocalEnvelopes kms = new LocalEnvelopes("model-weights", 3);

    private Path sparsePlaintext() throws IOException {
        Path plain = dir.resolve("sparse.bin");
        try (RandomAccessFile f = new RandomAccessFile(plain.toFile(), "rw")) {
            f.setLength(SIZE);
            for (long at : MARKS) {
                f.seek(at);
                f.write(pattern(100, at));
            }
        }
        return plain;
    }

    private ShardEncryptor encryptor() {
        return ShardEncryptor.of(kms.newDataKey(CONTEXT), CONTEXT, new ShardEncryptor.Options(SEGMENT, 2));
    }

    /**
     * One encryption (2 threads) feeds two consumers: a pipe into a streaming decryptor
     * that compares every byte with the source, and a sparse file that receives only the
     * header and the segments the random-access part reads.
     */
    @Test
    void sparseTwoGiB_streamsBackToTheSource_andReadsAtRandomAcrossTheIntBoundary() throws Exception {
        Path plain = sparsePlaintext();
        Path shard = dir.resolve("sparse.eks");
        long c = SEGMENT + ShardFormat.TAG_BYTES;
        long n = (SIZE + SEGMENT - 1) / SEGMENT;
        long k = (1L << 31) / SEGMENT; // the segment holding plaintext position 2^31
        Set<Long> written = Set.of(0L, k - 1, k, n - 2, n - 1);
        PipedInputStream pipeIn = new PipedInputStream(8 << 20);
        PipedOutputStream pipeOut = new PipedOutputStream(pipeIn);
        long t0 = System.nanoTime();
        CompletableFuture<ShardHeader> encrypting = CompletableFuture.supplyAsync(() -> {
            try (ShardEncryptor enc = encryptor(); InputStream in = Files.newInputStream(plain);
                 FileChannel file = FileChannel.open(shard, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                 OutputStream tee = new SelectiveTee(pipeOut, file, written, c)) {
                return enc.encrypt(in, tee);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        long total = 0;
        try (InputStream dec = ShardDecryptor.newDecryptingStream(pipeIn, kms, CONTEXT);
             InputStream src = Files.newInputStream(plain)) {
            byte[] a = new byte[1 << 20];
            byte[] b = new byte[1 << 20];
            while (true) {
                int got = dec.readNBytes(a, 0, a.length);
                int want = src.readNBytes(b, 0, got == 0 ? b.length : got);
                assertEquals(want, got, "lengths differ after " + total + " bytes");
                if (got == 0) break;
                assertEquals(-1, Arrays.mismatch(a, 0, got, b, 0, got), "content differs after " + total + " bytes");
                total += got;
            }
        }
        ShardHeader header = encrypting.get(120, TimeUnit.SECONDS);
        assertEquals(SIZE, total);
        System.out.printf("sparse %d MiB: encrypt (2 threads) + decrypt (1 thread) + compare, piped: %.0f MiB/s%n",
                SIZE >> 20, (SIZE >> 20) / ((System.nanoTime() - t0) / 1e9));

        assertEquals(header.length() + SIZE + 16 * n, Files.size(shard));
        try (ShardReader r = ShardReader.open(shard, kms, CONTEXT); FileChannel src = FileChannel.open(plain)) {
            assertEquals(SIZE, r.size());
            assertEquals(n, r.segmentCount());
            // across segments k-1|k (plaintext position 2^31) and n-2|n-1, inside 0 and the final one
            for (long at : new long[] {0, 100, (1L << 31) - 60, (k - 1) * SEGMENT + 5, (n - 1) * SEGMENT - 70, SIZE - 140}) {
                ByteBuffer got = ByteBuffer.allocate(140);
                ByteBuffer want = ByteBuffer.allocate(140);
                r.readFully(at, got);
                src.read(want, at);
                assertArrayEquals(want.array(), got.array(), "at " + at);
            }
            // A segment that was never written is a hole: it fails, and says which segment.
            ShardException hole = assertThrows(ShardException.class,
                    () -> r.read((k + 1) * SEGMENT + 7, ByteBuffer.allocate(1)));
            assertEquals(ShardException.Reason.SEGMENT_AUTHENTICATION_FAILED, hole.reason());
            assertEquals(k + 1, hole.segment());
        }
    }

    /**
     * Passes everything to {@code all}; writes the header and the chosen segments to
     * {@code file} at their offsets and skips the rest, which stay holes; sets the file's
     * full length when closed.
     */
    private static final class SelectiveTee extends OutputStream {
        private final OutputStream all;
        private final FileChannel file;
        private final Set<Long> segments;
        private final long segmentBytes;
        private long offset;
        private int headerLength = -1;

        SelectiveTee(OutputStream all, FileChannel file, Set<Long> segments, long segmentBytes) {
            this.all = all;
            this.file = file;
            this.segments = segments;
            this.segmentBytes = segmentBytes;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            all.write(b, off, len);
            if (headerLength < 0) {
                headerLength = len; // the encryptor writes the header in one call, then whole segments
                file.write(ByteBuffer.wrap(b, off, len), 0);
            } else if (segments.contains((offset - headerLength) / segmentBytes)) {
                file.write(ByteBuffer.wrap(b, off, len), offset);
            }
            offset += len;
        }

        @Override
        public void close() throws IOException {
            all.close();
            if (file.size() < offset) {
                file.write(ByteBuffer.allocate(1), offset - 1); // the full length; the rest stays a hole
            }
        }
    }
}
