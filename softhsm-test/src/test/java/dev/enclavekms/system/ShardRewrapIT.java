package dev.enclavekms.system;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.shard.ShardHeader;
import dev.enclavekms.shard.ShardHeaders;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shards through the real processes: a daemon started by the documented launcher on its
 * own SoftHSM token, {@code bin/kmsctl shard ...} as a process, and the Python client as an
 * independent decryptor. After a rotation, {@code kmsctl shard rewrap} rewrites only the
 * header of the shards it is given; the daemon's clock is then moved past the destruction
 * waiting period of the old version ({@code --test-clock-file}), and a restart runs the
 * destruction sweep: afterwards only the rewrapped shards decrypt.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ShardRewrapIT {
    @TempDir
    static Path dir;
    static Path clock;
    static DaemonProcess daemon;
    static Path plain;
    static Path shards;

    @BeforeAll
    static void start() throws Exception {
        clock = dir.resolve("clock-offset");
        Files.writeString(clock, "0");
        daemon = DaemonProcess.start(dir, "--test-clock-file", clock.toString());
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.createKey("weights", "ENCRYPT", null, "model weights", List.of("model"));
        }
        plain = Files.createDirectories(dir.resolve("plain"));
        Random random = new Random(7);
        for (String name : List.of("rewrapped/a.bin", "rewrapped/b.bin", "left-behind/c.bin")) {
            byte[] b = new byte[name.startsWith("rewrapped/a") ? 5_000_000 : 70_000];
            random.nextBytes(b);
            Files.createDirectories(plain.resolve(name).getParent());
            Files.write(plain.resolve(name), b);
        }
        shards = dir.resolve("shards");
    }

    @AfterAll
    static void stop() throws Exception {
        daemon.close();
    }

    static Commands.Result kmsctl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Commands.repoFile("bin/kmsctl").toString(), "--socket",
                daemon.socket().toString()));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, java.util.Map.of(), null);
    }

    static Commands.Result python(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("python3", Commands.repoFile("client-python/enclave_kms.py").toString(),
                "--socket", daemon.socket().toString()));
        cmd.addAll(List.of(args));
        return Commands.run(cmd, java.util.Map.of(), null);
    }

    static byte[] body(Path shard) throws Exception {
        byte[] f = Files.readAllBytes(shard);
        return Arrays.copyOfRange(f, ShardHeader.parse(f).length(), f.length);
    }

    @Test
    @Order(1)
    void kmsctlEncrypts_andPythonDecrypts() throws Exception {
        kmsctl("shard", "encrypt", "--key", "weights", "--context", "model=llama-3-8b", "--segment-size", "256K",
                plain.toString(), shards.toString()).requireSuccess();
        for (String name : List.of("rewrapped/a.bin", "rewrapped/b.bin", "left-behind/c.bin")) {
            assertEquals(1, ShardHeaders.read(shards.resolve(name)).keyVersion());
            Path out = dir.resolve("py-" + name.replace('/', '-'));
            python("decrypt-shard", shards.resolve(name).toString(), out.toString(), "--context", "model=llama-3-8b")
                    .requireSuccess();
            assertArrayEquals(Files.readAllBytes(plain.resolve(name)), Files.readAllBytes(out), name);
        }
    }

    @Test
    @Order(2)
    void afterRotation_kmsctlRewrapsOnlyHeaders_andTheShardsStillDecrypt() throws Exception {
        byte[] bodyBefore = body(shards.resolve("rewrapped/a.bin"));
        byte[] leftBehind = Files.readAllBytes(shards.resolve("left-behind/c.bin"));
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            assertEquals(2, kms.rotateKey("weights").primaryVersion());
        }

        var r = kmsctl("shard", "rewrap", shards.resolve("rewrapped").toString()).requireSuccess();

        assertTrue(r.stdout().contains("rewrapped:        2 files"), r.stdout());
        assertEquals(2, ShardHeaders.read(shards.resolve("rewrapped/a.bin")).keyVersion());
        assertArrayEquals(bodyBefore, body(shards.resolve("rewrapped/a.bin")), "body bytes identical");
        assertArrayEquals(leftBehind, Files.readAllBytes(shards.resolve("left-behind/c.bin")), "not given: untouched");
        Path out = dir.resolve("after-rewrap");
        kmsctl("shard", "decrypt", "--context", "model=llama-3-8b", shards.toString(), out.toString()).requireSuccess();
        assertArrayEquals(Files.readAllBytes(plain.resolve("rewrapped/a.bin")), Files.readAllBytes(out.resolve("rewrapped/a.bin")));
        assertArrayEquals(Files.readAllBytes(plain.resolve("left-behind/c.bin")),
                Files.readAllBytes(out.resolve("left-behind/c.bin")), "the old version still decrypts until destroyed");
        // Resumable: a second run over everything rewraps only what is left.
        var again = kmsctl("--json", "shard", "rewrap", shards.resolve("rewrapped").toString()).requireSuccess();
        assertTrue(again.stdout().contains("\"rewrapped\":0") && again.stdout().contains("\"current\":2"), again.stdout());
    }

    @Test
    @Order(3)
    void afterTheOldVersionIsDestroyed_onlyRewrappedShardsDecrypt() throws Exception {
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            kms.scheduleKeyVersionDestruction("weights", 1, 7);
        }
        Path next = dir.resolve("clock-offset.next");
        Files.writeString(next, Long.toString(Duration.ofDays(8).toSeconds()));
        Files.move(next, clock, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        daemon.restart(); // same clock file; the sweep before serving destroys what is due
        try (KmsClient kms = KmsClient.connect(daemon.socket())) {
            assertEquals("DESTROYED", kms.describeKey("weights").versions().getFirst().state());
        }

        Path ok = dir.resolve("after-destruction.bin");
        kmsctl("shard", "decrypt", "--context", "model=llama-3-8b", shards.resolve("rewrapped/a.bin").toString(),
                ok.toString()).requireSuccess();
        assertArrayEquals(Files.readAllBytes(plain.resolve("rewrapped/a.bin")), Files.readAllBytes(ok));
        python("decrypt-shard", shards.resolve("rewrapped/b.bin").toString(), dir.resolve("py-after").toString(),
                "--context", "model=llama-3-8b").requireSuccess();

        Path lost = dir.resolve("lost.bin");
        var d = kmsctl("shard", "decrypt", "--context", "model=llama-3-8b",
                shards.resolve("left-behind/c.bin").toString(), lost.toString());
        assertEquals(4, d.exit(), d.stderr());
        assertTrue(d.stderr().contains(": KeyVersionDestroyed: "), d.stderr());
        assertFalse(Files.exists(lost));
        var late = kmsctl("shard", "rewrap", shards.resolve("left-behind").toString());
        assertEquals(4, late.exit(), late.stderr());
        assertTrue(late.stderr().contains(": KeyVersionDestroyed: "), late.stderr());
        var py = python("decrypt-shard", shards.resolve("left-behind/c.bin").toString(), lost.toString(),
                "--context", "model=llama-3-8b");
        assertEquals(1, py.exit(), py.stderr());
        assertTrue(py.stderr().contains("KeyVersionDestroyed"), py.stderr());
    }
}
