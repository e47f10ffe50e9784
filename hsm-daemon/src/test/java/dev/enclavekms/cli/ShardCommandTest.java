package dev.enclavekms.cli;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.json.Json;
import dev.enclavekms.shard.ShardHeader;
import dev.enclavekms.shard.ShardHeaders;
import dev.enclavekms.testing.InProcessDaemon;
import dev.enclavekms.testing.MutableClock;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kmsctl shard ...} run in-process exactly as from a shell, against the real daemon
 * (in this JVM, on a SoftHSM token): files and directory trees, atomic outputs, damaged
 * shards, rewrap after rotation, inspect, progress bars, exit codes.
 */
@Timeout(120)
class ShardCommandTest {
    @TempDir
    static Path root;
    static InProcessDaemon daemon;
    static int counter;

    Path dir;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(root, "shard-cli", new MutableClock(Instant.parse("2026-11-22T00:00:00Z")));
        try (KmsClient kms = daemon.client()) {
            kms.createKey("weights", "ENCRYPT");
            kms.createKey("other", "ENCRYPT");
        }
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    ShardCommandTest() throws Exception {
        dir = Files.createDirectories(root.resolve("t" + (++counter)));
    }

    record Run(int code, String stdout, String stderr) { }

    static Run kmsctl(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(List.of("--socket", daemon.socket().toString()));
        all.addAll(List.of(args));
        int code = Kmsctl.run(new Environment(new ByteArrayInputStream(new byte[0]),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                Map.of()), all.toArray(String[]::new));
        String stderr = err.toString(StandardCharsets.UTF_8);
        assertFalse(stderr.contains("\tat ") || stderr.contains("Exception"), "stack trace printed: " + stderr);
        return new Run(code, out.toString(StandardCharsets.UTF_8), stderr);
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    Path write(String name, byte[] content) throws Exception {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.write(p, content);
        return p;
    }

    List<String> names(Path d) throws Exception {
        try (Stream<Path> s = Files.walk(d)) {
            return s.filter(Files::isRegularFile).map(p -> d.relativize(p).toString()).sorted().toList();
        }
    }

    // ------------------------------------------------------------------- files

    @Test
    void encryptThenDecrypt_file_roundTrips_plaintextIsOwnerOnly() throws Exception {
        byte[] content = random(300_000, 1);
        Path in = write("weights.bin", content);
        Path shard = dir.resolve("weights.eks");
        Path out = dir.resolve("weights.out");

        Run enc = kmsctl("shard", "encrypt", "--key", "weights", "--context", "model=llama", "--context", "tier=hot",
                "--segment-size", "64K", "--threads", "3", in.toString(), shard.toString());
        assertEquals(0, enc.code(), enc.stderr());
        assertTrue(enc.stdout().startsWith("encrypted:  1 file, 293 KiB in "), enc.stdout());
        assertTrue(enc.stdout().contains("\nkey:        weights version 1\n"), enc.stdout());
        assertEquals("", enc.stderr(), "no progress bar when standard error is not a terminal");
        ShardHeader h = ShardHeaders.read(shard);
        assertEquals(65536, h.segmentSize());
        assertEquals(Map.of("model", "llama", "tier", "hot"), h.context());

        Run dec = kmsctl("shard", "decrypt", "--context", "tier=hot", "--context", "model=llama", shard.toString(),
                out.toString());
        assertEquals(0, dec.code(), dec.stderr());
        assertArrayEquals(content, Files.readAllBytes(out));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        assertTrue(dec.stdout().startsWith("decrypted:  1 file, 293 KiB in "), dec.stdout());
        assertEquals(List.of("weights.bin", "weights.eks", "weights.out"), names(dir), "no temporary files left");
    }

    @Test
    void decrypt_otherContext_exits1_andWritesNothing() throws Exception {
        Path shard = dir.resolve("s.eks");
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "weights", "--context", "model=llama",
                write("p", random(1000, 2)).toString(), shard.toString()).code());
        Path out = dir.resolve("out");

        Run r = kmsctl("shard", "decrypt", "--context", "model=mistral", shard.toString(), out.toString());

        assertEquals(1, r.code());
        assertEquals("kmsctl: " + shard + ": the shard is bound to context {model=llama}, not {model=mistral}\n",
                r.stderr());
        assertFalse(Files.exists(out));
        Run none = kmsctl("shard", "decrypt", shard.toString(), out.toString());
        assertEquals(1, none.code(), "no --context means the empty context, which is not the shard's");
    }

    @Test
    void decrypt_damagedSegment_exits1_namesTheSegment_andLeavesNoPlaintext() throws Exception {
        Path shard = dir.resolve("s.eks");
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "weights", "--segment-size", "4K",
                write("p", random(20_000, 3)).toString(), shard.toString()).code());
        byte[] bytes = Files.readAllBytes(shard);
        int h = ShardHeader.parse(bytes).length();
        bytes[h + 3 * (4096 + 16) + 100] ^= 4; // segment 3 of 5
        Files.write(shard, bytes);
        Path out = dir.resolve("out");

        Run r = kmsctl("shard", "decrypt", shard.toString(), out.toString());

        assertEquals(1, r.code());
        assertEquals("kmsctl: " + shard + ": segment 3 fails authentication: the shard was modified, or the segment "
                + "was moved or taken from another file; its plaintext is withheld\n", r.stderr());
        assertEquals(List.of("p", "s.eks"), names(dir), "neither the output nor its temporary file exists");
    }

    @Test
    void encrypt_existingOutput_isRefusedWithoutForce() throws Exception {
        Path in = write("p", random(10, 4));
        Path shard = write("s.eks", "precious".getBytes(StandardCharsets.UTF_8));

        Run r = kmsctl("shard", "encrypt", "--key", "weights", in.toString(), shard.toString());

        assertEquals(1, r.code());
        assertEquals("kmsctl: " + in + ": " + shard + " exists (use --force to replace it)\n", r.stderr());
        assertEquals("precious", Files.readString(shard));
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "weights", "--force", in.toString(), shard.toString()).code());
        assertTrue(ShardHeaders.isShard(shard));
    }

    // ------------------------------------------------------------- directories

    @Test
    void encryptAndDecrypt_directory_mirrorTheTree_eachFileWithItsOwnDataKey() throws Exception {
        write("in/a.bin", random(70_000, 5));
        write("in/sub/b.bin", random(5, 6));
        write("in/sub/deeper/c.bin", new byte[0]);
        Path in = dir.resolve("in");
        Path enc = dir.resolve("enc");
        Path dec = dir.resolve("dec");

        Run e = kmsctl("--json", "shard", "encrypt", "--key", "weights", "--context", "model=llama", in.toString(),
                enc.toString());
        assertEquals(0, e.code(), e.stderr());
        Map<String, Object> summary = Json.parseObject(e.stdout().strip());
        assertEquals(3L, summary.get("encrypted"));
        assertEquals(70_005L, summary.get("plaintext_bytes"));
        assertEquals(List.of("a.bin", "sub/b.bin", "sub/deeper/c.bin"), names(enc));
        assertEquals(3, Stream.of("a.bin", "sub/b.bin", "sub/deeper/c.bin").map(n -> {
            try {
                return Base64.getEncoder().encodeToString(ShardHeaders.read(enc.resolve(n)).wrappedDataKey());
            } catch (Exception ex) {
                throw new AssertionError(ex);
            }
        }).distinct().count(), "one data key per file");

        write("enc/README.txt", "not a shard".getBytes(StandardCharsets.UTF_8));
        Run d = kmsctl("shard", "decrypt", "--context", "model=llama", enc.toString(), dec.toString());
        assertEquals(0, d.code(), d.stderr());
        assertTrue(d.stdout().contains("decrypted:  3 files, 68.4 KiB in "), d.stdout());
        assertTrue(d.stdout().contains("skipped:    1 file (not shards)"), d.stdout());
        for (String n : List.of("a.bin", "sub/b.bin", "sub/deeper/c.bin")) {
            assertArrayEquals(Files.readAllBytes(in.resolve(n)), Files.readAllBytes(dec.resolve(n)), n);
        }
        assertEquals(List.of("a.bin", "sub/b.bin", "sub/deeper/c.bin"), names(dec));
    }

    @Test
    void encrypt_outputInsideInput_isRefused() throws Exception {
        write("in/a", random(3, 7));
        Run r = kmsctl("shard", "encrypt", "--key", "weights", dir.resolve("in").toString(),
                dir.resolve("in/enc").toString());
        assertEquals(1, r.code());
        assertTrue(r.stderr().contains("is inside the input directory"), r.stderr());
    }

    // ------------------------------------------------------------------ rewrap

    @Test
    void rewrap_afterRotation_rewritesHeadersOnly_resumes_andSkipsOtherFiles() throws Exception {
        write("in/a.bin", random(200_000, 8));
        write("in/b/c.bin", random(1000, 9));
        Path shards = dir.resolve("shards");
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "other", "--context", "model=m",
                dir.resolve("in").toString(), shards.toString()).code());
        write("shards/notes.txt", "plain".getBytes(StandardCharsets.UTF_8));
        Path single = dir.resolve("single.eks");
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "other", "--context", "model=m",
                write("x", random(10, 10)).toString(), single.toString()).code());
        byte[] bodyBefore = body(shards.resolve("a.bin"));
        try (KmsClient kms = daemon.client()) {
            kms.rotateKey("other");
        }
        int version = ShardHeaders.read(single).keyVersion() + 1;

        Run r = kmsctl("shard", "rewrap", shards.toString(), single.toString());

        assertEquals(0, r.code(), r.stderr());
        assertEquals("rewrapped " + shards.resolve("a.bin") + ": other version " + (version - 1) + " -> " + version + "\n"
                + "rewrapped " + shards.resolve("b/c.bin") + ": other version " + (version - 1) + " -> " + version + "\n"
                + "rewrapped " + single + ": other version " + (version - 1) + " -> " + version + "\n"
                + "rewrapped:        3 files\n"
                + "already current:  0 files\n"
                + "not shards:       1 file\n"
                + "failed:           0 files\n", r.stdout());
        assertEquals(version, ShardHeaders.read(shards.resolve("a.bin")).keyVersion());
        assertArrayEquals(bodyBefore, body(shards.resolve("a.bin")), "body bytes identical");
        Path dec = dir.resolve("dec");
        assertEquals(0, kmsctl("shard", "decrypt", "--context", "model=m", shards.toString(), dec.toString()).code());
        assertArrayEquals(Files.readAllBytes(dir.resolve("in/a.bin")), Files.readAllBytes(dec.resolve("a.bin")));

        Run again = kmsctl("--json", "shard", "rewrap", shards.toString());
        assertEquals(0, again.code(), again.stderr());
        Map<String, Object> j = Json.parseObject(again.stdout().strip());
        assertEquals(0L, j.get("rewrapped"));
        assertEquals(2L, j.get("current"));
        assertEquals(1L, j.get("not_shards"));
    }

    @Test
    void rewrap_oneDamagedKeyBlock_reportsTheDaemonError_exits4_andDoesTheOthers() throws Exception {
        Path shards = dir.resolve("shards");
        write("in/a", random(100, 11));
        write("in/b", random(100, 12));
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "other", dir.resolve("in").toString(),
                shards.toString()).code());
        byte[] a = Files.readAllBytes(shards.resolve("a"));
        a[ShardHeader.parse(a).length() - 1] ^= 1; // the wrapped key's tag
        Files.write(shards.resolve("a"), a);
        try (KmsClient kms = daemon.client()) {
            kms.rotateKey("other");
        }

        Run r = kmsctl("shard", "rewrap", shards.toString());

        assertEquals(4, r.code());
        assertEquals("kmsctl: " + shards.resolve("a") + ": DecryptionFailed: decryption failed: the ciphertext is malformed, "
                + "was modified, or the context differs\n", r.stderr());
        assertTrue(r.stdout().contains("rewrapped:        1 file\n") && r.stdout().contains("failed:           1 file\n"),
                r.stdout());
        assertArrayEquals(a, Files.readAllBytes(shards.resolve("a")));
    }

    static byte[] body(Path p) throws Exception {
        byte[] f = Files.readAllBytes(p);
        return Arrays.copyOfRange(f, ShardHeader.parse(f).length(), f.length);
    }

    // ----------------------------------------------------------------- inspect

    @Test
    void inspect_file_showsHeaderFields_andNoKeyMaterial() throws Exception {
        Path shard = dir.resolve("s.eks");
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "weights", "--context", "model=llama",
                "--segment-size", "1K", write("p", random(2500, 13)).toString(), shard.toString()).code());
        ShardHeader h = ShardHeaders.read(shard);

        Run r = kmsctl("shard", "inspect", shard.toString());

        assertEquals(0, r.code(), r.stderr());
        String hex = HexFormat.of().formatHex(h.salt());
        assertEquals("file:              " + shard + "\n"
                + "format:            1 (HKDF-SHA256, AES-256-GCM segments)\n"
                + "key:               weights\n"
                + "key version:       1\n"
                + "context:           model=llama\n"
                + "segment size:      1024 bytes (1.00 KiB)\n"
                + "segments:          3\n"
                + "plaintext size:    2500 bytes (2.44 KiB, from the file length)\n"
                + "file size:         " + Files.size(shard) + " bytes\n"
                + "header size:       " + h.length() + " bytes\n"
                + "salt:              " + hex + "\n"
                + "nonce prefix:      " + HexFormat.of().formatHex(h.noncePrefix()) + "\n"
                + "wrapped data key:  " + h.wrappedDataKey().length + " bytes (KMS envelope)\n", r.stdout());
        String wrapped = HexFormat.of().formatHex(h.wrappedDataKey());
        assertFalse(r.stdout().contains(wrapped.substring(40, 72))
                || r.stdout().contains(Base64.getEncoder().encodeToString(h.wrappedDataKey()).substring(20, 40)));
    }

    @Test
    void inspect_directory_isATable_andJsonListsEveryShard() throws Exception {
        Path shards = dir.resolve("shards");
        write("in/a", random(100, 14));
        write("in/b", random(5000, 15));
        assertEquals(0, kmsctl("shard", "encrypt", "--key", "weights", "--context", "model=llama",
                dir.resolve("in").toString(), shards.toString()).code());
        write("shards/other.txt", "x".getBytes(StandardCharsets.UTF_8));

        Run table = kmsctl("shard", "inspect", shards.toString());
        assertEquals(0, table.code(), table.stderr());
        List<String> lines = table.stdout().lines().toList();
        assertEquals(3, lines.size(), table.stdout());
        assertTrue(lines.get(0).matches("PATH +KEY +VERSION +SIZE +SEGMENT +CONTEXT"), lines.get(0));
        assertTrue(lines.get(2).matches(".*/b +weights +1 +4.88 KiB +1.00 MiB +model=llama"), lines.get(2));

        Run json = kmsctl("--json", "shard", "inspect", shards.toString());
        List<?> list = (List<?>) Json.parseObject(json.stdout().strip()).get("shards");
        assertEquals(2, list.size());
        assertEquals(5000L, ((Map<?, ?>) list.get(1)).get("plaintext_bytes"));

        Run notShard = kmsctl("shard", "inspect", shards.resolve("other.txt").toString());
        assertEquals(1, notShard.code());
        assertEquals("kmsctl: " + shards.resolve("other.txt") + ": not a shard file (no \"EKS\" magic)\n",
                notShard.stderr());
    }

    // ------------------------------------------------- progress, usage, daemon

    @Test
    void progressAlways_drawsBytesRateAndEtaOnStderr() throws Exception {
        Path shard = dir.resolve("s.eks");
        Run r = kmsctl("shard", "encrypt", "--key", "weights", "--progress", "always",
                write("p", random(3_000_000, 16)).toString(), shard.toString());
        assertEquals(0, r.code(), r.stderr());
        assertTrue(r.stderr().startsWith("\rencrypt   0% [....................] 0 B / 2.86 MiB  0 B/s"), r.stderr());
        assertTrue(r.stderr().contains("\rencrypt 100% [####################] 2.86 MiB / 2.86 MiB  "), r.stderr());
        // The final line is padded with spaces to cover a longer earlier one (an ETA).
        assertTrue(r.stderr().matches("(?s).*/s *\n"), r.stderr());
        assertTrue(r.stdout().startsWith("encrypted:  1 file, 2.86 MiB in "), r.stdout());
    }

    @Test
    void progressLine_showsPercentBytesRateEtaAndFile() {
        long[] now = {0};
        Progress p = new Progress(new PrintStream(new ByteArrayOutputStream()), false, "decrypt", 4L << 30, 10,
                () -> now[0]);
        p.file(3);
        p.advance(1L << 30);
        now[0] = 2_000_000_000L;
        assertEquals("decrypt  25% [#####...............] 1.00 GiB / 4.00 GiB  512 MiB/s  ETA 0:06  file 3/10",
                p.line(now[0]));
    }

    @Test
    void usageErrors_exit2() {
        assertEquals(2, kmsctl("shard", "encrypt", "in", "out").code(), "--key is required");
        assertEquals(2, kmsctl("shard", "encrypt", "--key", "k", "--segment-size", "10", "in", "out").code());
        assertEquals(2, kmsctl("shard", "encrypt", "--key", "k", "--segment-size", "65M", "in", "out").code());
        assertEquals(2, kmsctl("shard", "decrypt", "--threads", "0", "in", "out").code());
        assertEquals(2, kmsctl("shard", "decrypt", "--progress", "sometimes", "in", "out").code());
        assertEquals(2, kmsctl("shard").code());
        assertEquals(2, kmsctl("shard", "rewrap").code());
    }

    @Test
    void noDaemon_exits3_andWritesNothing() throws Exception {
        Path in = write("p", random(10, 17));
        Path out = dir.resolve("out.eks");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Kmsctl.run(new Environment(new ByteArrayInputStream(new byte[0]), new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8), Map.of()),
                "--socket", dir.resolve("nothing.sock").toString(), "shard", "encrypt", "--key", "weights",
                in.toString(), out.toString());
        assertEquals(3, code, err.toString(StandardCharsets.UTF_8));
        assertFalse(Files.exists(out));
        assertEquals(List.of("p"), names(dir));
    }

    @Test
    void unknownKey_exits4_withTheDaemonsError() throws Exception {
        Run r = kmsctl("shard", "encrypt", "--key", "no-such-key", write("p", random(10, 18)).toString(),
                dir.resolve("o").toString());
        assertEquals(4, r.code());
        assertTrue(r.stderr().startsWith("kmsctl: " + dir.resolve("p") + ": KeyNotFound: "), r.stderr());
        assertNotEquals(List.of(), names(dir));
        assertEquals(List.of("p"), names(dir));
    }
}
