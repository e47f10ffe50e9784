package dev.enclavekms.cli;

import dev.enclavekms.client.KmsClient;
import dev.enclavekms.json.Json;
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
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kmsctl manifest sign|verify} in-process against the real daemon (in this JVM, on a
 * SoftHSM token): every kind of tampering, the trust checks (key, version, algorithm),
 * rotation, and the refusals of sign. OpenSSL's view of the signatures is in ManifestIT.
 */
@Timeout(180)
class ManifestCommandTest {
    @TempDir
    static Path root;
    static InProcessDaemon daemon;
    static int counter;

    Path dir;

    @BeforeAll
    static void start() throws Exception {
        daemon = InProcessDaemon.start(root, "manifest-cli", new MutableClock(Instant.parse("2026-11-22T00:00:00Z")));
        try (KmsClient kms = daemon.client()) {
            kms.createKey("release", "SIGN");
            kms.createKey("other", "SIGN");
            kms.createKey("ed", "SIGN", "ED25519", null, null);
            kms.createKey("rotating", "SIGN");
            kms.createKey("weights", "ENCRYPT");
        }
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    ManifestCommandTest() throws Exception {
        dir = Files.createDirectories(root.resolve("t" + (++counter)));
    }

    record Run(int code, String stdout, String stderr) { }

    static Run kmsctl(String... args) {
        return kmsctl(false, args);
    }

    static Run kmsctl(boolean terminal, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> all = new ArrayList<>(List.of("--socket", daemon.socket().toString()));
        all.addAll(List.of(args));
        int code = Kmsctl.run(new Environment(new ByteArrayInputStream(new byte[0]),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                Map.of(), false, terminal), all.toArray(String[]::new));
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

    /** A tree of small files, one of 3 MB, odd names, an empty directory. */
    Path tree() throws Exception {
        write("tree/README.md", "hello\n".getBytes(StandardCharsets.UTF_8));
        write("tree/weights/shard-0.bin", random(3_000_000, 1));
        write("tree/weights/shard-1.bin", random(70_000, 2));
        write("tree/weights/empty", new byte[0]);
        write("tree/odd names/a b\\c\nd.txt", "odd".getBytes(StandardCharsets.UTF_8));
        write("tree/odd names/café ☕.txt", "unicode".getBytes(StandardCharsets.UTF_8));
        Files.createDirectories(dir.resolve("tree/empty-dir"));
        return dir.resolve("tree");
    }

    Run sign(Path tree, String key, String... more) {
        List<String> args = new ArrayList<>(List.of("manifest", "sign", "--key", key));
        args.addAll(List.of(more));
        args.add(tree.toString());
        return kmsctl(args.toArray(String[]::new));
    }

    Run verify(Path tree, String... more) {
        List<String> args = new ArrayList<>(List.of("manifest", "verify"));
        args.addAll(List.of(more));
        args.add(tree.toString());
        return kmsctl(args.toArray(String[]::new));
    }

    String publicKeys(String key) throws Exception {
        Run r = kmsctl("pubkeys", key, "--json");
        assertEquals(0, r.code(), r.stderr());
        Path f = dir.resolve(key + "-" + (++counter) + ".json");
        Files.writeString(f, r.stdout());
        return f.toString();
    }

    static String sha256Hex(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> differences(Run r) throws Exception {
        return (List<Map<String, Object>>) Json.parseObject(r.stdout()).get("differences");
    }

    // ------------------------------------------------------------------ round trip

    @Test
    void signThenVerify_matches_offlineAndOnline_andTheManifestIsSha256sumText() throws Exception {
        Path tree = tree();
        Run s = sign(tree, "release");
        assertEquals(0, s.code(), s.stderr());
        assertTrue(s.stdout().contains("6 files"), s.stdout());
        assertTrue(s.stdout().contains("key:        release version 1 (EC_P256_SHA256)"), s.stdout());
        assertEquals("", s.stderr(), "no progress bar when standard error is not a terminal");

        String text = Files.readString(tree.resolve(".enclave-manifest"));
        assertTrue(text.startsWith("# enclave-kms manifest 1\n# key: release\n# version: 1\n"
                + "# algorithm: EC_P256_SHA256\n# created: "), text);
        assertTrue(text.contains("\n# files: 6\n# bytes: 3070016\n"), text);
        assertTrue(text.contains("\n" + sha256Hex("hello\n".getBytes(StandardCharsets.UTF_8)) + "  README.md\n"), text);
        assertTrue(text.contains("\n\\" + sha256Hex("odd".getBytes(StandardCharsets.UTF_8))
                + "  odd names/a b\\\\c\\nd.txt\n"), text);
        assertTrue(text.endsWith("  weights/shard-1.bin\n"), "sorted by path bytes: " + text);
        assertFalse(text.contains("empty-dir"), text);
        assertTrue(Files.size(tree.resolve(".enclave-manifest.sig")) > 60);

        Run offline = verify(tree, "--public-keys", publicKeys("release"));
        assertEquals(0, offline.code(), offline.stderr());
        assertTrue(offline.stdout().contains("signature:  valid: release version 1 (EC_P256_SHA256)"), offline.stdout());
        assertTrue(offline.stdout().contains("result:     the tree matches the manifest"), offline.stdout());

        Run online = verify(tree, "--key", "release", "--json");
        assertEquals(0, online.code(), online.stderr());
        Map<String, Object> j = Json.parseObject(online.stdout());
        assertEquals("valid", j.get("signature"));
        assertEquals("matches", j.get("tree"));
        assertEquals(6L, j.get("files"));
        assertEquals(List.of(), j.get("differences"));
    }

    @Test
    void progressBar_onATerminal_andSignRefusesToOverwrite() throws Exception {
        Path tree = tree();
        Run s = kmsctl(true, "manifest", "sign", "--key", "release", tree.toString());
        assertEquals(0, s.code(), s.stderr());
        assertTrue(s.stderr().contains("hash 100% [####################]"), s.stderr());
        Run again = sign(tree, "release");
        assertEquals(1, again.code());
        assertTrue(again.stderr().contains(".enclave-manifest exists (use --force to replace it)"), again.stderr());
        assertEquals(0, sign(tree, "release", "--force", "--threads", "1").code());
        Run v = kmsctl(true, "manifest", "verify", "--key", "release", "--progress", "never", tree.toString());
        assertEquals(0, v.code(), v.stderr());
        assertEquals("", v.stderr());
    }

    @Test
    void manifestElsewhere_withManifestOption() throws Exception {
        Path tree = tree();
        Path m = dir.resolve("out/tree.manifest");
        Files.createDirectories(m.getParent());
        assertEquals(0, sign(tree, "release", "--manifest", m.toString()).code());
        assertTrue(Files.exists(dir.resolve("out/tree.manifest.sig")));
        assertFalse(Files.exists(tree.resolve(".enclave-manifest")));
        assertEquals(0, verify(tree, "--key", "release", "--manifest", m.toString()).code());
        Run missing = verify(tree, "--key", "release");
        assertEquals(1, missing.code());
        assertTrue(missing.stderr().contains("cannot read " + tree.resolve(".enclave-manifest") + ": no such file"),
                missing.stderr());
    }

    // ---------------------------------------------------------------- tampering: tree

    @Test
    void everyChangeToTheTree_isReportedWithExit7() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "release").code());
        Files.write(tree.resolve("weights/shard-1.bin"), random(70_000, 99)); // modified, same size
        write("tree/weights/new.bin", new byte[] {1});                           // added
        Files.delete(tree.resolve("weights/empty"));                              // removed
        Files.move(tree.resolve("README.md"), tree.resolve("README.txt"));       // renamed
        Run r = verify(tree, "--key", "release");
        assertEquals(7, r.code(), r.stdout() + r.stderr());
        assertTrue(r.stdout().startsWith("""
                removed   README.md
                added     README.txt
                removed   weights/empty
                added     weights/new.bin
                modified  weights/shard-1.bin
                """), r.stdout());
        assertTrue(r.stdout().contains("signature:  valid: release version 1"), r.stdout());
        assertTrue(r.stdout().contains("result:     the tree differs: 5 differences (2 added, 2 removed, 1 modified)"),
                r.stdout());

        Run j = verify(tree, "--key", "release", "--json");
        assertEquals(7, j.code());
        assertEquals("differs", Json.parseObject(j.stdout()).get("tree"));
        assertEquals(List.of(Map.of("path", "README.md", "change", "removed"), Map.of("path", "README.txt", "change",
                        "added"), Map.of("path", "weights/empty", "change", "removed"),
                Map.of("path", "weights/new.bin", "change", "added"),
                Map.of("path", "weights/shard-1.bin", "change", "modified")), differences(j));
    }

    @Test
    void oneByteFlippedInTheLargeFile_isModified() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "release").code());
        byte[] b = Files.readAllBytes(tree.resolve("weights/shard-0.bin"));
        b[2_999_999] ^= 1;
        Files.write(tree.resolve("weights/shard-0.bin"), b);
        Run r = verify(tree, "--key", "release", "--json");
        assertEquals(7, r.code());
        assertEquals(List.of(Map.of("path", "weights/shard-0.bin", "change", "modified")), differences(r));
    }

    @Test
    void symlinkTricks_areDifferences_andSignRefusesLinks() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "release").code());
        // A file replaced by a link to a file of the same content outside the tree.
        Path outside = write("outside/README.md", "hello\n".getBytes(StandardCharsets.UTF_8));
        Files.delete(tree.resolve("README.md"));
        Files.createSymbolicLink(tree.resolve("README.md"), outside);
        // A directory replaced by a link to a copy of it.
        Path copy = Files.createDirectories(dir.resolve("outside/weights"));
        for (String f : List.of("shard-0.bin", "shard-1.bin", "empty")) {
            Files.move(tree.resolve("weights/" + f), copy.resolve(f));
        }
        Files.delete(tree.resolve("weights"));
        Files.createSymbolicLink(tree.resolve("weights"), copy);
        Run r = verify(tree, "--key", "release", "--json");
        assertEquals(7, r.code(), r.stderr());
        assertEquals(List.of(
                Map.of("path", "README.md", "change", "modified", "detail", "symbolic link"),
                Map.of("path", "weights", "change", "added", "detail", "symbolic link"),
                Map.of("path", "weights/empty", "change", "removed"),
                Map.of("path", "weights/shard-0.bin", "change", "removed"),
                Map.of("path", "weights/shard-1.bin", "change", "removed")), differences(r));

        Run s = sign(tree, "release", "--force");
        assertEquals(1, s.code());
        assertTrue(s.stderr().contains("kmsctl: README.md: symbolic link\nkmsctl: weights: symbolic link\n"), s.stderr());
        assertTrue(s.stderr().contains("refusing to sign " + tree + ": 2 entries are not regular files"), s.stderr());
    }

    @Test
    void aFifo_isAnAddedSpecialFile_neverOpened() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "release").code());
        Process p = new ProcessBuilder("mkfifo", tree.resolve("pipe").toString()).start();
        assertEquals(0, p.waitFor());
        Run r = verify(tree, "--key", "release", "--json");
        assertEquals(7, r.code(), r.stderr());
        assertEquals(List.of(Map.of("path", "pipe", "change", "added", "detail",
                "special file (FIFO, socket or device)")), differences(r));
    }

    // ------------------------------------------------------ tampering: manifest, signature

    @Test
    void editedManifest_orSignature_isRejectedWithExit6_beforeTheTreeIsRead() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "release").code());
        Path manifest = tree.resolve(".enclave-manifest");
        Path sig = tree.resolve(".enclave-manifest.sig");
        String original = Files.readString(manifest);
        byte[] originalSig = Files.readAllBytes(sig);

        // The attacker changes a file and puts its new hash into the manifest.
        Files.write(tree.resolve("weights/shard-1.bin"), random(10, 5));
        String edited = original.replaceFirst("[0-9a-f]{64}(  weights/shard-1.bin)", sha256Hex(random(10, 5)) + "$1");
        Files.writeString(manifest, edited);
        Run r = verify(tree, "--key", "release");
        assertEquals(6, r.code(), r.stdout());
        assertTrue(r.stderr().contains("manifest rejected: the signature does not verify with release version 1"),
                r.stderr());
        assertEquals("", r.stdout());

        // A header edit (e.g. a later creation time), the manifest still well-formed.
        Files.writeString(manifest, original.replaceFirst("# created: 20", "# created: 21"));
        assertEquals(6, verify(tree, "--key", "release").code());
        // A malformed manifest.
        Files.writeString(manifest, original + "junk\n");
        Run malformed = verify(tree, "--key", "release", "--json");
        assertEquals(6, malformed.code());
        assertTrue(Json.parseObject(malformed.stdout()).get("reason").toString().startsWith("the manifest is malformed"),
                malformed.stdout());

        // The signature edited: one bit, truncated, empty.
        Files.writeString(manifest, original);
        byte[] flipped = originalSig.clone();
        flipped[flipped.length - 1] ^= 1;
        for (byte[] bad : List.of(flipped, java.util.Arrays.copyOf(originalSig, 20), new byte[0])) {
            Files.write(sig, bad);
            Run v = verify(tree, "--key", "release", "--json");
            assertEquals(6, v.code());
            assertEquals("invalid", Json.parseObject(v.stdout()).get("signature"));
        }
        Files.write(sig, originalSig);
        assertEquals(7, verify(tree, "--key", "release").code(), "restored: only the changed file differs");
    }

    @Test
    void wrongKey_isRejected_whetherFromTheDaemonOrAKeysFile() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "release").code());
        Run online = verify(tree, "--key", "other");
        assertEquals(6, online.code());
        assertTrue(online.stderr().contains("the manifest names the key release; the trusted key is other"),
                online.stderr());
        Run offline = verify(tree, "--public-keys", publicKeys("other"));
        assertEquals(6, offline.code());
        Run ed = verify(tree, "--public-keys", publicKeys("ed"));
        assertEquals(6, ed.code());
        // A keys file of another key whose name was edited to match: the signature fails.
        Path forged = Path.of(publicKeys("other"));
        Files.writeString(forged, Files.readString(forged).replace("\"key\":\"other\"", "\"key\":\"release\""));
        Run f = verify(tree, "--public-keys", forged.toString());
        assertEquals(6, f.code());
        assertTrue(f.stderr().contains("the signature does not verify"), f.stderr());
        Run both = verify(tree, "--public-keys", publicKeys("other"), "--key", "release");
        assertEquals(1, both.code());
        Run none = verify(tree);
        assertEquals(2, none.code());
        assertTrue(none.stderr().contains("give --public-keys FILE, or --key KEY"), none.stderr());
    }

    @Test
    void ed25519_signsAndVerifies() throws Exception {
        Path tree = tree();
        Run s = sign(tree, "ed", "--json");
        assertEquals(0, s.code(), s.stderr());
        assertEquals("ED25519", Json.parseObject(s.stdout()).get("algorithm"));
        assertEquals(64, Files.size(tree.resolve(".enclave-manifest.sig")));
        assertEquals(0, verify(tree, "--public-keys", publicKeys("ed")).code());
    }

    @Test
    void signRefuses_unknownKeys_andKeysThatDoNotSign() throws Exception {
        Path tree = tree();
        Run unknown = sign(tree, "nope");
        assertEquals(4, unknown.code());
        assertTrue(unknown.stderr().contains("KeyNotFound"), unknown.stderr());
        Run encrypt = sign(tree, "weights");
        assertEquals(4, encrypt.code());
        assertTrue(encrypt.stderr().contains("InvalidKeyUsage"), encrypt.stderr());
        assertFalse(Files.exists(tree.resolve(".enclave-manifest")));
        Run notDir = sign(tree.resolve("README.md"), "release");
        assertEquals(1, notDir.code());
        assertTrue(notDir.stderr().contains("is not a directory"), notDir.stderr());
    }

    @Test
    void emptyTree_signsAHeaderOnly_andAnUnknownTrustedKeyIsADaemonError() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertEquals(0, sign(empty, "release").code());
        assertTrue(Files.readString(empty.resolve(".enclave-manifest")).endsWith("# files: 0\n# bytes: 0\n"));
        assertEquals(0, verify(empty, "--key", "release").code());
        Run unknown = verify(empty, "--key", "nope");
        assertEquals(4, unknown.code());
        assertTrue(unknown.stderr().contains("KeyNotFound"), unknown.stderr());
    }

    @Test
    void ed25519_refusesManifestsOverKmsSignsOneMebibyteLimit() throws Exception {
        // 300 files with paths of about 3,530 bytes (14 directories of 250-byte names): a 1.06 MB manifest.
        Path big = Files.createDirectories(dir.resolve("many"));
        Path deep = big;
        for (int i = 0; i < 14; i++) deep = deep.resolve(Character.toString('a' + i).repeat(250));
        Files.createDirectories(deep);
        for (int i = 0; i < 300; i++) {
            Files.write(deep.resolve("f" + i), new byte[0]);
        }
        Run ed = sign(big, "ed");
        assertEquals(1, ed.code());
        assertTrue(ed.stderr().contains("an Ed25519 key signs the whole manifest and Kms.Sign takes at most 1 MiB"),
                ed.stderr());
        assertFalse(Files.exists(big.resolve(".enclave-manifest")));
        Run ec = sign(big, "release");
        assertEquals(0, ec.code(), ec.stderr());
        assertTrue(Files.size(big.resolve(".enclave-manifest")) > (1 << 20));
        assertEquals(0, verify(big, "--key", "release").code());
    }

    // -------------------------------------------------------------------- rotation

    @Test
    void rotation_oldEnabledVersionStillVerifies_disabledDoesNot_andAnOldKeysFileIsASnapshot() throws Exception {
        Path tree = tree();
        assertEquals(0, sign(tree, "rotating").code());
        String keysV1 = publicKeys("rotating");
        try (KmsClient kms = daemon.client()) {
            kms.rotateKey("rotating");
        }
        String keysBoth = publicKeys("rotating");
        assertEquals(0, verify(tree, "--key", "rotating").code(), "version 1 is still ENABLED");
        assertEquals(0, verify(tree, "--public-keys", keysBoth).code());

        Path tree2 = Files.createDirectories(dir.resolve("tree2"));
        Files.writeString(tree2.resolve("x"), "x");
        Run s2 = sign(tree2, "rotating", "--json");
        assertEquals(2L, Json.parseObject(s2.stdout()).get("version"), "the new primary signs");
        assertEquals(6, verify(tree2, "--public-keys", keysV1).code(),
                "a keys file saved before the rotation does not know version 2");

        try (KmsClient kms = daemon.client()) {
            kms.disableKeyVersion("rotating", 1);
        }
        Run disabled = verify(tree, "--key", "rotating");
        assertEquals(6, disabled.code());
        assertTrue(disabled.stderr().contains("version 1 of rotating is not published (published: 2 ENABLED)"),
                disabled.stderr());
        assertEquals(6, verify(tree, "--public-keys", publicKeys("rotating")).code());
        assertEquals(0, verify(tree, "--public-keys", keysBoth).code(),
                "a keys file is a snapshot: refresh it to learn that a version was disabled");
        assertEquals(0, verify(tree2, "--key", "rotating").code());

        try (KmsClient kms = daemon.client()) {
            kms.enableKeyVersion("rotating", 1);
        }
        assertEquals(0, verify(tree, "--key", "rotating").code(), "enabled again: verifies again");
    }
}
