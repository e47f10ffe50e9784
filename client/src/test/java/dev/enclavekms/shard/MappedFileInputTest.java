package dev.enclavekms.shard;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Files at least {@link MappedFileInput#MIN_MAPPED_BYTES} long are read through a mapping
 * by the channel forms of encrypt and decrypt: same bytes as the stream forms, the
 * channel's position honoured and advanced, a growing file read to its end, a cut file an
 * IOException (never the JDK's InternalError for SIGBUS).
 */
class MappedFileInputTest {
    static final int S = 64 << 10;

    @TempDir
    Path dir;

    @Test
    void channelForms_throughTheMapping_matchTheStreamForms() throws Exception {
        int n = 3 * (1 << 20) + 12345;
        byte[] plain = ShardRoundTripTest.pattern(n, 11);
        byte[] prefix = ShardRoundTripTest.pattern(777, 12); // the channel starts past it
        Path in = dir.resolve("plain");
        Files.write(in, concat(prefix, plain));
        byte[] expected = new ShardRoundTripTest().encryptFixed(plain, S, 1);

        for (int threads : new int[] {1, 2}) {
            Path out = dir.resolve("shard-" + threads);
            try (ShardEncryptor enc = ShardEncryptor.withNonceMaterial(ShardRoundTripTest.FIXED_KEY,
                    ShardRoundTripTest.CONTEXT, new ShardEncryptor.Options(S, threads), ShardRoundTripTest::fixedNonces);
                 FileChannel src = FileChannel.open(in);
                 FileChannel dst = FileChannel.open(out, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                src.position(prefix.length);
                enc.encrypt(src, dst);
                assertEquals(src.size(), src.position(), "the input channel is read to its end");
            }
            assertArrayEquals(expected, Files.readAllBytes(out), threads + " threads");

            Path back = dir.resolve("back-" + threads);
            try (FileChannel src = FileChannel.open(out);
                 FileChannel dst = FileChannel.open(back, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ShardHeader h = ShardHeader.read(Channels.newInputStream(src));
                try (ShardDecryptor d = ShardDecryptor.open(h, new LocalEnvelopes("model-weights", 3),
                        ShardRoundTripTest.CONTEXT)) {
                    assertEquals(n, d.decrypt(src, dst, threads));
                }
                assertEquals(src.size(), src.position());
            }
            assertArrayEquals(plain, Files.readAllBytes(back), threads + " threads");
        }
    }

    @Test
    void aGrowingFile_isReadToItsEnd_andTheChannelPositionFollows() throws Exception {
        byte[] first = ShardRoundTripTest.pattern((1 << 20) + 5, 1);
        byte[] more = ShardRoundTripTest.pattern(4096 + 3, 2);
        Path f = dir.resolve("growing");
        Files.write(f, first);
        try (FileChannel ch = FileChannel.open(f); MappedFileInput in = MappedFileInput.of(ch)) {
            assertNotNull(in, "a file of 1 MiB and more is mapped");
            Files.write(f, more, StandardOpenOption.APPEND); // after mapping: beyond it
            assertArrayEquals(concat(first, more), readInOddChunks(in));
            assertEquals(first.length + more.length, ch.position());
        }
        try (FileChannel ch = FileChannel.open(f); MappedFileInput in = MappedFileInput.of(ch)) {
            assertEquals(first[0] & 0xff, in.read());
            byte[] some = new byte[100];
            assertEquals(100, in.read(some));
            in.close();
            assertEquals(101, ch.position(), "closing leaves the channel after what was read");
            assertThrows(IOException.class, in::read);
        }
    }

    @Test
    void aFileCutWhileRead_failsWithAnIOException() throws Exception {
        Path f = dir.resolve("cut");
        Files.write(f, ShardRoundTripTest.pattern(4 << 20, 3));
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE);
             MappedFileInput in = MappedFileInput.of(ch)) {
            byte[] buf = new byte[1 << 20];
            assertEquals(buf.length, in.read(buf));
            ch.truncate(1 << 20);
            IOException e = assertThrows(IOException.class, () -> in.readNBytes(buf, 0, buf.length));
            assertTrue(e.getMessage().contains("cut while it was being read"), e.getMessage());
        }
    }

    @Test
    void smallFiles_andMappingTurnedOff_useTheChannel() throws Exception {
        Path f = dir.resolve("small");
        Files.write(f, new byte[(int) MappedFileInput.MIN_MAPPED_BYTES - 1]);
        try (FileChannel ch = FileChannel.open(f)) {
            assertNull(MappedFileInput.of(ch));
        }
        Files.write(f, new byte[(int) MappedFileInput.MIN_MAPPED_BYTES]);
        System.setProperty("dev.enclavekms.shard.mmap", "false");
        try (FileChannel ch = FileChannel.open(f)) {
            assertNull(MappedFileInput.of(ch));
        } finally {
            System.clearProperty("dev.enclavekms.shard.mmap");
        }
    }

    private static byte[] readInOddChunks(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[70001];
        int n;
        while ((n = in.read(buf, 0, 1 + out.size() % buf.length)) >= 0) {
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
