package dev.enclavekms.shard;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static dev.enclavekms.shard.ShardRoundTripTest.CONTEXT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Parallel reads returned with a helper still decrypting: a helper thread that had started
 * its turn was "cancelled" (its FutureTask marked so, the thread running on) and not waited
 * for, so the read came back with a segment of zeros that the helper filled in later.
 * Found by bench/run-shards (a 4 MiB slice of 1 MiB segments); here many multi-segment
 * reads in a row make the window hard to miss.
 */
class ShardSliceRegressionTest {
    @TempDir
    Path dir;

    @Test
    void parallelReads_inARow_neverReturnBeforeEveryHelperHasFinished() throws Exception {
        int seg = 64 << 10;
        int size = 8 << 20;
        byte[] plain = new byte[size];
        new Random(7).nextBytes(plain);
        ShardFileParallelTest t = new ShardFileParallelTest();
        Path shard = dir.resolve("s");
        Files.write(shard, t.streamEncrypt(plain, seg));
        Random offsets = new Random(11);
        for (int threads : new int[] {2, 3}) {
            try (ShardReader r = ShardReader.open(shard, t.kms, CONTEXT).readThreads(threads)) {
                for (int i = 0; i < 300; i++) {
                    boolean direct = i % 2 == 1;
                    int len = seg * 4 + offsets.nextInt(seg);
                    long at = (long) (offsets.nextDouble() * (size - len));
                    ByteBuffer dst = direct ? ByteBuffer.allocateDirect(len) : ByteBuffer.allocate(len);
                    r.readFully(at, dst);
                    byte[] got = new byte[len];
                    dst.flip().get(got);
                    assertArrayEquals(Arrays.copyOfRange(plain, (int) at, (int) at + len), got,
                            threads + " threads, " + len + " bytes at " + at + (direct ? " (direct)" : " (heap)"));
                }
            }
        }
    }
}
