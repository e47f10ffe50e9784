package dev.enclavekms.shard;

import dev.enclavekms.cache.DataKeyCache;
import dev.enclavekms.client.Plaintext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The data-key cache as the shard library's {@link DataKeyUnwrapper}: ShardReader and ShardDecryptor through it. */
class ShardCacheTest {
    static final Map<String, String> CTX = Map.of("model", "llama", "shard", "007");

    @TempDir
    Path dir;

    private final LocalEnvelopes kms = new LocalEnvelopes("model-weights", 3);
    private final DataKeyCache.Source source = (env, ctx) -> new Plaintext("model-weights", 3, kms.unwrap(env, ctx));

    private Path shard(byte[] plain) throws Exception {
        Path p = dir.resolve("s");
        try (ShardEncryptor enc = ShardEncryptor.of(kms.newDataKey(CTX), CTX, new ShardEncryptor.Options(4096, 1));
             OutputStream out = Files.newOutputStream(p)) {
            enc.encrypt(new ByteArrayInputStream(plain), out);
        }
        return p;
    }

    @Test
    void shardOpenedThreeTimes_asksTheKmsOnce_andEveryKeyHandedOutIsWiped() throws Exception {
        byte[] plain = new byte[3 * 4096 + 5];
        new Random(7).nextBytes(plain);
        Path p = shard(plain);
        List<byte[]> given = new ArrayList<>();
        try (DataKeyCache cache = new DataKeyCache(source, DataKeyCache.Limits.of(Duration.ofMinutes(5)))) {
            DataKeyUnwrapper recording = (env, ctx) -> {
                byte[] k = cache.unwrap(env, ctx);
                given.add(k);
                return k;
            };
            for (int i = 0; i < 2; i++) {
                try (ShardReader r = ShardReader.open(p, recording, CTX)) {
                    ByteBuffer dst = ByteBuffer.allocate(100);
                    r.read(4090, dst);
                    assertArrayEquals(java.util.Arrays.copyOfRange(plain, 4090, 4190), dst.array());
                }
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (var in = Files.newInputStream(p)) {
                ShardDecryptor.decrypt(in, out, recording, CTX);
            }
            assertArrayEquals(plain, out.toByteArray());

            assertEquals(1, kms.unwraps.get());
            assertEquals(new DataKeyCache.Stats(2, 1, 0, 1), cache.stats());
        }
        assertEquals(3, given.size());
        for (byte[] k : given) assertArrayEquals(new byte[32], k, "the library wipes what the cache hands it");
        for (byte[] k : kms.handedOut) assertArrayEquals(new byte[32], k, "the KMS reply's array is wiped too");
    }

    @Test
    void protectingTheShardSize_retiresTheKeyAtMaxBytes() throws Exception {
        byte[] plain = new byte[10_000];
        Path p = shard(plain);
        long size = Files.size(p);
        try (DataKeyCache cache = new DataKeyCache(source,
                DataKeyCache.Limits.of(Duration.ofMinutes(5)).withMaxBytes(2 * size))) {
            for (int i = 0; i < 3; i++) {
                try (ShardReader r = ShardReader.open(p, cache.protecting(size), CTX)) {
                    assertEquals(plain.length, r.size());
                }
            }
            // Opens 1 and 2 share one key (2 × size reaches the bound, retiring it); open 3 asks again.
            assertEquals(2, kms.unwraps.get());
            assertEquals(1, cache.stats().evictions());
        }
    }
}
