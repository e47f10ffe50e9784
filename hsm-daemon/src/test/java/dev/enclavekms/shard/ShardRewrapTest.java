package dev.enclavekms.shard;

import dev.enclavekms.client.DecryptionFailedException;
import dev.enclavekms.client.KeyVersionDestroyedException;
import dev.enclavekms.client.KmsClient;
import dev.enclavekms.testing.InProcessDaemon;
import dev.enclavekms.testing.MutableClock;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shards against the real daemon on a SoftHSM token: encrypted with GenerateDataKey,
 * decrypted with Decrypt, rewrapped with ReEncrypt after a rotation — header changed,
 * body identical, still decrypting — and, once the old version is destroyed, only the
 * rewrapped shards still decrypt. Time moves with a clock the test controls; a restart
 * runs the destruction sweep.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(120)
class ShardRewrapTest {
    static final Map<String, String> CTX = Map.of("model", "llama-3-8b", "shard", "003");
    static final MutableClock CLOCK = new MutableClock(Instant.parse("2026-11-22T00:00:00Z"));

    @TempDir
    static Path dir;
    static InProcessDaemon daemon;
    static byte[] plaintext;
    static Path rewrapped;
    static Path leftBehind;
    static byte[] leftBehindBytes;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(dir, "shard-rewrap", CLOCK);
        try (KmsClient kms = daemon.client()) {
            kms.createKey("weights", "ENCRYPT", null, "shards", List.of("model"));
        }
        plaintext = new byte[3 * 65536 + 123];
        new Random(42).nextBytes(plaintext);
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    static Path encrypt(KmsClient kms, String name) throws Exception {
        Path p = dir.resolve(name);
        try (ShardEncryptor enc = ShardEncryptor.generate(kms, "weights", CTX,
                ShardEncryptor.Options.DEFAULT.withSegmentSize(65536).withThreads(2));
             InputStream in = new java.io.ByteArrayInputStream(plaintext);
             OutputStream out = Files.newOutputStream(p)) {
            enc.encrypt(in, out);
        }
        return p;
    }

    static byte[] decrypt(KmsClient kms, Path p) throws Exception {
        try (ShardReader r = ShardReader.open(p, DataKeyUnwrapper.using(kms), CTX)) {
            ByteBuffer all = ByteBuffer.allocate((int) r.size());
            r.readFully(0, all);
            ByteArrayOutputStream streamed = new ByteArrayOutputStream();
            try (InputStream in = Files.newInputStream(p)) {
                ShardDecryptor.decrypt(in, streamed, DataKeyUnwrapper.using(kms), CTX);
            }
            assertArrayEquals(all.array(), streamed.toByteArray(), "random access and streaming agree");
            return all.array();
        }
    }

    static byte[] body(Path p) throws Exception {
        byte[] file = Files.readAllBytes(p);
        return Arrays.copyOfRange(file, ShardHeader.parse(file).length(), file.length);
    }

    @Test
    @Order(1)
    void encryptedWithTheDaemon_decryptsWithTheDaemon() throws Exception {
        try (KmsClient kms = daemon.client()) {
            Path p = encrypt(kms, "first.eks");
            ShardHeader h = ShardHeaders.read(p);
            assertEquals("weights", h.keyName());
            assertEquals(1, h.keyVersion());
            assertEquals(CTX, h.context());
            assertArrayEquals(plaintext, decrypt(kms, p));
        }
    }

    @Test
    @Order(2)
    void rewrapAfterRotation_changesOnlyTheHeader_andStillDecrypts() throws Exception {
        try (KmsClient kms = daemon.client()) {
            rewrapped = encrypt(kms, "rewrapped.eks");
            leftBehind = encrypt(kms, "left-behind.eks");
            leftBehindBytes = Files.readAllBytes(leftBehind);
            Files.setPosixFilePermissions(rewrapped, PosixFilePermissions.fromString("rw-r-----"));
            Path link = dir.resolve("link-to-rewrapped.eks");
            Files.createSymbolicLink(link, rewrapped.getFileName());
            Path leftover = dir.resolve(".rewrapped.eks.rewrap-0123456789ab.tmp"); // an interrupted earlier run
            Files.write(leftover, new byte[] {1, 2, 3});
            byte[] before = Files.readAllBytes(rewrapped);
            ShardHeader oldHeader = ShardHeader.parse(before);

            assertEquals(2, kms.rotateKey("weights").primaryVersion());
            ShardHeaders.Rewrap r = ShardHeaders.rewrap(link, kms); // through the link: the target is rewritten

            assertEquals(new ShardHeaders.Rewrap(rewrapped.toRealPath(), "weights", 1, 2, true), r);
            assertTrue(Files.isSymbolicLink(link), "the link is still a link");
            assertFalse(Files.exists(leftover), "leftovers of an interrupted rewrap are removed");
            assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(rewrapped)));
            ShardHeader newHeader = ShardHeaders.read(rewrapped);
            assertEquals(2, newHeader.keyVersion());
            assertFalse(Arrays.equals(oldHeader.wrappedDataKey(), newHeader.wrappedDataKey()));
            assertEquals(oldHeader.withKey("weights", 2, newHeader.wrappedDataKey()), newHeader,
                    "parameters and tag unchanged");
            assertArrayEquals(Arrays.copyOfRange(before, oldHeader.length(), before.length), body(rewrapped),
                    "body bytes identical");
            assertArrayEquals(plaintext, decrypt(kms, rewrapped));

            // Resumable: a second run finds it current and does not touch the file.
            long inode = (Long) Files.getAttribute(rewrapped, "unix:ino");
            ShardHeaders.Rewrap again = ShardHeaders.rewrap(rewrapped, kms);
            assertEquals(new ShardHeaders.Rewrap(rewrapped.toRealPath(), "weights", 2, 2, false), again);
            assertEquals(inode, (Long) Files.getAttribute(rewrapped, "unix:ino"));
            assertArrayEquals(leftBehindBytes, Files.readAllBytes(leftBehind));
            try (var s = Files.list(dir)) {
                assertEquals(List.of(), s.filter(ShardHeaders::isRewrapLeftover).toList(), "no temporary file left");
            }
        }
    }

    @Test
    @Order(3)
    void rewrap_ofATamperedKeyBlock_isRefusedByTheDaemon_andLeavesTheFile() throws Exception {
        try (KmsClient kms = daemon.client()) {
            Path p = encrypt(kms, "tampered.eks");
            byte[] bytes = Files.readAllBytes(p);
            int h = ShardHeader.parse(bytes).length();
            bytes[h - 5] ^= 1; // inside the wrapped key's GCM tag
            Files.write(p, bytes);
            assertThrows(DecryptionFailedException.class, () -> ShardHeaders.rewrap(p, kms));
            assertArrayEquals(bytes, Files.readAllBytes(p));
            Files.delete(p);
        }
    }

    @Test
    @Order(4)
    void afterTheOldVersionIsDestroyed_onlyRewrappedShardsDecrypt() throws Exception {
        try (KmsClient kms = daemon.client()) {
            kms.scheduleKeyVersionDestruction("weights", 1, 7);
        }
        CLOCK.advance(Duration.ofDays(8));
        daemon.restart(); // the sweep at start destroys what is due
        try (KmsClient kms = daemon.client()) {
            assertEquals("DESTROYED", kms.describeKey("weights").versions().getFirst().state());
            assertArrayEquals(plaintext, decrypt(kms, rewrapped));
            KeyVersionDestroyedException e = assertThrows(KeyVersionDestroyedException.class,
                    () -> ShardReader.open(leftBehind, DataKeyUnwrapper.using(kms), CTX));
            assertEquals(1, e.version());
            assertThrows(KeyVersionDestroyedException.class, () -> ShardHeaders.rewrap(leftBehind, kms),
                    "too late to rewrap");
            assertArrayEquals(leftBehindBytes, Files.readAllBytes(leftBehind));
            assertNotEquals(1, ShardHeaders.read(rewrapped).keyVersion());
        }
    }
}
